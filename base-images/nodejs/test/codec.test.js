// MessagePack, BSON and envelope codec tests: round trips of nested values and
// golden byte vectors checked by hand against the MessagePack and BSON specs.
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const msgpack = require('../wrapper/msgpack');
const bson = require('../wrapper/bson');
const codec = require('../wrapper/codec');

const hex = (s) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

const SAMPLE = {
  ints: [0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32, Number.MAX_SAFE_INTEGER,
    -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, Number.MIN_SAFE_INTEGER],
  floats: [0.5, -1.25, 3.141592653589793, 1e300, -2.5e-300],
  text: ['', 'a', 'héllo wörld', '日本語 ✓ 🎉', 'x'.repeat(31), 'y'.repeat(32), 'z'.repeat(300), 'w'.repeat(70000)],
  bytes: [Buffer.alloc(0), Buffer.from([0, 1, 254, 255]), Buffer.alloc(300, 7), Buffer.alloc(70000, 9)],
  empty: { list: [], map: {}, nested: [[], [{}]] },
  flags: [true, false, null],
  deep: { a: { b: { c: { d: [1, [2, [3, { e: 'end' }]]] } } } },
  many: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])),
  long: Array.from({ length: 70000 }, (_, i) => i % 7),
};

test('msgpack round-trips nested values', () => {
  assert.deepStrictEqual(msgpack.decode(msgpack.encode(SAMPLE)), SAMPLE);
});

test('bson round-trips nested values', () => {
  assert.deepStrictEqual(bson.decode(bson.encode(SAMPLE)), SAMPLE);
});

test('undefined becomes null; 64-bit integers beyond 2^53 survive as BigInt', () => {
  const big = { u: 18446744073709551615n, s: -9223372036854775808n, m: 9007199254740993n };
  assert.deepStrictEqual(msgpack.decode(msgpack.encode(big)), big);
  assert.deepStrictEqual(bson.decode(bson.encode({ s: big.s, m: big.m })), { s: big.s, m: big.m });
  assert.deepStrictEqual(msgpack.decode(msgpack.encode([undefined])), [null]);
  assert.deepStrictEqual(bson.decode(bson.encode({ x: undefined })), { x: null });
  assert.throws(() => bson.encode({ u: big.u }), /does not fit in int64/);
});

test('msgpack golden encodings', () => {
  const cases = [
    [null, 'c0'], [true, 'c3'], [false, 'c2'],
    [0, '00'], [127, '7f'], [128, 'cc80'], [255, 'ccff'], [256, 'cd0100'], [65536, 'ce00010000'],
    [2 ** 32, 'cf0000000100000000'], [-1, 'ff'], [-32, 'e0'], [-33, 'd0df'], [-129, 'd1ff7f'],
    [-32769, 'd2ffff7fff'], [-(2 ** 31) - 1, 'd3ffffffff7fffffff'],
    [1.5, 'cb3ff8000000000000'], [-0, 'cb8000000000000000'],
    ['a', 'a161'], ['é', 'a2c3a9'], ['x'.repeat(32), 'd920' + '78'.repeat(32)],
    [Buffer.from([1, 2]), 'c4020102'], [new Uint8Array([3]), 'c40103'],
    [[1, 2, 3], '93010203'], [{ a: 1 }, '81a16101'],
    [{ compact: true, schema: 0 }, '82a7636f6d70616374c3a6736368656d6100'], // msgpack.org example
  ];
  for (const [value, bytes] of cases) {
    assert.strictEqual(msgpack.encode(value).toString('hex'), bytes, JSON.stringify(value));
  }
  assert.strictEqual(msgpack.encode(new Array(16).fill(0)).subarray(0, 3).toString('hex'), 'dc0010');
  assert.strictEqual(msgpack.encode('s'.repeat(256)).subarray(0, 3).toString('hex'), 'da0100');
});

