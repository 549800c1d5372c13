//! DistributedKube's server: it wires the runner, the builder and the debug
//! proxy into one process behind the REST API. The crates own the logic;
//! this package owns configuration, start-up and the HTTP edge.

pub mod algorithms;
pub mod api;
pub mod builds;
pub mod connections;
pub mod data_dir;
pub mod server;
pub mod wrappers;
