//! Envelopes on the wire: JSON text frames, MessagePack or BSON binary frames.
//!
//! Internally every value is a `serde_json::Value`. Binary values that arrive
//! in MessagePack (`bin`) become arrays of byte numbers, BSON binaries their
//! relaxed extended-JSON form; v1 algorithms exchange plain JSON-like data.

use super::{Encoding, Envelope};
use serde_json::{Map, Number, Value};

/// A websocket data frame, independent of the websocket library.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CodecError(pub String);

pub fn encode(encoding: Encoding, envelope: &Envelope) -> Result<Frame, CodecError> {
    match encoding {
        Encoding::Json => {
            serde_json::to_string(envelope).map(Frame::Text).map_err(|e| CodecError(format!("json encode: {e}")))
        }
        Encoding::Msgpack => {
            let value = to_msgpack(&envelope_value(envelope));
            let mut buf = Vec::new();
            rmpv::encode::write_value(&mut buf, &value).map_err(|e| CodecError(format!("msgpack encode: {e}")))?;
            Ok(Frame::Binary(buf))
        }
        Encoding::Bson => {
            let data = bson::serialize_to_bson(&envelope_value(envelope))
                .map_err(|e| CodecError(format!("bson encode: {e}")))?;
            let mut doc = bson::Document::new();
            doc.insert("data", data);
            doc.to_vec().map(Frame::Binary).map_err(|e| CodecError(format!("bson encode: {e}")))
        }
    }
}

/// A text frame: always JSON, whatever the negotiated encoding.
pub fn decode_text(text: &str) -> Result<Envelope, CodecError> {
    // The common case straight into an envelope, without a tree first; the
    // slow path below only says what is wrong.
    if let Ok(envelope) = serde_json::from_str::<Envelope>(text) {
        return Ok(envelope);
    }
    let value: Value = serde_json::from_str(text).map_err(|e| CodecError(format!("invalid JSON message: {e}")))?;
    serde_json::from_value(value).map_err(|e| CodecError(format!("not a protocol envelope: {e}")))
}

/// A binary frame, in the negotiated encoding.
pub fn decode_binary(encoding: Encoding, bytes: &[u8]) -> Result<Envelope, CodecError> {
    let value = decode_value(encoding, bytes)?;
    serde_json::from_value(value).map_err(|e| CodecError(format!("not a protocol envelope: {e}")))
}

/// One value in `encoding`: JSON text, a MessagePack value, or a BSON
/// document whose `data` field holds it (HKube's framing, on the wire and in
/// the objects its v3 wrappers store).
pub fn decode_value(encoding: Encoding, bytes: &[u8]) -> Result<Value, CodecError> {
    Ok(match encoding {
        Encoding::Json => {
            serde_json::from_slice(bytes).map_err(|e| CodecError(format!("invalid JSON message: {e}")))?
        }
        Encoding::Msgpack => {
            let mut rest = bytes;
            let v = rmpv::decode::read_value(&mut rest)
                .map_err(|e| CodecError(format!("invalid MessagePack message: {e}")))?;
            if !rest.is_empty() {
                return Err(CodecError(format!("invalid MessagePack message: {} bytes after the value", rest.len())));
            }
            from_msgpack(v)
        }
        Encoding::Bson => {
            let mut doc =
                bson::Document::from_reader(bytes).map_err(|e| CodecError(format!("invalid BSON message: {e}")))?;
            let data = doc.remove("data").ok_or_else(|| CodecError("BSON message has no 'data' field".into()))?;
            data.into_relaxed_extjson()
        }
    })
}

/// `{"command", "data"}` in `encoding`, without copying `data` into an
/// envelope first where the encoding allows (JSON).
pub fn encode_parts(encoding: Encoding, command: &str, data: &Value) -> Result<Frame, CodecError> {
    #[derive(serde::Serialize)]
    struct Borrowed<'a> {
        command: &'a str,
        data: &'a Value,
    }
    match encoding {
        Encoding::Json => serde_json::to_string(&Borrowed { command, data })
            .map(Frame::Text)
            .map_err(|e| CodecError(format!("json encode: {e}"))),
        _ => encode(encoding, &Envelope::new(command, data.clone())),
    }
}

