"""MessagePack encoder/decoder (https://github.com/msgpack/msgpack/blob/master/spec.md).

Encoding: None -> nil, bool, int -> the smallest int format (up to uint64 /
int64), float -> float64, str -> str, bytes/bytearray/memoryview -> bin,
list/tuple -> array, dict -> map, :class:`ExtType` -> ext.

Decoding accepts every format of the spec: float32 becomes a Python float,
ext / fixext become :class:`ExtType` (including the timestamp type -1,
left undecoded). Binary values are returned as ``bytes``.
"""

import struct
from collections import namedtuple

ExtType = namedtuple("ExtType", "code data")


class MsgpackError(ValueError):
    """Malformed input or a value MessagePack cannot carry."""


def packb(obj, default=None):
    """Encode ``obj`` to MessagePack bytes.

    ``default(value)``, when given, converts values of other types into
    encodable ones (or raises ``TypeError``).
    """
    out = bytearray()
    _pack(obj, out, default)
    return bytes(out)


def _pack_len(n, out, fix_base, fix_max, codes, what):
    """Write a length header: fix form if ``n <= fix_max``, else 8/16/32 bit."""
    if fix_base is not None and n <= fix_max:
        out.append(fix_base | n)
    elif codes[0] is not None and n < 1 << 8:
        out += struct.pack(">BB", codes[0], n)
    elif n < 1 << 16:
        out += struct.pack(">BH", codes[1], n)
    elif n < 1 << 32:
        out += struct.pack(">BI", codes[2], n)
    else:
        raise MsgpackError("%s too long for MessagePack (%d)" % (what, n))


def _pack_int(v, out):
    if 0 <= v < 128:
        out.append(v)
    elif -32 <= v < 0:
        out.append(v & 0xFF)
    elif v >= 0:
        if v < 1 << 8:
            out += struct.pack(">BB", 0xCC, v)
        elif v < 1 << 16:
            out += struct.pack(">BH", 0xCD, v)
        elif v < 1 << 32:
            out += struct.pack(">BI", 0xCE, v)
        elif v < 1 << 64:
            out += struct.pack(">BQ", 0xCF, v)
        else:
            raise MsgpackError("integer too large for MessagePack: %d" % v)
    elif v >= -(1 << 7):
        out += struct.pack(">Bb", 0xD0, v)
    elif v >= -(1 << 15):
        out += struct.pack(">Bh", 0xD1, v)
    elif v >= -(1 << 31):
        out += struct.pack(">Bi", 0xD2, v)
    elif v >= -(1 << 63):
        out += struct.pack(">Bq", 0xD3, v)
    else:
        raise MsgpackError("integer too small for MessagePack: %d" % v)


_FIXEXT = {1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}


def _pack(obj, out, default=None):
    if obj is None:
        out.append(0xC0)
    elif obj is True:
        out.append(0xC3)
    elif obj is False:
        out.append(0xC2)
    elif isinstance(obj, int):
        _pack_int(int(obj), out)
    elif isinstance(obj, float):
        out += struct.pack(">Bd", 0xCB, obj)
    elif isinstance(obj, str):
        data = obj.encode("utf-8")
        _pack_len(len(data), out, 0xA0, 31, (0xD9, 0xDA, 0xDB), "string")
        out += data
    elif isinstance(obj, ExtType):
        code, data = obj
        if not -128 <= code <= 127:
            raise MsgpackError("ext type code out of range: %d" % code)
        if len(data) in _FIXEXT:
            out += struct.pack(">Bb", _FIXEXT[len(data)], code)
        else:
            _pack_len(len(data), out, None, 0, (0xC7, 0xC8, 0xC9), "ext")
            out += struct.pack(">b", code)
        out += data
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        _pack_len(len(obj), out, None, 0, (0xC4, 0xC5, 0xC6), "binary")
        out += obj
    elif isinstance(obj, (list, tuple)):
        _pack_len(len(obj), out, 0x90, 15, (None, 0xDC, 0xDD), "array")
        for item in obj:
            _pack(item, out, default)
    elif isinstance(obj, dict):
        _pack_len(len(obj), out, 0x80, 15, (None, 0xDE, 0xDF), "map")
        for key, value in obj.items():
            _pack(key, out, default)
            _pack(value, out, default)
    elif default is not None:
        _pack(default(obj), out, default)
    else:
        raise MsgpackError("cannot encode a %s to MessagePack" % type(obj).__name__)


