"""Protocol envelopes on the wire, in the three encodings.

An envelope is ``{"command": str, "data": ...}`` (or ``"error"`` instead of
``data``). ``json`` travels as a TEXT frame; ``msgpack`` as a BINARY frame
holding the MessagePack envelope; ``bson`` as a BINARY frame holding the
BSON document ``{"data": envelope}``. Incoming TEXT frames are always JSON;
incoming BINARY frames follow the configured encoding.
"""

import json

from . import bson_codec, msgpack_codec
from .websocket import OP_BINARY, OP_TEXT

ENCODINGS = ("json", "msgpack", "bson")


class CodecError(ValueError):
    """A message that cannot be encoded or decoded."""


def to_plain(value):
    """``default`` hook: numpy-like arrays/scalars and sets to plain types."""
    if isinstance(value, (set, frozenset)):
        return list(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "__index__"):
        return value.__index__()
    if hasattr(value, "__float__"):
        return float(value)
    raise TypeError("cannot send a value of type %s" % type(value).__name__)


def _json_default(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(
            "bytes values cannot be sent with the json encoding; "
            "set WORKER_ALGORITHM_ENCODING=msgpack or bson"
        )
    return to_plain(value)


class Codec:
    """Encodes and decodes envelopes for one encoding."""

    def __init__(self, encoding="json"):
        if encoding not in ENCODINGS:
            raise CodecError("unknown encoding %r: use json, msgpack or bson" % encoding)
        self.encoding = encoding

    def encode(self, envelope):
        """Envelope -> ``(opcode, payload)`` ready for the websocket."""
        try:
            if self.encoding == "json":
                text = json.dumps(envelope, ensure_ascii=False, allow_nan=False, default=_json_default)
                return OP_TEXT, text
            if self.encoding == "msgpack":
                return OP_BINARY, msgpack_codec.packb(envelope, default=to_plain)
            return OP_BINARY, bson_codec.encode({"data": envelope}, default=to_plain)
        except (TypeError, ValueError, OverflowError, RecursionError) as e:
            raise CodecError("cannot encode the %r message as %s: %s" % (
                envelope.get("command"), self.encoding, e)) from None

    def decode(self, opcode, payload):
        """``(opcode, payload)`` from the websocket -> envelope dict."""
        try:
            if opcode == OP_TEXT or self.encoding == "json":
                value = json.loads(payload)
            elif self.encoding == "msgpack":
                value = msgpack_codec.unpackb(payload)
            else:
                doc = bson_codec.decode(payload)
                if "data" not in doc:
                    raise CodecError("BSON message has no 'data' field")
                value = doc["data"]
        except (ValueError, TypeError, RecursionError) as e:
            kind = "JSON" if opcode == OP_TEXT or self.encoding == "json" else self.encoding
            raise CodecError("invalid %s message: %s" % (kind, e)) from None
        if not isinstance(value, dict) or not isinstance(value.get("command"), str):
            raise CodecError("not a protocol envelope (no 'command'): %.200r" % (value,))
        return value
