//! The debug proxy routes one node's tasks to a developer's machine, where
//! the algorithm runs under their IDE's debugger while the rest of the
//! pipeline runs on the server.
//!
//! It owns the debug endpoints (`/hkube/debug/<algorithm>`): the queue of
//! tasks waiting for a developer, the one client allowed per endpoint, and
//! the relay of the wrapper protocol to that client, replaying the task on
//! every reconnect. It must not know how jobs are scheduled or how images
//! are built: it receives tasks as an executor does and answers outcomes.

mod endpoint;
mod relay;

pub use endpoint::{EndpointInfo, TaskInfo};
pub use relay::{Relay, RelaySettings};
