//! `GET /experiment` and `/experiment/{name}`: HKube groups jobs in
//! experiments; here every job is in the default one, `main`, and no other
//! can be made (creating and deleting experiments is left out).

use axum::extract::Path;
use axum::Json;
use schemars::JsonSchema;
use serde::Serialize;

use super::ApiError;

/// An experiment, in HKube's fields.
#[derive(Serialize, JsonSchema)]
pub struct Experiment {
    name: String,
    description: String,
}

fn main_experiment() -> Experiment {
    Experiment { name: "main".into(), description: "the default jobs place if experiment is not set".into() }
}

pub async fn list() -> Json<Vec<Experiment>> {
    Json(vec![main_experiment()])
}

pub async fn get(Path(name): Path<String>) -> Result<Json<Experiment>, ApiError> {
    match name.as_str() {
        "main" => Ok(Json(main_experiment())),
        _ => Err(ApiError::new(404, format!("experiment '{name}' does not exist (every job here is in 'main')"))),
    }
}