fn envelope_value(envelope: &Envelope) -> Value {
    serde_json::to_value(envelope).expect("an envelope is always representable as JSON")
}

fn to_msgpack(value: &Value) -> rmpv::Value {
    match value {
        Value::Null => rmpv::Value::Nil,
        Value::Bool(b) => rmpv::Value::Boolean(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                rmpv::Value::from(i)
            } else if let Some(u) = n.as_u64() {
                rmpv::Value::from(u)
            } else {
                rmpv::Value::F64(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => rmpv::Value::from(s.as_str()),
        Value::Array(items) => rmpv::Value::Array(items.iter().map(to_msgpack).collect()),
        Value::Object(map) => {
            rmpv::Value::Map(map.iter().map(|(k, v)| (rmpv::Value::from(k.as_str()), to_msgpack(v))).collect())
        }
    }
}

fn from_msgpack(value: rmpv::Value) -> Value {
    match value {
        rmpv::Value::Nil => Value::Null,
        rmpv::Value::Boolean(b) => Value::Bool(b),
        rmpv::Value::Integer(i) => match (i.as_i64(), i.as_u64()) {
            (Some(v), _) => Value::from(v),
            (None, Some(v)) => Value::from(v),
            _ => Value::Null,
        },
        rmpv::Value::F32(f) => float(f as f64),
        rmpv::Value::F64(f) => float(f),
        rmpv::Value::String(s) => match s.into_str() {
            Some(s) => Value::String(s),
            None => Value::Null,
        },
        rmpv::Value::Binary(bytes) | rmpv::Value::Ext(_, bytes) => {
            Value::Array(bytes.into_iter().map(Value::from).collect())
        }
        rmpv::Value::Array(items) => Value::Array(items.into_iter().map(from_msgpack).collect()),
        rmpv::Value::Map(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                let key = match k {
                    rmpv::Value::String(s) => s.into_str().unwrap_or_default(),
                    other => other.to_string(),
                };
                map.insert(key, from_msgpack(v));
            }
            Value::Object(map)
        }
    }
}

fn float(f: f64) -> Value {
    Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What the connection does with a received frame.
    fn decode(encoding: Encoding, frame: &Frame) -> Result<Envelope, CodecError> {
        match frame {
            Frame::Text(text) => decode_text(text),
            Frame::Binary(bytes) => decode_binary(encoding, bytes),
        }
    }

    fn sample() -> Envelope {
        Envelope::new(
            "initialize",
            json!({"jobId": "numbers-1", "input": [1, -2, 3.5, "é", null, true, {"deep": [[]]}], "big": 9007199254740993u64}),
        )
    }

    #[test]
    fn every_encoding_round_trips() {
        for enc in [Encoding::Json, Encoding::Msgpack, Encoding::Bson] {
            let frame = encode(enc, &sample()).unwrap();
            assert_eq!(matches!(frame, Frame::Text(_)), enc == Encoding::Json);
            assert_eq!(decode(enc, &frame).unwrap(), sample(), "{enc:?}");
        }
    }

    #[test]
    fn parts_encode_as_the_envelope_does() {
        let data = json!({"input": [1, "x"]});
        for enc in [Encoding::Json, Encoding::Msgpack, Encoding::Bson] {
            let frame = encode_parts(enc, "initialize", &data).unwrap();
            assert_eq!(decode(enc, &frame).unwrap(), Envelope::new("initialize", data.clone()), "{enc:?}");
        }
    }

    #[test]
    fn bson_wraps_envelope_in_data_field() {
        let Frame::Binary(bytes) = encode(Encoding::Bson, &Envelope::new("done", json!(30))).unwrap() else {
            panic!("bson must be binary")
        };
        let doc = bson::Document::from_reader(&bytes[..]).unwrap();
        let data = doc.get_document("data").unwrap();
        assert_eq!(data.get_str("command").unwrap(), "done");
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let err = decode(Encoding::Msgpack, &Frame::Binary(vec![0x81, 0xa1])).unwrap_err();
        assert!(err.0.contains("MessagePack"), "{err}");
        let err = decode(Encoding::Json, &Frame::Text("{\"data\": 1}".into())).unwrap_err();
        assert!(err.0.contains("envelope"), "{err}");
    }
}
