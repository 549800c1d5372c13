//! Readmes of algorithms and pipelines (HKube's `readme/*` routes): one
//! markdown text per name and kind.

use serde::Serialize;
use sqlx::Row;

use super::{now, Store};
use crate::error::RunnerError;

/// What a readme belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadmeOf {
    Algorithm,
    Pipeline,
}

impl ReadmeOf {
    pub fn as_str(self) -> &'static str {
        match self {
            ReadmeOf::Algorithm => "algorithm",
            ReadmeOf::Pipeline => "pipeline",
        }
    }
}

/// A stored readme.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Readme {
    pub name: String,
    pub readme: String,
    pub created: String,
    pub modified: String,
}

impl Store {
    /// Store or replace the readme of `name`.
    pub async fn put_readme(&self, of: ReadmeOf, name: &str, text: &str) -> Result<(), RunnerError> {
        let at = now();
        sqlx::query("INSERT INTO readmes (kind, name, readme, created, modified) VALUES ($1, $2, $3, $4, $5) ON CONFLICT(kind, name) DO UPDATE SET readme = excluded.readme, modified = excluded.modified")
            .bind(of.as_str())
            .bind(name)
            .bind(text)
            .bind(&at)
            .bind(&at)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn get_readme(&self, of: ReadmeOf, name: &str) -> Result<Option<Readme>, RunnerError> {
        let row = sqlx::query("SELECT name, readme, created, modified FROM readmes WHERE kind = $1 AND name = $2")
            .bind(of.as_str())
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| Readme { name: r.get(0), readme: r.get(1), created: r.get(2), modified: r.get(3) }))
    }

    /// `false` if there was none.
    pub async fn delete_readme(&self, of: ReadmeOf, name: &str) -> Result<bool, RunnerError> {
        let res = sqlx::query("DELETE FROM readmes WHERE kind = $1 AND name = $2")
            .bind(of.as_str())
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(res.rows_affected() > 0)
    }
}
