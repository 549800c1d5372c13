// Protocol envelopes on the wire: {command, data} or {command, error}.
//   json    -> text frame with JSON text
//   msgpack -> binary frame with the MessagePack envelope
//   bson    -> binary frame with the BSON document {data: envelope}
// Incoming text frames are always JSON; binary frames follow the encoding.
'use strict';

const msgpack = require('./msgpack');
const bson = require('./bson');

const ENCODINGS = ['json', 'msgpack', 'bson'];

// JSON has no bytes or BigInts: bytes become arrays of numbers (as the runner turns
// MessagePack bin into), BigInts plain numbers.
function jsonReplacer(key, value) {
  const raw = this[key];
  if (ArrayBuffer.isView(raw)) return Array.from(new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength));
  if (raw instanceof ArrayBuffer) return Array.from(new Uint8Array(raw));
  if (typeof value === 'bigint') return Number(value);
  return value;
}

/** Encode an envelope: a string (send as a text frame) or a Buffer (binary frame). */
function encode(encoding, envelope) {
  switch (encoding) {
    case 'json': return JSON.stringify(envelope, jsonReplacer);
    case 'msgpack': return msgpack.encode(envelope);
    case 'bson': return bson.encode({ data: envelope });
    default: throw new Error(`unknown encoding '${encoding}'`);
  }
}

/** Decode one websocket message (string for text frames, Buffer for binary). */
function decode(encoding, message) {
  let value;
  if (typeof message === 'string') value = JSON.parse(message);
  else if (encoding === 'json') value = JSON.parse(message.toString('utf8'));
  else if (encoding === 'msgpack') value = msgpack.decode(message);
  else if (encoding === 'bson') {
    const doc = bson.decode(message);
    if (!('data' in doc)) throw new Error("BSON message has no 'data' field");
    value = doc.data;
  } else throw new Error(`unknown encoding '${encoding}'`);
  if (value === null || typeof value !== 'object' || typeof value.command !== 'string') {
    throw new Error('not a protocol envelope (expected an object with a string "command")');
  }
  return value;
}

module.exports = { ENCODINGS, encode, decode };
