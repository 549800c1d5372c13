//! The debug proxy reroutes one node's wrapper websocket to a developer's
//! machine (where the algorithm runs under an IDE's debugger) and reruns
//! part of a pipeline from stored upstream results.
//!
//! It owns the relay between a waiting task and a developer's connection;
//! it must not know how jobs are scheduled or how images are built.
//! (Issue 4 builds it; until then the crate is empty.)
