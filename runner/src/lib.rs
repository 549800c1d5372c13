//! The runner executes pipelines: it validates descriptors, resolves input
//! references and batches, drives jobs through their DAG, speaks the wrapper
//! protocol with algorithm workers, and keeps jobs, tasks and results.
//!
//! It owns the worker websocket endpoint's logic but not the HTTP API around
//! it, and it knows nothing about how images are built (the `builder` crate)
//! or about debugging sessions (the `debug-proxy` crate).
//!
//! Its modules import each other without circles (`scripts/module-cycles.py`
//! checks): descriptor rules are pure (`descriptor::validate`), and the
//! engine announces ended jobs ([`engine::JobEnded`]) instead of calling
//! the triggers that listen for them.

pub mod algorithm;
pub mod dag;
pub mod descriptor;
pub mod engine;
pub mod error;
pub mod executor;
pub mod expr;
pub mod protocol;
pub mod storage;
pub mod store;
pub mod trigger;
pub mod webhook;

pub use error::RunnerError;
