//! The algorithm wrapper protocol, server side: HKube's "storage v1" (data
//! inline) and "v3" (data by reference, see `storage::by_reference`).
//!
//! A wrapper connects as a websocket client and exchanges envelopes
//! `{"command": ..., "data": ...}` (or `"error"` instead of `data`) with us.
//! This module knows how envelopes look on the wire in each encoding
//! ([`codec`]) and how a connection's query string is negotiated
//! ([`ConnectParams`]). It knows nothing about pipelines or workers.

pub mod codec;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use codec::{encode, Frame};

/// The largest websocket message to or from a wrapper, in MiB, unless told otherwise.
pub const DEFAULT_MAX_MESSAGE_MIB: usize = 256;

/// The three encodings the wrappers speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Json,
    Msgpack,
    Bson,
}

impl Encoding {
    pub fn parse(s: &str) -> Option<Encoding> {
        match s {
            "json" => Some(Encoding::Json),
            "msgpack" => Some(Encoding::Msgpack),
            "bson" => Some(Encoding::Bson),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Encoding::Json => "json",
            Encoding::Msgpack => "msgpack",
            Encoding::Bson => "bson",
        }
    }
}

/// One protocol message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub command: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

impl Envelope {
    pub fn new(command: &str, data: Value) -> Envelope {
        Envelope { command: command.to_string(), data: Some(data), error: None }
    }

    /// The user-facing text of an `errorMessage` (HKube puts it in `error.message`).
    pub fn error_message(&self) -> String {
        match &self.error {
            Some(Value::Object(e)) => match e.get("message") {
                Some(Value::String(m)) => m.clone(),
                Some(other) => other.to_string(),
                None => Value::Object(e.clone()).to_string(),
            },
            Some(Value::String(m)) => m.clone(),
            Some(other) => other.to_string(),
            None => match &self.data {
                Some(Value::String(m)) => m.clone(),
                _ => "the algorithm reported an error without a message".to_string(),
            },
        }
    }

    /// `error.details` (a traceback, typically), when the wrapper sent one.
    pub fn error_details(&self) -> Option<String> {
        match &self.error {
            Some(Value::Object(e)) => e.get("details").and_then(|d| d.as_str()).map(str::to_string),
            _ => None,
        }
    }
}

/// How task data travels between the server and a wrapper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StorageProtocol {
    /// Inputs and the output travel inline, in the messages.
    #[default]
    V1,
    /// The wrapper reads its inputs from the shared storage and stores its
    /// output there itself (HKube's `storage=v3`): messages carry only
    /// references (see `storage::by_reference`).
    V3,
}

/// What a wrapper asked for in its connection query string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectParams {
    pub encoding: Encoding,
    pub storage: StorageProtocol,
}

impl ConnectParams {
    /// Negotiate from `storage` and `encoding` query values. No query at all
    /// means `v1` + `json`. Whether `v3` can be served here is the caller's
    /// question (it needs storage the wrapper can reach).
    pub fn negotiate(storage: Option<&str>, encoding: Option<&str>) -> Result<ConnectParams, String> {
        let storage = match storage.unwrap_or("v1") {
            "v1" => StorageProtocol::V1,
            "v3" => StorageProtocol::V3,
            other => return Err(format!("unknown storage protocol '{other}': use v1 (inline) or v3 (by reference)")),
        };
        let encoding = match encoding {
            None | Some("") => Encoding::Json,
            Some(e) => {
                Encoding::parse(e).ok_or_else(|| format!("unknown encoding '{e}': use json, msgpack or bson"))?
            }
        };
        Ok(ConnectParams { encoding, storage })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_defaults_and_refusals() {
        assert_eq!(ConnectParams::negotiate(None, None).unwrap().encoding, Encoding::Json);
        assert_eq!(ConnectParams::negotiate(Some("v1"), Some("bson")).unwrap().encoding, Encoding::Bson);
        assert_eq!(ConnectParams::negotiate(Some("v3"), Some("bson")).unwrap().storage, StorageProtocol::V3);
        assert!(ConnectParams::negotiate(Some("v2"), None).unwrap_err().contains("'v2'"));
        assert!(ConnectParams::negotiate(Some("v1"), Some("xml")).unwrap_err().contains("xml"));
    }

    #[test]
    fn error_message_prefers_error_object() {
        let e: Envelope = serde_json::from_value(serde_json::json!({
            "command": "errorMessage", "error": {"code": "Failed", "message": "ZeroDivisionError: division by zero"}
        }))
        .unwrap();
        assert_eq!(e.error_message(), "ZeroDivisionError: division by zero");
    }
}