test('msgpack decodes every standard format', () => {
  const cases = [
    ['ca3fc00000', 1.5], ['cb4009000000000000', 3.125], ['d90161', 'a'], ['da000161', 'a'], ['db0000000161', 'a'],
    ['c5000101', Buffer.from([1])], ['c600000001ff', Buffer.from([255])],
    ['dc0001c0', [null]], ['dd00000002c2c3', [false, true]],
    ['de0001a16101', { a: 1 }], ['df00000001a16101', { a: 1 }],
    ['cc80', 128], ['cdffff', 65535], ['ceffffffff', 4294967295], ['cf001fffffffffffff', Number.MAX_SAFE_INTEGER],
    ['d080', -128], ['d18000', -32768], ['d280000000', -(2 ** 31)], ['d3ffffffffffffffff', -1],
    ['cfffffffffffffffff', 18446744073709551615n], ['d38000000000000000', -(2n ** 63n)],
    ['d401aa', Buffer.from([0xaa])], ['d502aabb', Buffer.from([0xaa, 0xbb])], ['d603aabbccdd', hex('aabbccdd')],
    ['d7ff0000000000000001', hex('0000000000000001')], ['d8050102030405060708090a0b0c0d0e0f10', hex('0102030405060708090a0b0c0d0e0f10')],
    ['c70205aabb', Buffer.from([0xaa, 0xbb])], ['c8000105cc', Buffer.from([0xcc])], ['c90000000105dd', Buffer.from([0xdd])],
    ['8101a178', { 1: 'x' }],
  ];
  for (const [bytes, value] of cases) assert.deepStrictEqual(msgpack.decode(hex(bytes)), value, bytes);
});

test('msgpack rejects garbage clearly', () => {
  assert.throws(() => msgpack.decode(hex('c1')), /invalid type byte 0xc1/);
  assert.throws(() => msgpack.decode(hex('a561')), /unexpected end/);
  assert.throws(() => msgpack.decode(hex('dd7fffffff')), /exceeds the data/);
  assert.throws(() => msgpack.decode(hex('0101')), /trailing/);
  assert.throws(() => msgpack.encode({ f() {} }), /cannot encode a value of type function/);
});

test('bson golden encodings (bsonspec.org examples and hand-built ones)', () => {
  const cases = [
    [{ hello: 'world' }, '16000000 02 68656c6c6f00 06000000 776f726c6400 00'],
    [{ BSON: ['awesome', 5.05, 1986] },
      '31000000 04 42534f4e00 26000000 02 3000 08000000 617765736f6d6500 01 3100 3333333333331440 10 3200 c2070000 00 00'],
    [{}, '0500000000'],
    [{ a: 2 ** 31 }, '10000000 12 6100 0000008000000000 00'],
    [{ a: -1 }, '0c000000 10 6100 ffffffff 00'],
    [{ a: true, b: null }, '0c000000 08 6100 01 0a 6200 00'],
    [{ b: Buffer.from([1, 2]) }, '0f000000 05 6200 02000000 00 0102 00'],
    [{ d: { x: 0.5 } }, '18000000 03 6400 10000000 01 7800 000000000000e03f 00 00'],
  ];
  for (const [value, bytes] of cases) {
    assert.strictEqual(bson.encode(value).toString('hex'), hex(bytes).toString('hex'), JSON.stringify(value));
    assert.deepStrictEqual(bson.decode(hex(bytes)), value);
  }
});

test('bson decodes datetime as milliseconds and rejects other types clearly', () => {
  assert.deepStrictEqual(bson.decode(hex('10000000 09 7400 e803000000000000 00')), { t: 1000 });
  assert.throws(() => bson.decode(hex('14000000 07 6900 000102030405060708090a0b 00')), /0x07 \(ObjectId\) at key 'i'/);
  assert.throws(() => bson.decode(hex('0c000000 10 6100 01000000 01')), /does not end with a NUL/);
  assert.throws(() => bson.decode(hex('0c000000 10 6100 01000000')), /invalid document length 12/);
  assert.throws(() => bson.decode(hex('ff000000 00')), /invalid document length/);
  assert.throws(() => bson.encode([1]), /top-level value must be a plain object/);
});

test('envelopes: json is text, msgpack/bson are binary; text frames are always JSON', () => {
  const envelope = { command: 'done', data: { value: [1, 'é', null], n: -5.5 } };
  assert.strictEqual(typeof codec.encode('json', envelope), 'string');
  for (const enc of codec.ENCODINGS) {
    const wire = codec.encode(enc, envelope);
    assert.strictEqual(Buffer.isBuffer(wire), enc !== 'json');
    assert.deepStrictEqual(codec.decode(enc, wire), envelope);
    assert.deepStrictEqual(codec.decode(enc, JSON.stringify(envelope)), envelope);
  }
  assert.deepStrictEqual(bson.decode(codec.encode('bson', envelope)), { data: envelope });
  assert.deepStrictEqual(codec.decode('json', Buffer.from(JSON.stringify(envelope))), envelope);
  assert.strictEqual(codec.encode('json', { command: 'done', data: Buffer.from([1, 2]) }), '{"command":"done","data":[1,2]}');
  assert.throws(() => codec.decode('bson', bson.encode({ other: 1 })), /no 'data' field/);
  assert.throws(() => codec.decode('json', '{"data": 1}'), /not a protocol envelope/);
});
