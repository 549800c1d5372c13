//! Blob storage for job data: flowInputs, per-node outputs and results.
//!
//! Embedded default: `object_store`'s local file system under the data dir.
//! In a cluster the same keys go to S3 (`--storage s3://bucket/prefix`,
//! another `ObjectStore`), with the endpoint and credentials from the usual
//! `AWS_*` variables.

use object_store::aws::AmazonS3Builder;
use object_store::prefix::PrefixStore;
use object_store::{local::LocalFileSystem, path::Path as ObjectPath, ObjectStore, ObjectStoreExt, PutPayload};
use serde::{de::DeserializeOwned, Serialize};
use std::sync::Arc;

use crate::error::{RunnerError, StorageError};

pub mod by_reference;

use by_reference::HkubeLayout;

#[derive(Clone)]
pub struct Storage {
    inner: Arc<dyn ObjectStore>,
    /// What kind of storage this is, in HKube's words (`storageModule`).
    module: &'static str,
    /// Where HKube's v3 wrappers keep their outputs in it, or why they
    /// cannot. Shared: every task's request holds a clone of this storage.
    hkube: Arc<Result<HkubeLayout, String>>,
}

impl Storage {
    /// Local files under `root` (created if missing).
    pub fn local(root: &std::path::Path) -> Result<Storage, RunnerError> {
        let root_buf = || root.to_path_buf();
        std::fs::create_dir_all(root).map_err(|source| StorageError::Create { root: root_buf(), source })?;
        let fs =
            LocalFileSystem::new_with_prefix(root).map_err(|source| StorageError::Open { root: root_buf(), source })?;
        let root = root.canonicalize().unwrap_or_else(|_| root_buf());
        Ok(Storage { inner: Arc::new(fs), module: "fs", hkube: Arc::new(Ok(HkubeLayout::fs(root))) })
    }

    /// S3 at `url` (`s3://bucket` or `s3://bucket/prefix`). Endpoint,
    /// region and credentials come from `AWS_ENDPOINT`, `AWS_REGION`,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` (and `AWS_ALLOW_HTTP=true`
    /// for a plain-HTTP endpoint). The bucket is checked now, by writing,
    /// reading and deleting a small object, so a wrong endpoint, bucket or
    /// key stops the server at start instead of failing the first job.
    pub async fn s3(url: &str) -> Result<Storage, RunnerError> {
        let bad = |why: String| RunnerError::Storage(StorageError::S3 { url: url.into(), why });
        let rest = url.strip_prefix("s3://").ok_or_else(|| bad("it must start with s3://".into()))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("it names no bucket (s3://BUCKET/PREFIX)".into()));
        }
        let s3 = AmazonS3Builder::from_env().with_bucket_name(bucket).build().map_err(|e| bad(e.to_string()))?;
        let prefix = prefix.trim_matches('/');
        let inner: Arc<dyn ObjectStore> =
            if prefix.is_empty() { Arc::new(s3) } else { Arc::new(PrefixStore::new(s3, prefix)) };
        let storage = Storage { inner, module: "s3", hkube: Arc::new(HkubeLayout::s3(bucket, prefix)) };
        let probe = ".distributedkube-check";
        storage.put_json(probe, &"written at start").await.map_err(|e| bad(e.to_string()))?;
        storage.get_json::<String>(probe).await.map_err(|e| bad(e.to_string()))?;
        storage.inner.delete(&ObjectPath::from(probe)).await.map_err(|e| bad(e.to_string()))?;
        Ok(storage)
    }

    /// HKube's name for this kind of storage (`fs` for local files, `s3`), as
    /// `exec/results` answers it in `storageModule`.
    pub fn module(&self) -> &'static str {
        self.module
    }

    /// How HKube's v3 wrappers use this storage; why they cannot, if not.
    pub fn by_reference(&self) -> Result<&HkubeLayout, &str> {
        self.hkube.as_ref().as_ref().map_err(String::as_str)
    }

    /// `Ok(None)` when the key does not exist.
    pub async fn get_bytes(&self, key: &str) -> Result<Option<bytes::Bytes>, RunnerError> {
        match self.inner.get(&ObjectPath::from(key)).await {
            Ok(got) => Ok(Some(got.bytes().await.map_err(|source| StorageError::Read { key: key.into(), source })?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(StorageError::Read { key: key.into(), source }.into()),
        }
    }

    pub async fn put_json<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), RunnerError> {
        let bytes = serde_json::to_vec(value).map_err(|source| StorageError::Encode { key: key.into(), source })?;
        self.put_json_bytes(key, bytes).await
    }

    /// [`Storage::put_json`] of a value already serialized.
    pub async fn put_json_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<(), RunnerError> {
        self.inner
            .put(&ObjectPath::from(key), PutPayload::from(bytes))
            .await
            .map_err(|source| StorageError::Write { key: key.into(), source })?;
        Ok(())
    }

    /// `Ok(None)` when the key does not exist.
    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, RunnerError> {
        match self.inner.get(&ObjectPath::from(key)).await {
            Ok(got) => {
                let bytes = got.bytes().await.map_err(|source| StorageError::Read { key: key.into(), source })?;
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|source| StorageError::Decode { key: key.into(), source }.into())
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(StorageError::Read { key: key.into(), source }.into()),
        }
    }
}

/// The keys a job's data lives under.
pub mod keys {
    pub fn flow_input(job_id: &str) -> String {
        format!("jobs/{job_id}/flowInput.json")
    }
    pub fn node_output(job_id: &str, node: &str) -> String {
        format!("jobs/{job_id}/outputs/{node}.json")
    }
    /// The items of a batch node that succeeded, when others failed or never
    /// ran (`{"<batchIndex>": output}`), for `exec rerun --failed`.
    pub fn node_items(job_id: &str, node: &str) -> String {
        format!("jobs/{job_id}/items/{node}.json")
    }
    pub fn result(job_id: &str) -> String {
        format!("jobs/{job_id}/result.json")
    }
}