def unpackb(data):
    """Decode one MessagePack value that fills all of ``data`` (bytes-like)."""
    view = memoryview(data).cast("B")
    try:
        value, pos = _unpack(view, 0)
    except (IndexError, struct.error):
        raise MsgpackError("truncated MessagePack data") from None
    if pos != len(view):
        raise MsgpackError("%d extra bytes after the MessagePack value" % (len(view) - pos))
    return value


# Fixed-size formats: code -> (struct format, size).
_FIXED = {
    0xCA: (">f", 4), 0xCB: (">d", 8),
    0xCC: (">B", 1), 0xCD: (">H", 2), 0xCE: (">I", 4), 0xCF: (">Q", 8),
    0xD0: (">b", 1), 0xD1: (">h", 2), 0xD2: (">i", 4), 0xD3: (">q", 8),
}
# Length-prefixed formats: code -> (kind, struct format of the length).
_SIZED = {
    0xD9: ("str", ">B"), 0xDA: ("str", ">H"), 0xDB: ("str", ">I"),
    0xC4: ("bin", ">B"), 0xC5: ("bin", ">H"), 0xC6: ("bin", ">I"),
    0xC7: ("ext", ">B"), 0xC8: ("ext", ">H"), 0xC9: ("ext", ">I"),
    0xDC: ("array", ">H"), 0xDD: ("array", ">I"),
    0xDE: ("map", ">H"), 0xDF: ("map", ">I"),
}
_FIXEXT_SIZE = {v: k for k, v in _FIXEXT.items()}


def _take(view, pos, n):
    end = pos + n
    if end > len(view):
        raise MsgpackError("truncated MessagePack data")
    return view[pos:end], end


def _unpack(view, pos):
    code = view[pos]
    pos += 1
    if code <= 0x7F:
        return code, pos
    if code >= 0xE0:
        return code - 0x100, pos
    if 0x80 <= code <= 0x8F:
        return _sized("map", code & 0x0F, view, pos)
    if 0x90 <= code <= 0x9F:
        return _sized("array", code & 0x0F, view, pos)
    if 0xA0 <= code <= 0xBF:
        return _sized("str", code & 0x1F, view, pos)
    if code == 0xC0:
        return None, pos
    if code == 0xC2:
        return False, pos
    if code == 0xC3:
        return True, pos
    if code in _FIXED:
        fmt, size = _FIXED[code]
        return struct.unpack_from(fmt, view, pos)[0], pos + size
    if code in _SIZED:
        kind, fmt = _SIZED[code]
        (n,) = struct.unpack_from(fmt, view, pos)
        return _sized(kind, n, view, pos + struct.calcsize(fmt))
    if code in _FIXEXT_SIZE:
        return _sized("ext", _FIXEXT_SIZE[code], view, pos)
    raise MsgpackError("invalid MessagePack type byte 0x%02x" % code)


def _sized(kind, n, view, pos):
    if kind == "str":
        raw, pos = _take(view, pos, n)
        try:
            return str(raw, "utf-8"), pos
        except UnicodeDecodeError as e:
            raise MsgpackError("invalid UTF-8 in MessagePack string: %s" % e) from None
    if kind == "bin":
        raw, pos = _take(view, pos, n)
        return bytes(raw), pos
    if kind == "ext":
        (code,) = struct.unpack_from(">b", view, pos)
        raw, pos = _take(view, pos + 1, n)
        return ExtType(code, bytes(raw)), pos
    if kind == "array":
        items = []
        for _ in range(n):
            item, pos = _unpack(view, pos)
            items.append(item)
        return items, pos
    result = {}
    for _ in range(n):
        key, pos = _unpack(view, pos)
        value, pos = _unpack(view, pos)
        if isinstance(key, list):
            key = tuple(key)
        try:
            result[key] = value
        except TypeError:
            raise MsgpackError("unhashable MessagePack map key: %r" % (key,)) from None
    return result, pos
