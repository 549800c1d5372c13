//! Job data passed by reference (HKube's storage v3).
//!
//! A wrapper connected with `storage=v3` stores its task's output in the
//! shared storage itself, at HKube's path `<cluster>-hkube/<jobId>/<taskId>`
//! (an 8-byte header and MessagePack, by default), and tells the server only
//! the path (`storing`). The server keeps a [`StoredRef`] where the output
//! would be, so a large output never passes through it: a v3 wrapper
//! downstream gets a link (`$$key` in its input, the path in `storage`) and
//! reads the object itself. The server reads an object only where it needs
//! the data: a v1 wrapper's input, a batch over a stored list, the job's
//! results and code API answers.
//!
//! In a value a reference is the one-key object `{"$$distributedkubeStored":
//! {path, size, subpath?}}`; only the server makes them (from `storing`).

use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use super::Storage;
use crate::protocol::{codec, Encoding};

pub const MARKER: &str = "$$distributedkubeStored";

/// An object a v3 wrapper stored, and where inside it the value is.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRef {
    /// HKube's path: `<cluster>-hkube/<jobId>/<taskId>` (for S3 the first
    /// segment is the bucket).
    pub path: String,
    pub size: u64,
    /// Keys or indexes into the stored value (`@Node.a.0`).
    pub subpath: Vec<String>,
    /// Lengths of the lists inside it that children batch over, by subpath
    /// (`""` for the whole value): the wrapper reports them (HKube's
    /// `savePaths` metadata), so a batch over a stored list needs no read.
    pub sizes: BTreeMap<String, u64>,
}

impl StoredRef {
    pub fn to_value(&self) -> Value {
        let mut inner = json!({ "path": self.path, "size": self.size });
        if !self.subpath.is_empty() {
            inner["subpath"] = json!(self.subpath.join("."));
        }
        if !self.sizes.is_empty() {
            inner["sizes"] = json!(self.sizes);
        }
        json!({ MARKER: inner })
    }

    pub fn from_value(value: &Value) -> Option<StoredRef> {
        let Value::Object(map) = value else { return None };
        if map.len() != 1 {
            return None;
        }
        let inner = map.get(MARKER)?;
        let subpath = match inner.get("subpath").and_then(Value::as_str) {
            Some(s) if !s.is_empty() => s.split('.').map(str::to_string).collect(),
            _ => Vec::new(),
        };
        let sizes = match inner.get("sizes") {
            Some(Value::Object(m)) => m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_u64()?))).collect(),
            _ => BTreeMap::new(),
        };
        Some(StoredRef {
            path: inner.get("path")?.as_str()?.to_string(),
            size: inner.get("size").and_then(Value::as_u64).unwrap_or(0),
            subpath,
            sizes,
        })
    }

    /// The same object, `rest` further in.
    pub fn child(&self, rest: &[String]) -> StoredRef {
        let mut r = self.clone();
        r.subpath.extend(rest.iter().cloned());
        r
    }

    /// One reference per item, if the wrapper reported this list's length.
    pub fn items(&self) -> Option<Vec<Value>> {
        let n = *self.sizes.get(&self.subpath.join("."))?;
        Some((0..n).map(|i| self.child(&[i.to_string()]).to_value()).collect())
    }

    /// The lengths a v3 wrapper reported in `storing`'s `metadata`
    /// (`{"<node>.a.b": {type: "array", size}}`), by subpath.
    pub fn sizes_from_metadata(node: &str, metadata: Option<&Value>) -> BTreeMap<String, u64> {
        let Some(Value::Object(meta)) = metadata else { return BTreeMap::new() };
        meta.iter()
            .filter_map(|(path, m)| {
                let sub = if path == node { "" } else { path.strip_prefix(node)?.strip_prefix('.')? };
                Some((sub.to_string(), m.get("size")?.as_u64()?))
            })
            .collect()
    }
}

/// Whether `value` holds a reference anywhere.
pub fn contains_ref(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.contains_key(MARKER) || map.values().any(contains_ref),
        Value::Array(items) => items.iter().any(contains_ref),
        _ => false,
    }
}

/// How the shared storage is laid out for v3 wrappers, and what they must
/// be told (HKube's variables) to use it.
#[derive(Debug, Clone)]
pub struct HkubeLayout {
    /// `CLUSTER_NAME`: objects go under `<cluster>-hkube/`.
    cluster: String,
    backend: Backend,
}

