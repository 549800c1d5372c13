// BSON encoder/decoder (https://bsonspec.org/spec.html), dependency-free, limited to
// the JSON-like subset the wrapper protocol needs: double 0x01, string 0x02,
// document 0x03, array 0x04, binary 0x05, bool 0x08, UTC datetime 0x09 (decoded as
// milliseconds), null 0x0A, int32 0x10, int64 0x12. Integers are encoded as int32
// when they fit, else int64; other numbers as double. Other types are a clear error.
'use strict';

const { Writer } = require('./writer');

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const TYPE_NAMES = {
  0x06: 'undefined (deprecated)', 0x07: 'ObjectId', 0x0b: 'regular expression', 0x0c: 'DBPointer',
  0x0d: 'JavaScript code', 0x0e: 'symbol', 0x0f: 'JavaScript code with scope', 0x11: 'timestamp',
  0x13: 'decimal128', 0xff: 'min key', 0x7f: 'max key',
};

/** Encode a top-level object as a BSON document. */
function encode(doc) {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc) || ArrayBuffer.isView(doc)) {
    throw new TypeError('BSON: the top-level value must be a plain object');
  }
  const w = new Writer();
  writeDoc(w, doc);
  return w.finish();
}

function writeDoc(w, obj) {
  const start = w.reserve32();
  if (Array.isArray(obj)) obj.forEach((v, i) => element(w, String(i), v));
  else if (obj instanceof Map) for (const [k, v] of obj) element(w, String(k), v);
  else for (const k of Object.keys(obj)) element(w, k, obj[k]);
  w.u8(0);
  w.patchI32le(start, w.pos - start);
}

function element(w, key, v) {
  if (v !== null && typeof v === 'object' && !ArrayBuffer.isView(v) && !(v instanceof ArrayBuffer) &&
      !Array.isArray(v) && !(v instanceof Map) && typeof v.toJSON === 'function') {
    v = v.toJSON(); // Date and friends, as JSON does
  }
  const type = typeOf(v, key);
  w.u8(type);
  if (key.includes('\0')) throw new TypeError(`BSON: key ${JSON.stringify(key)} contains a NUL byte`);
  w.string(key, Buffer.byteLength(key, 'utf8'));
  w.u8(0);
  switch (type) {
    case 0x0a: return;
    case 0x08: return w.u8(v ? 1 : 0);
    case 0x10: return w.i32le(v);
    case 0x12: return w.i64le(BigInt(v));
    case 0x01: return w.f64le(v);
    case 0x02: {
      const len = Buffer.byteLength(v, 'utf8');
      w.i32le(len + 1);
      w.string(v, len);
      return w.u8(0);
    }
    case 0x05: {
      const bytes = v instanceof ArrayBuffer ? Buffer.from(v) : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
      w.i32le(bytes.length);
      w.u8(0); // generic binary subtype
      return w.bytes(bytes);
    }
    default: return writeDoc(w, v); // 0x03 and 0x04
  }
}

function typeOf(v, key) {
  if (v === null || v === undefined) return 0x0a;
  switch (typeof v) {
    case 'boolean': return 0x08;
    case 'string': return 0x02;
    case 'number':
      if (!Number.isSafeInteger(v) || Object.is(v, -0)) return 0x01;
      return v >= -0x80000000 && v <= 0x7fffffff ? 0x10 : 0x12;
    case 'bigint':
      if (v < INT64_MIN || v > INT64_MAX) throw new RangeError(`BSON: BigInt ${v} at key '${key}' does not fit in int64`);
      return 0x12;
    case 'object':
      if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return 0x05;
      return Array.isArray(v) ? 0x04 : 0x03;
    default: throw new TypeError(`BSON: cannot encode a value of type ${typeof v} at key '${key}'`);
  }
}

// ---- decoding ----

/** Decode one BSON document (the whole buffer) into a plain object. */
function decode(buf) {
  if (!Buffer.isBuffer(buf)) buf = Buffer.from(buf.buffer ? buf.buffer : buf, buf.byteOffset || 0, buf.byteLength);
  const r = { buf, pos: 0 };
  const doc = readDoc(r, false, buf.length);
  if (r.pos !== buf.length) throw new Error(`BSON: ${buf.length - r.pos} trailing byte(s) after the document`);
  return doc;
}

function need(r, n, end) {
  if (n < 0 || r.pos + n > end) throw new Error(`BSON: truncated or corrupt data at byte ${r.pos}`);
  const at = r.pos;
  r.pos += n;
  return at;
}

function readDoc(r, isArray, limit) {
  const start = need(r, 4, limit);
  const len = r.buf.readInt32LE(start);
  if (len < 5 || start + len > limit) throw new Error(`BSON: invalid document length ${len} at byte ${start}`);
  const end = start + len;
  if (r.buf[end - 1] !== 0) throw new Error(`BSON: document at byte ${start} does not end with a NUL byte`);
  const out = isArray ? [] : {};
  for (;;) {
    const type = r.buf[need(r, 1, end)];
    if (type === 0) break;
    const nul = r.buf.indexOf(0, r.pos);
    if (nul < 0 || nul >= end) throw new Error(`BSON: unterminated key at byte ${r.pos}`);
    const key = r.buf.toString('utf8', r.pos, nul);
    r.pos = nul + 1;
    const value = readValue(r, type, end, key);
    if (isArray) out.push(value);
    else if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
    else out[key] = value;
  }
  if (r.pos !== end) throw new Error(`BSON: document at byte ${start} is shorter than its length ${len}`);
  return out;
}

function readValue(r, type, end, key) {
  const buf = r.buf;
  switch (type) {
    case 0x01: return buf.readDoubleLE(need(r, 8, end));
    case 0x02: {
      const len = buf.readInt32LE(need(r, 4, end));
      const at = need(r, len, end);
      if (len < 1 || buf[at + len - 1] !== 0) throw new Error(`BSON: invalid string at key '${key}'`);
      return buf.toString('utf8', at, at + len - 1);
    }
    case 0x03: return readDoc(r, false, end);
    case 0x04: return readDoc(r, true, end);
    case 0x05: {
      const len = buf.readInt32LE(need(r, 4, end));
      const subtype = buf[need(r, 1, end)];
      const at = need(r, len, end);
      const skip = subtype === 0x02 && len >= 4 ? 4 : 0; // the old binary subtype repeats the length
      return buf.subarray(at + skip, at + len);
    }
    case 0x08: return buf[need(r, 1, end)] !== 0;
    case 0x09: return Number(buf.readBigInt64LE(need(r, 8, end)));
    case 0x0a: return null;
    case 0x10: return buf.readInt32LE(need(r, 4, end));
    case 0x12: {
      const n = buf.readBigInt64LE(need(r, 8, end));
      return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
    }
    default: {
      const name = TYPE_NAMES[type] || 'unknown type';
      throw new Error(`BSON: unsupported element type 0x${type.toString(16).padStart(2, '0')} (${name}) at key '${key}'`);
    }
  }
}

module.exports = { encode, decode };
