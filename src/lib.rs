//! DistributedKube's server: it wires the runner, the builder and the debug
//! proxy into one process behind the REST API. The crates own the logic;
//! this package owns configuration, start-up and the HTTP edge.
//!
//! Flags are parsed in `args`, once, into `config::ServerConfig`; only
//! `data_dir::DataDir` knows what lives where in the data directory.
//!
//! The services here (`algorithms`, `builds`) must not know HTTP: they
//! return their own error enums, and `api/error.rs` is the one place that
//! maps errors to status codes. Imports go api -> algorithms -> builds,
//! never back.

pub mod algorithms;
pub mod api;
pub mod args;
pub mod builds;
pub mod config;
pub mod connections;
pub mod data_dir;
pub mod memory;
pub mod server;
pub mod wrappers;