#[derive(Debug, Clone)]
enum Backend {
    /// `BASE_FS_ADAPTER_DIRECTORY` is the storage's root directory.
    Fs { root: PathBuf },
    /// HKube's S3 adapter takes the path's first segment as the bucket
    /// (`<cluster>-hkube`, the storage's own).
    S3,
}

impl HkubeLayout {
    /// The cluster name every server uses for its own local files.
    pub const LOCAL_CLUSTER: &'static str = "dk";

    pub fn fs(root: PathBuf) -> HkubeLayout {
        HkubeLayout { cluster: Self::LOCAL_CLUSTER.into(), backend: Backend::Fs { root } }
    }

    /// HKube's wrappers write to bucket `<cluster>-hkube` at the root, so
    /// only such a bucket, without a prefix, can hold their objects. The
    /// error says what v3 needs (it ends up in a websocket close reason,
    /// at most 123 bytes).
    pub fn s3(bucket: &str, prefix: &str) -> Result<HkubeLayout, String> {
        let Some(cluster) = bucket.strip_suffix("-hkube").filter(|c| !c.is_empty()) else {
            return Err(format!("a bucket named <cluster>-hkube, not '{bucket}'"));
        };
        if !prefix.is_empty() {
            return Err(format!("the bucket's root, not '{prefix}/'"));
        }
        Ok(HkubeLayout { cluster: cluster.into(), backend: Backend::S3 })
    }

    /// Where a v3 wrapper stores the outputs of `job_id`'s tasks, as an
    /// HKube path (for S3 the bucket is its first segment).
    pub fn job_prefix(&self, job_id: &str) -> String {
        format!("{}-hkube/{job_id}/", self.cluster)
    }

    /// The storage key of HKube path `path`, if it names an object of ours.
    pub fn key_of(&self, path: &str) -> Option<String> {
        let root = format!("{}-hkube/", self.cluster);
        let key = match &self.backend {
            Backend::Fs { .. } => path.starts_with(&root).then_some(path)?,
            Backend::S3 => path.strip_prefix(&root)?,
        };
        key.split('/').all(|s| !s.is_empty() && s != "." && s != "..").then(|| key.to_string())
    }

    /// The variables HKube's wrappers read to reach this storage
    /// (`DISCOVERY_ENABLE=false`: data goes through the storage, not from
    /// wrapper to wrapper).
    pub fn worker_env(&self) -> Vec<(String, String)> {
        let mut env = vec![("CLUSTER_NAME", self.cluster.clone()), ("DISCOVERY_ENABLE", "false".into())];
        match &self.backend {
            Backend::Fs { root } => {
                env.push(("DEFAULT_STORAGE", "fs".into()));
                env.push(("BASE_FS_ADAPTER_DIRECTORY", root.display().to_string()));
            }
            Backend::S3 => {
                env.push(("DEFAULT_STORAGE", "s3".into()));
                for (ours, theirs) in [
                    ("AWS_ENDPOINT", "S3_ENDPOINT_URL"),
                    ("AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"),
                    ("AWS_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"),
                    ("AWS_REGION", "S3_REGION"),
                ] {
                    if let Ok(v) = std::env::var(ours) {
                        env.push((theirs, v));
                    }
                }
            }
        }
        env.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    /// Check a path a wrapper reported in `storing` for a task of `job_id`.
    pub fn check_stored(&self, job_id: &str, path: &str) -> Result<(), String> {
        match self.key_of(path) {
            Some(_) if path.starts_with(&self.job_prefix(job_id)) => Ok(()),
            _ => Err(format!(
                "storing: '{path}' is not under this job's data ('{}' …); the wrapper's CLUSTER_NAME or storage settings differ from the server's",
                self.job_prefix(job_id)
            )),
        }
    }
}

/// Decode an object a v3 wrapper stored: HKube's header (`HK` magic, data
/// type and encoding) and payload, or, without a header (S3 keeps it in the
/// object's metadata), MessagePack, JSON or BSON, whichever reads the
/// whole object.
pub fn decode_object(bytes: &[u8]) -> Result<Value, String> {
    const HEADER: usize = 8;
    if bytes.len() >= HEADER && &bytes[6..8] == b"HK" {
        let payload = &bytes[HEADER..];
        if bytes[2] == 0x01 {
            return Ok(Value::Array(payload.iter().map(|b| Value::from(*b)).collect()));
        }
        let encoding = match bytes[3] {
            0x01 => Encoding::Bson,
            0x02 => Encoding::Json,
            0x03 => Encoding::Msgpack,
            other => return Err(format!("unknown encoding {other} in the object's header")),
        };
        return codec::decode_value(encoding, payload).map_err(|e| e.0);
    }
    [Encoding::Msgpack, Encoding::Json, Encoding::Bson]
        .into_iter()
        .find_map(|e| codec::decode_value(e, bytes).ok())
        .ok_or_else(|| "not MessagePack, JSON or BSON".to_string())
}

/// `value` with every reference replaced by the data it points at (each
/// object read once).
pub async fn resolve(storage: &Storage, value: Value) -> Result<Value, String> {
    if !contains_ref(&value) {
        return Ok(value);
    }
    let layout = storage.by_reference().map_err(|e| format!("stored data cannot be read here: {e}"))?;
    let mut paths = Vec::new();
    collect(&value, &mut paths);
    let mut objects = HashMap::new();
    for path in paths {
        if objects.contains_key(&path) {
            continue;
        }
        let key = layout.key_of(&path).ok_or_else(|| format!("'{path}' is not a path in this server's storage"))?;
        let bytes = storage
            .get_bytes(&key)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("the stored output '{path}' is gone from the storage"))?;
        let decoded = decode_object(&bytes).map_err(|e| format!("the stored output '{path}' cannot be read: {e}"))?;
        objects.insert(path, decoded);
    }
    substitute(value, &objects)
}

