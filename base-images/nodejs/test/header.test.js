// HKube's stored-object format (wrapper/header.js): the 8-byte header and the payloads.
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const format = require('../wrapper/header');
const msgpack = require('../wrapper/msgpack');
const bson = require('../wrapper/bson');

const VALUE = { big: [1, 2, 3], name: 'é', nested: { ok: true, none: null } };

test('the header is HKube\'s 8 bytes: version, length, data type, protocol, 0, 0, "HK"', () => {
  assert.deepStrictEqual([...format.encodeHeader(format.DATA_TYPE_ENCODED, 'msgpack')], [1, 8, 2, 3, 0, 0, 0x48, 0x4b]);
  assert.deepStrictEqual([...format.encodeHeader(format.DATA_TYPE_ENCODED, 'bson')], [1, 8, 2, 1, 0, 0, 0x48, 0x4b]);
  assert.deepStrictEqual([...format.encodeHeader(format.DATA_TYPE_RAW, 'json')], [1, 8, 1, 2, 0, 0, 0x48, 0x4b]);
  assert.deepStrictEqual(format.decodeHeader(Buffer.from([1, 8, 2, 3, 0, 0, 0x48, 0x4b, 0xc0])), { dataType: 2, encoding: 'msgpack' });
  assert.strictEqual(format.decodeHeader(msgpack.encode(VALUE)), null, 'no magic, no header');
  assert.strictEqual(format.decodeHeader(Buffer.from('HK')), null, 'too short');
  assert.throws(() => format.encodeHeader(2, 'yaml'), /unknown storage encoding 'yaml'/);
});

test('S3 metadata carries the header as base64 (HKube\'s headerToString)', () => {
  const header = format.encodeHeader(format.DATA_TYPE_ENCODED, 'msgpack');
  assert.strictEqual(format.headerToString(header), 'AQgCAwAASEs=');
  assert.deepStrictEqual(format.headerFromString('AQgCAwAASEs='), header);
});

test('objects round trip in every encoding, with the header in front or apart', () => {
  for (const encoding of ['msgpack', 'json', 'bson']) {
    const { header, payload } = format.encodeObject(encoding, VALUE);
    assert.deepStrictEqual(format.decodeHeader(header), { dataType: format.DATA_TYPE_ENCODED, encoding });
    assert.deepStrictEqual(format.decodeObject(Buffer.concat([header, payload])), VALUE, `${encoding}: header in the bytes (fs)`);
    assert.deepStrictEqual(format.decodeObject(payload, header), VALUE, `${encoding}: header apart (S3 metadata)`);
  }
  // The payloads are what HKube writes: plain MessagePack, BSON {data: value}, JSON text.
  assert.deepStrictEqual(format.encodeObject('msgpack', VALUE).payload, msgpack.encode(VALUE));
  assert.deepStrictEqual(bson.decode(format.encodeObject('bson', VALUE).payload), { data: VALUE });
  assert.strictEqual(format.encodeObject('json', [1]).payload.toString(), '[1]');
});

test('bytes are stored raw; objects without a header are tried as the encodings', () => {
  const raw = format.encodeObject('msgpack', Buffer.from([7, 8, 9]));
  assert.strictEqual(raw.header[2], format.DATA_TYPE_RAW);
  assert.deepStrictEqual([...raw.payload], [7, 8, 9]);
  assert.deepStrictEqual([...format.decodeObject(Buffer.concat([raw.header, raw.payload]))], [7, 8, 9]);

  assert.deepStrictEqual(format.decodeObject(msgpack.encode(VALUE)), VALUE, 'bare MessagePack');
  assert.deepStrictEqual(format.decodeObject(Buffer.from('{"a": [1]}')), { a: [1] }, 'bare JSON');
  assert.deepStrictEqual(format.decodeObject(bson.encode({ data: VALUE }), null, 'bson'), VALUE, 'bare BSON, as configured');
  assert.throws(() => format.decodeObject(Buffer.from([0xc1, 0xc1])), /no HKube header and is not msgpack, json, bson/);
  const unknown = Buffer.from([1, 8, 2, 9, 0, 0, 0x48, 0x4b, 0]);
  assert.throws(() => format.decodeObject(unknown), /unknown protocol byte 0x9/);
});
