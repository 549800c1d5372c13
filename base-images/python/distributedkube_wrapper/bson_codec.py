"""BSON encoder/decoder for the subset the wrapper protocol needs (https://bsonspec.org/spec.html).

Types: double 0x01, string 0x02, document 0x03, array 0x04, binary 0x05,
bool 0x08, UTC datetime 0x09 (decoded as int milliseconds), null 0x0A,
int32 0x10 and int64 0x12. Integers are written as int32 when they fit,
else int64; larger ones are an error. Other types (ObjectId, decimal128,
regex, ...) are rejected with an error naming the type.
"""

import struct


class BsonError(ValueError):
    """Malformed input or a value this BSON subset cannot carry."""


_INT32 = (-(1 << 31), (1 << 31) - 1)
_INT64 = (-(1 << 63), (1 << 63) - 1)

_UNSUPPORTED = {
    0x06: "undefined", 0x07: "ObjectId", 0x0B: "regular expression",
    0x0C: "DBPointer", 0x0D: "JavaScript code", 0x0E: "symbol",
    0x0F: "JavaScript code with scope", 0x11: "timestamp",
    0x13: "decimal128", 0xFF: "min key", 0x7F: "max key",
}


def encode(document, default=None):
    """Encode a dict to BSON bytes.

    ``default(value)``, when given, converts values of other types into
    encodable ones (or raises ``TypeError``).
    """
    if not isinstance(document, dict):
        raise BsonError("a BSON document must be a dict, not %s" % type(document).__name__)
    out = bytearray()
    _document(document.items(), out, default)
    return bytes(out)


def _cstring(key, out):
    if not isinstance(key, str):
        if isinstance(key, (int, float, bool)) or key is None:
            key = str(key)  # like JSON does with non-string keys
        else:
            raise BsonError("BSON keys must be strings, not %s" % type(key).__name__)
    data = key.encode("utf-8")
    if b"\x00" in data:
        raise BsonError("BSON keys cannot contain NUL characters: %r" % key)
    out += data
    out.append(0)


def _document(items, out, default):
    start = len(out)
    out += b"\x00\x00\x00\x00"
    for key, value in items:
        _element(key, value, out, default)
    out.append(0)
    struct.pack_into("<i", out, start, len(out) - start)


def _element(key, value, out, default):
    type_at = len(out)
    out.append(0)
    _cstring(key, out)
    if value is None:
        code = 0x0A
    elif value is True or value is False:
        code = 0x08
        out.append(1 if value else 0)
    elif isinstance(value, int):
        value = int(value)
        if _INT32[0] <= value <= _INT32[1]:
            code = 0x10
            out += struct.pack("<i", value)
        elif _INT64[0] <= value <= _INT64[1]:
            code = 0x12
            out += struct.pack("<q", value)
        else:
            raise BsonError("integer does not fit BSON int64: %d" % value)
    elif isinstance(value, float):
        code = 0x01
        out += struct.pack("<d", value)
    elif isinstance(value, str):
        code = 0x02
        data = value.encode("utf-8")
        out += struct.pack("<i", len(data) + 1)
        out += data
        out.append(0)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        code = 0x05
        out += struct.pack("<iB", len(value), 0)
        out += value
    elif isinstance(value, dict):
        code = 0x03
        _document(value.items(), out, default)
    elif isinstance(value, (list, tuple)):
        code = 0x04
        _document(((str(i), v) for i, v in enumerate(value)), out, default)
    elif default is not None:
        del out[type_at:]
        return _element(key, default(value), out, default)
    else:
        raise BsonError("cannot encode a %s to BSON" % type(value).__name__)
    out[type_at] = code


def decode(data):
    """Decode BSON bytes (bytes-like) holding exactly one document to a dict."""
    view = memoryview(data).cast("B")
    try:
        doc, end = _read_document(view, 0, False)
    except (IndexError, struct.error):
        raise BsonError("truncated BSON data") from None
    if end != len(view):
        raise BsonError("%d extra bytes after the BSON document" % (len(view) - end))
    return doc


def _read_document(view, pos, as_array):
    (size,) = struct.unpack_from("<i", view, pos)
    end = pos + size
    if size < 5 or end > len(view) or view[end - 1] != 0:
        raise BsonError("bad BSON document length %d at offset %d" % (size, pos))
    pos += 4
    result = [] if as_array else {}
    while pos < end - 1:
        code = view[pos]
        key, pos = _read_cstring(view, pos + 1, end)
        value, pos = _read_value(code, key, view, pos)
        if as_array:
            result.append(value)
        else:
            result[key] = value
    if pos != end - 1:
        raise BsonError("BSON element runs past the end of its document")
    return result, end


def _read_cstring(view, pos, end):
    """A NUL-terminated key, searched in small steps (keys are short)."""
    step = 256
    for start in range(pos, end, step):
        found = bytes(view[start : min(start + step, end)]).find(b"\x00")
        if found >= 0:
            nul = start + found
            return str(view[pos:nul], "utf-8"), nul + 1
    raise BsonError("unterminated BSON key")


def _read_value(code, key, view, pos):
    if code == 0x01:
        return struct.unpack_from("<d", view, pos)[0], pos + 8
    if code == 0x02:
        (n,) = struct.unpack_from("<i", view, pos)
        start = pos + 4
        if n < 1 or start + n > len(view) or view[start + n - 1] != 0:
            raise BsonError("bad BSON string length for key %r" % key)
        return str(view[start : start + n - 1], "utf-8"), start + n
    if code in (0x03, 0x04):
        return _read_document(view, pos, code == 0x04)
    if code == 0x05:
        n, subtype = struct.unpack_from("<iB", view, pos)
        start = pos + 5
        if n < 0 or start + n > len(view):
            raise BsonError("bad BSON binary length for key %r" % key)
        raw = view[start : start + n]
        if subtype == 0x02 and n >= 4:  # old binary: an inner length prefix
            raw = raw[4:]
        return bytes(raw), start + n
    if code == 0x08:
        return view[pos] != 0, pos + 1
    if code == 0x09:
        return struct.unpack_from("<q", view, pos)[0], pos + 8
    if code == 0x0A:
        return None, pos
    if code == 0x10:
        return struct.unpack_from("<i", view, pos)[0], pos + 4
    if code == 0x12:
        return struct.unpack_from("<q", view, pos)[0], pos + 8
    name = _UNSUPPORTED.get(code, "unknown type")
    raise BsonError("unsupported BSON type 0x%02x (%s) for key %r" % (code, name, key))