fn collect(value: &Value, out: &mut Vec<String>) {
    if let Some(r) = StoredRef::from_value(value) {
        return out.push(r.path);
    }
    match value {
        Value::Object(map) => map.values().for_each(|v| collect(v, out)),
        Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
        _ => {}
    }
}

fn substitute(value: Value, objects: &HashMap<String, Value>) -> Result<Value, String> {
    if let Some(r) = StoredRef::from_value(&value) {
        let object = &objects[&r.path];
        // Object keys or list indexes, as `@Node.a.0` reads (the expr module's
        // rule; it depends on this one, so not the other way round).
        let found = r.subpath.iter().try_fold(object, |at, seg| match at {
            Value::Object(map) => map.get(seg),
            Value::Array(items) => items.get(seg.parse::<usize>().ok()?),
            _ => None,
        });
        return found
            .cloned()
            .ok_or_else(|| format!("the stored output '{}' has no '{}'", r.path, r.subpath.join(".")));
    }
    Ok(match value {
        Value::Object(map) => Value::Object(
            map.into_iter().map(|(k, v)| Ok((k, substitute(v, objects)?))).collect::<Result<_, String>>()?,
        ),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| substitute(v, objects)).collect::<Result<_, String>>()?)
        }
        other => other,
    })
}

/// What a v3 wrapper gets for an input holding references: each reference
/// becomes `"$$<key>"`, `flatInput` says where (`"0"`, `"1.a"`), and
/// `storage` maps each key to HKube's link `{storageInfo: {path, size}, path}`.
pub struct Links {
    pub flat_input: Map<String, Value>,
    pub storage: Map<String, Value>,
}

pub fn to_links(input: &mut [Value]) -> Links {
    let mut links = Links { flat_input: Map::new(), storage: Map::new() };
    for (i, item) in input.iter_mut().enumerate() {
        replace_refs(item, i.to_string(), &mut links);
    }
    links
}

fn replace_refs(value: &mut Value, at: String, links: &mut Links) {
    if let Some(r) = StoredRef::from_value(value) {
        let key = format!("ref{}", links.storage.len());
        let mut link = json!({ "storageInfo": { "path": r.path, "size": r.size } });
        if !r.subpath.is_empty() {
            link["path"] = json!(r.subpath.join("."));
        }
        links.storage.insert(key.clone(), link);
        links.flat_input.insert(at, json!(format!("$${key}")));
        *value = json!(format!("$${key}"));
        return;
    }
    match value {
        Value::Object(map) => map.iter_mut().for_each(|(k, v)| replace_refs(v, format!("{at}.{k}"), links)),
        Value::Array(items) => {
            items.iter_mut().enumerate().for_each(|(i, v)| replace_refs(v, format!("{at}.{i}"), links))
        }
        _ => {}
    }
}

