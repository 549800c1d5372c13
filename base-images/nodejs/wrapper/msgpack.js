// MessagePack encoder/decoder (https://github.com/msgpack/msgpack/blob/master/spec.md),
// dependency-free. Encoding: Buffer/Uint8Array -> bin, string -> str, integers ->
// the smallest int format (up to (u)int64 for safe integers and BigInts), other
// numbers -> float64, null/undefined -> nil, arrays, plain objects and Maps -> map.
// Decoding accepts every standard format; int64/uint64 outside the safe range come
// back as BigInt, bin and ext/fixext as Buffer (the ext type code is dropped).
'use strict';

const { Writer } = require('./writer');

function encode(value) {
  const w = new Writer();
  write(w, value);
  return w.finish();
}

function write(w, v) {
  if (v === null || v === undefined) return w.u8(0xc0);
  switch (typeof v) {
    case 'boolean': return w.u8(v ? 0xc3 : 0xc2);
    case 'number': return writeNumber(w, v);
    case 'bigint': return writeBigInt(w, v);
    case 'string': return writeString(w, v);
    case 'object': return writeObject(w, v);
    default: throw new TypeError(`MessagePack: cannot encode a value of type ${typeof v}`);
  }
}

function writeNumber(w, v) {
  if (!Number.isSafeInteger(v) || Object.is(v, -0)) {
    w.u8(0xcb);
    return w.f64be(v);
  }
  if (v >= 0) {
    if (v < 0x80) return w.u8(v);
    if (v < 0x100) { w.u8(0xcc); return w.u8(v); }
    if (v < 0x10000) { w.u8(0xcd); return w.u16be(v); }
    if (v < 0x100000000) { w.u8(0xce); return w.u32be(v); }
    w.u8(0xcf);
    return w.u64be(BigInt(v));
  }
  if (v >= -32) return w.u8(v & 0xff);
  if (v >= -0x80) { w.u8(0xd0); return w.i8(v); }
  if (v >= -0x8000) { w.u8(0xd1); return w.i16be(v); }
  if (v >= -0x80000000) { w.u8(0xd2); return w.i32be(v); }
  w.u8(0xd3);
  return w.i64be(BigInt(v));
}

function writeBigInt(w, v) {
  if (v >= -(2n ** 63n) && v < 2n ** 64n) {
    if (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) {
      return writeNumber(w, Number(v));
    }
    if (v < 0n) { w.u8(0xd3); return w.i64be(v); }
    w.u8(0xcf);
    return w.u64be(v);
  }
  throw new RangeError(`MessagePack: BigInt ${v} does not fit in 64 bits`);
}

function writeString(w, s) {
  const len = Buffer.byteLength(s, 'utf8');
  if (len < 32) w.u8(0xa0 | len);
  else if (len < 0x100) { w.u8(0xd9); w.u8(len); }
  else if (len < 0x10000) { w.u8(0xda); w.u16be(len); }
  else { w.u8(0xdb); w.u32be(len); }
  w.string(s, len);
}

function writeObject(w, v) {
  if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) {
    const bytes = v instanceof ArrayBuffer ? Buffer.from(v) : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    const len = bytes.length;
    if (len < 0x100) { w.u8(0xc4); w.u8(len); }
    else if (len < 0x10000) { w.u8(0xc5); w.u16be(len); }
    else { w.u8(0xc6); w.u32be(len); }
    return w.bytes(bytes);
  }
  if (Array.isArray(v)) {
    header(w, v.length, 0x90, 0xdc);
    for (const item of v) write(w, item);
    return;
  }
  if (v instanceof Map) {
    header(w, v.size, 0x80, 0xde);
    for (const [k, val] of v) { write(w, k); write(w, val); }
    return;
  }
  if (typeof v.toJSON === 'function') return write(w, v.toJSON()); // Date and friends, as JSON does
  const keys = Object.keys(v);
  header(w, keys.length, 0x80, 0xde);
  for (const k of keys) { writeString(w, k); write(w, v[k]); }
}

function header(w, n, fix, code16) {
  if (n < 16) return w.u8(fix | n);
  if (n < 0x10000) { w.u8(code16); return w.u16be(n); }
  w.u8(code16 + 1);
  w.u32be(n);
}

// ---- decoding ----

