// HKube's format for a stored task output (storage v3): an 8-byte header, then the payload.
//   byte 0  VERSION        0x01
//   byte 1  HEADER_LENGTH  0x08
//   byte 2  DATA_TYPE      0x01 raw bytes (the payload is the value) | 0x02 encoded
//   byte 3  PROTOCOL       0x01 bson | 0x02 json | 0x03 msgpack
//   byte 4-5               0x00 0x00 (unused)
//   byte 6-7  MAGIC        'H' 'K'
// On local files the header is the file's first 8 bytes. On S3 HKube keeps it out of the
// body, in the object's metadata `header` (x-amz-meta-header) as base64, and the body is
// the payload alone. BSON payloads are the document {data: value}, as HKube writes them.
'use strict';

const msgpack = require('./msgpack');
const bson = require('./bson');

const HEADER_LENGTH = 8;
const VERSION = 0x01;
const DATA_TYPE_RAW = 0x01;
const DATA_TYPE_ENCODED = 0x02;
const PROTOCOLS = { bson: 0x01, json: 0x02, msgpack: 0x03 };
const MAGIC = Buffer.from('HK', 'latin1');

/** The 8 header bytes for a payload of `dataType` in `encoding`. */
function encodeHeader(dataType, encoding) {
  const protocol = PROTOCOLS[encoding];
  if (!protocol) throw new Error(`unknown storage encoding '${encoding}'`);
  return Buffer.from([VERSION, HEADER_LENGTH, dataType, protocol, 0x00, 0x00, MAGIC[0], MAGIC[1]]);
}

/** {dataType, encoding} of a header, or null when `bytes` does not start with one (no magic). */
function decodeHeader(bytes) {
  if (!bytes || bytes.length < HEADER_LENGTH || bytes[6] !== MAGIC[0] || bytes[7] !== MAGIC[1]) return null;
  const encoding = Object.keys(PROTOCOLS).find((name) => PROTOCOLS[name] === bytes[3]) || null;
  return { dataType: bytes[2], encoding };
}

/** The header as S3 object metadata carries it (HKube's headerToString: base64). */
const headerToString = (header) => Buffer.from(header).toString('base64');
const headerFromString = (text) => Buffer.from(text, 'base64');

function encodePayload(encoding, value) {
  switch (encoding) {
    case 'msgpack': return msgpack.encode(value);
    case 'bson': return bson.encode({ data: value });
    case 'json': return Buffer.from(JSON.stringify(value), 'utf8');
    default: throw new Error(`unknown storage encoding '${encoding}'`);
  }
}

function decodePayload(encoding, payload) {
  switch (encoding) {
    case 'msgpack': return msgpack.decode(payload);
    case 'bson': return bson.decode(payload).data;
    case 'json': return JSON.parse(payload.toString('utf8'));
    default: throw new Error(`unknown storage encoding '${encoding}'`);
  }
}

/** {header, payload} for a value: bytes are stored raw, anything else encoded. */
function encodeObject(encoding, value) {
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) {
    return { header: encodeHeader(DATA_TYPE_RAW, encoding), payload: Buffer.from(value.buffer, value.byteOffset, value.byteLength) };
  }
  return { header: encodeHeader(DATA_TYPE_ENCODED, encoding), payload: encodePayload(encoding, value) };
}

/**
 * The value of a stored object. `header` is the separate header (S3 metadata) or null;
 * without one, a header at the start of `bytes` is used; without either, the object is
 * tried as `fallback` (STORAGE_ENCODING), then msgpack, json and bson.
 */
function decodeObject(bytes, header = null, fallback = 'msgpack') {
  let info = header ? decodeHeader(header) : null;
  let payload = bytes;
  if (!info) {
    info = decodeHeader(bytes);
    if (info) payload = bytes.subarray(HEADER_LENGTH);
  }
  if (info) {
    if (info.dataType === DATA_TYPE_RAW) return payload;
    if (!info.encoding) throw new Error(`unknown protocol byte 0x${(header || bytes)[3].toString(16)} in the object's header`);
    return decodePayload(info.encoding, payload);
  }
  const tried = [...new Set([fallback, 'msgpack', 'json', 'bson'])];
  for (const encoding of tried) {
    try {
      return decodePayload(encoding, payload);
    } catch { /* the next one */ }
  }
  throw new Error(`it has no HKube header and is not ${tried.join(', ')}`);
}

module.exports = {
  HEADER_LENGTH, DATA_TYPE_RAW, DATA_TYPE_ENCODED, PROTOCOLS,
  encodeHeader, decodeHeader, headerToString, headerFromString, encodeObject, decodeObject,
};
