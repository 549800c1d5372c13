//! Algorithms as code: a spec whose code is a folder on the server, or an
//! uploaded archive applied with [`Algorithms::apply`]. Deciding which
//! language the code is in and where its entry point lies happens here too;
//! whether an image is built is the builds service's call.
//!
//! It must not know HTTP: handlers in `api/algorithms.rs` parse the request,
//! call one function here and answer with what it returns.

mod apply;
mod code;
mod error;

use std::path::Path;

use runner::algorithm::{Algorithm, AlgorithmSpec};
use runner::store::Store;

use crate::builds::Builds;
pub use apply::{Applied, Apply};
pub use error::AlgorithmsError;

/// What the algorithm service works with, borrowed from the server's state.
pub struct Algorithms<'a> {
    pub store: &'a Store,
    pub builds: &'a Builds,
    /// Where uploaded code is unpacked.
    pub algorithms_dir: &'a Path,
    /// The only folder whose subfolders `code.path` may name.
    pub code_root: Option<&'a Path>,
    pub intake_limits: &'a builder::Limits,
}

impl Algorithms<'_> {
    /// Store a new algorithm; refused when the name is taken.
    pub async fn insert(&self, spec: AlgorithmSpec) -> Result<Algorithm, AlgorithmsError> {
        if self.store.get_algorithm(&spec.name).await?.is_some() {
            return Err(AlgorithmsError::Exists { name: spec.name });
        }
        self.store_local(spec).await
    }

    /// Store (or replace) an algorithm whose code is an image or a folder
    /// under the code root.
    pub async fn store_local(&self, mut spec: AlgorithmSpec) -> Result<Algorithm, AlgorithmsError> {
        let code_dir = match spec.code.as_ref().and_then(|c| c.path.clone()) {
            Some(path) => {
                let dir = code::server_code_dir(self.code_root, &spec.name, &path)?;
                code::check_code(&mut spec, &dir, false)?;
                Some(dir)
            }
            None if spec.algorithm_image.is_some() => None,
            None => return Err(AlgorithmsError::NoCode { name: spec.name }),
        };
        Ok(self.store.upsert_algorithm(&spec, code_dir.as_deref(), None).await?)
    }
}