function decode(buf) {
  if (!Buffer.isBuffer(buf)) buf = Buffer.from(buf.buffer ? buf.buffer : buf, buf.byteOffset || 0, buf.byteLength);
  const r = { buf, pos: 0 };
  const value = read(r);
  if (r.pos !== buf.length) throw new Error(`MessagePack: ${buf.length - r.pos} trailing byte(s) after the value`);
  return value;
}

function need(r, n) {
  if (r.pos + n > r.buf.length) throw new Error(`MessagePack: unexpected end of data at byte ${r.pos}`);
  const at = r.pos;
  r.pos += n;
  return at;
}

function read(r) {
  const b = r.buf[need(r, 1)];
  if (b < 0x80) return b;
  if (b < 0x90) return readMap(r, b & 0x0f);
  if (b < 0xa0) return readArray(r, b & 0x0f);
  if (b < 0xc0) return readStr(r, b & 0x1f);
  if (b >= 0xe0) return b - 0x100;
  const buf = r.buf;
  switch (b) {
    case 0xc0: return null;
    case 0xc2: return false;
    case 0xc3: return true;
    case 0xc4: return readBin(r, buf[need(r, 1)]);
    case 0xc5: return readBin(r, buf.readUInt16BE(need(r, 2)));
    case 0xc6: return readBin(r, buf.readUInt32BE(need(r, 4)));
    case 0xc7: return readExt(r, buf[need(r, 1)]);
    case 0xc8: return readExt(r, buf.readUInt16BE(need(r, 2)));
    case 0xc9: return readExt(r, buf.readUInt32BE(need(r, 4)));
    case 0xca: return buf.readFloatBE(need(r, 4));
    case 0xcb: return buf.readDoubleBE(need(r, 8));
    case 0xcc: return buf[need(r, 1)];
    case 0xcd: return buf.readUInt16BE(need(r, 2));
    case 0xce: return buf.readUInt32BE(need(r, 4));
    case 0xcf: return big(buf.readBigUInt64BE(need(r, 8)));
    case 0xd0: return buf.readInt8(need(r, 1));
    case 0xd1: return buf.readInt16BE(need(r, 2));
    case 0xd2: return buf.readInt32BE(need(r, 4));
    case 0xd3: return big(buf.readBigInt64BE(need(r, 8)));
    case 0xd4: return readExt(r, 1);
    case 0xd5: return readExt(r, 2);
    case 0xd6: return readExt(r, 4);
    case 0xd7: return readExt(r, 8);
    case 0xd8: return readExt(r, 16);
    case 0xd9: return readStr(r, buf[need(r, 1)]);
    case 0xda: return readStr(r, buf.readUInt16BE(need(r, 2)));
    case 0xdb: return readStr(r, buf.readUInt32BE(need(r, 4)));
    case 0xdc: return readArray(r, buf.readUInt16BE(need(r, 2)));
    case 0xdd: return readArray(r, buf.readUInt32BE(need(r, 4)));
    case 0xde: return readMap(r, buf.readUInt16BE(need(r, 2)));
    case 0xdf: return readMap(r, buf.readUInt32BE(need(r, 4)));
    default: throw new Error(`MessagePack: invalid type byte 0x${b.toString(16)} at byte ${r.pos - 1}`);
  }
}

function big(n) {
  return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
}

function readStr(r, len) {
  const at = need(r, len);
  return r.buf.toString('utf8', at, at + len);
}

function readBin(r, len) {
  const at = need(r, len);
  return r.buf.subarray(at, at + len);
}

function readExt(r, len) {
  need(r, 1); // the application-defined type code
  return readBin(r, len);
}

function readArray(r, n) {
  if (n > r.buf.length - r.pos) throw new Error(`MessagePack: array of ${n} items exceeds the data`);
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = read(r);
  return out;
}

function readMap(r, n) {
  if (n * 2 > r.buf.length - r.pos) throw new Error(`MessagePack: map of ${n} entries exceeds the data`);
  const out = {};
  for (let i = 0; i < n; i++) {
    const k = read(r);
    const key = typeof k === 'string' ? k : Buffer.isBuffer(k) ? k.toString('utf8') : String(k);
    const v = read(r);
    if (key === '__proto__') Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
    else out[key] = v;
  }
  return out;
}

module.exports = { encode, decode };