/// The input of a code API call a v3 wrapper made (`storageInput`: `$$key`
/// items, `storage`: key → `{storageInfo: {path}}`), as references.
pub fn from_links(layout: &HkubeLayout, job_id: &str, items: &[Value], storage: &Value) -> Result<Vec<Value>, String> {
    items
        .iter()
        .map(|item| {
            let Some(key) = item.as_str().and_then(|s| s.strip_prefix("$$")) else { return Ok(item.clone()) };
            let link = storage.get(key).ok_or_else(|| format!("storageInput '$${key}' is not in 'storage'"))?;
            let path = link
                .pointer("/storageInfo/path")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("storage '{key}' has no storageInfo.path"))?;
            layout.check_stored(job_id, path)?;
            let size = link.pointer("/storageInfo/size").and_then(Value::as_u64).unwrap_or(0);
            let subpath = match link.get("path").and_then(Value::as_str) {
                Some(p) if !p.is_empty() => p.split('.').map(str::to_string).collect(),
                _ => Vec::new(),
            };
            Ok(StoredRef { path: path.to_string(), size, subpath, sizes: BTreeMap::new() }.to_value())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_round_trip_and_go_deeper() {
        let r =
            StoredRef { path: "dk-hkube/j/t".into(), size: 9, subpath: vec![], sizes: [("a".to_string(), 2)].into() };
        let v = r.to_value();
        assert_eq!(StoredRef::from_value(&v), Some(r.clone()));
        let deeper = r.child(&["a".into(), "0".into()]);
        assert_eq!(StoredRef::from_value(&deeper.to_value()).unwrap().subpath, vec!["a", "0"]);
        assert!(contains_ref(&json!([1, {"x": v}])));
        let a = r.child(&["a".into()]);
        assert_eq!(a.items().unwrap()[1], r.child(&["a".into(), "1".into()]).to_value());
        assert_eq!(r.items(), None, "no length reported for the whole value");
        let meta =
            json!({"make.items": {"type": "array", "size": 3}, "make": {"type": "object"}, "other.x": {"size": 1}});
        assert_eq!(StoredRef::sizes_from_metadata("make", Some(&meta)), [("items".to_string(), 3)].into());
        assert!(!contains_ref(&json!([1, {"x": {"path": "p"}}])));
    }

    #[test]
    fn hkube_objects_decode_with_and_without_header() {
        let mut msgpack = Vec::new();
        rmpv::encode::write_value(&mut msgpack, &rmpv::Value::from(vec![rmpv::Value::from(1), rmpv::Value::from("x")]))
            .unwrap();
        let mut with_header = vec![0x01, 0x08, 0x02, 0x03, 0x00, 0x00, b'H', b'K'];
        with_header.extend(&msgpack);
        assert_eq!(decode_object(&with_header).unwrap(), json!([1, "x"]));
        assert_eq!(decode_object(&msgpack).unwrap(), json!([1, "x"]));
        assert_eq!(decode_object(br#"{"a": 1}"#).unwrap(), json!({"a": 1}));
        let raw = [0x01, 0x08, 0x01, 0x03, 0x00, 0x00, b'H', b'K', 7, 8];
        assert_eq!(decode_object(&raw).unwrap(), json!([7, 8]));
    }

    #[test]
    fn links_say_where_each_reference_goes() {
        let r = StoredRef { path: "dk-hkube/j/t".into(), size: 3, subpath: vec!["big".into()], sizes: BTreeMap::new() };
        let mut input = vec![json!(5), r.to_value(), json!({"deep": r.to_value()})];
        let links = to_links(&mut input);
        assert_eq!(input, vec![json!(5), json!("$$ref0"), json!({"deep": "$$ref1"})]);
        assert_eq!(links.flat_input["1"], "$$ref0");
        assert_eq!(links.flat_input["2.deep"], "$$ref1");
        assert_eq!(links.storage["ref0"], json!({"storageInfo": {"path": "dk-hkube/j/t", "size": 3}, "path": "big"}));
    }

    #[test]
    fn only_this_jobs_paths_are_accepted() {
        let fs = HkubeLayout::fs("/data/storage".into());
        assert!(fs.check_stored("job-1", "dk-hkube/job-1/task").is_ok());
        assert!(fs.check_stored("job-1", "dk-hkube/job-2/task").is_err());
        assert!(fs.check_stored("job-1", "dk-hkube/job-1/../../jobs/x").is_err());
        assert!(fs.check_stored("job-1", "jobs/job-1/result.json").is_err());
        let s3 = HkubeLayout::s3("team-hkube", "").unwrap();
        assert_eq!(s3.key_of("team-hkube/job-1/t").as_deref(), Some("job-1/t"));
        assert!(s3.check_stored("job-1", "team-hkube/job-1/t").is_ok());
        assert!(s3.key_of("other-hkube/job-1/t").is_none());
        assert!(HkubeLayout::s3("data", "").unwrap_err().contains("<cluster>-hkube"));
        assert!(HkubeLayout::s3("x-hkube", "pre").unwrap_err().contains("pre/"));
    }
}
