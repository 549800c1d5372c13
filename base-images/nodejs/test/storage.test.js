// Storage v3 pieces: the settings, the fs storage, links resolved into input, savePaths metadata.
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { Storage, storageSettings } = require('../wrapper/storage');
const { resolveInput, metadata } = require('../wrapper/links');
const msgpack = require('../wrapper/msgpack');

function fsStorage(t, encoding) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dkube-storage-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const env = { CLUSTER_NAME: 'dk', DEFAULT_STORAGE: 'fs', BASE_FS_ADAPTER_DIRECTORY: root };
  if (encoding) env.STORAGE_ENCODING = encoding;
  return { root, storage: new Storage(storageSettings(env)) };
}

test('settings: HKube\'s variables, each missing or wrong one named', () => {
  const fsEnv = { CLUSTER_NAME: 'dk', DEFAULT_STORAGE: 'fs', BASE_FS_ADAPTER_DIRECTORY: '/data' };
  assert.deepStrictEqual(storageSettings(fsEnv), { type: 'fs', clusterName: 'dk', encoding: 'msgpack', root: '/data' });
  const s3Env = { CLUSTER_NAME: 'dk', DEFAULT_STORAGE: 's3', S3_ENDPOINT_URL: 'http://127.0.0.1:9000',
    AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's', STORAGE_ENCODING: 'bson' };
  assert.deepStrictEqual(storageSettings(s3Env), { type: 's3', clusterName: 'dk', encoding: 'bson',
    endpoint: 'http://127.0.0.1:9000', accessKeyId: 'k', secretAccessKey: 's', region: 'us-east-1' });
  const without = (env, name) => { const copy = { ...env }; delete copy[name]; return copy; };
  for (const name of ['CLUSTER_NAME', 'DEFAULT_STORAGE', 'BASE_FS_ADAPTER_DIRECTORY']) {
    assert.throws(() => storageSettings(without(fsEnv, name)), new RegExp(`STORAGE_PROTOCOL=v3 needs ${name} `));
  }
  for (const name of ['S3_ENDPOINT_URL', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) {
    assert.throws(() => storageSettings(without(s3Env, name)), new RegExp(`needs ${name} `));
  }
  assert.throws(() => storageSettings({ ...fsEnv, DEFAULT_STORAGE: 'gcs' }), /DEFAULT_STORAGE=gcs is not supported: use fs or s3/);
  assert.throws(() => storageSettings({ ...fsEnv, STORAGE_ENCODING: 'yaml' }), /STORAGE_ENCODING=yaml is not supported/);
  assert.throws(() => storageSettings({ ...s3Env, S3_ENDPOINT_URL: 'nope' }), /S3_ENDPOINT_URL=nope is not a URL/);
});

test('fs: put and get round trip, the header leading the file', async (t) => {
  for (const encoding of [undefined, 'json', 'bson']) {
    const { root, storage } = fsStorage(t, encoding);
    const where = storage.outputPath('main:job-1', 'task-1');
    assert.strictEqual(where, 'dk-hkube/main:job-1/task-1');
    const value = { big: Array.from({ length: 1000 }, (_, i) => i * 1.5), items: [1, 2, 3] };
    const size = await storage.put(where, value);
    const file = fs.readFileSync(path.join(root, 'dk-hkube', 'main:job-1', 'task-1'));
    assert.deepStrictEqual([...file.subarray(0, 8)], [1, 8, 2, { json: 2, bson: 1 }[encoding] || 3, 0, 0, 0x48, 0x4b]);
    assert.strictEqual(size, file.length - 8, 'the size is the payload\'s');
    assert.deepStrictEqual(await storage.get(where), value);
    assert.deepStrictEqual(fs.readdirSync(path.dirname(path.join(root, where))), ['task-1'], 'no partial file left');
  }
  const { root, storage } = fsStorage(t);
  fs.mkdirSync(path.join(root, 'dk-hkube', 'j'), { recursive: true });
  fs.writeFileSync(path.join(root, 'dk-hkube', 'j', 'bare'), msgpack.encode([1, 'x']));
  assert.deepStrictEqual(await storage.get('dk-hkube/j/bare'), [1, 'x'], 'an object without a header');
  await assert.rejects(storage.get('dk-hkube/j/none'), new RegExp(`cannot read stored input 'dk-hkube/j/none' \\(no such file under ${root}\\)`));
  await assert.rejects(storage.get('dk-hkube/../../etc/passwd'), /cannot read stored input 'dk-hkube\/..\/..\/etc\/passwd' \(not a storage path\)/);
  fs.writeFileSync(path.join(root, 'dk-hkube', 'j', 'junk'), Buffer.from([0xc1]));
  await assert.rejects(storage.get('dk-hkube/j/junk'), /cannot decode stored input 'dk-hkube\/j\/junk': it has no HKube header/);
  await assert.rejects(storage.put('dk-hkube/j/f', { f() {} }), /cannot encode the output for 'dk-hkube\/j\/f' \(msgpack\)/);
  fs.writeFileSync(path.join(root, 'blocker'), '');
  await assert.rejects(storage.put('blocker/j/t', 1), /cannot store the output at 'blocker\/j\/t' \(fs: E/);
});

test('links: flatInput says where each stored value goes, storage where it is and which sub path', async () => {
  const objects = {
    'dk-hkube/j/make': { big: [1, 2, 3], items: [{ n: 1 }, { n: 2 }], flag: false },
    'dk-hkube/j/other': 'plain',
  };
  const reads = [];
  const read = async (p) => {
    reads.push(p);
    if (!(p in objects)) throw new Error(`cannot read stored input '${p}' (gone)`);
    return objects[p];
  };
  const task = {
    input: [5, '$$ref0', { deep: ['x', '$$ref1'] }, '$$ref2', '$$ref3', '$$ref4'],
    flatInput: { 0: 5, 1: '$$ref0', '2.deep.1': '$$ref1', 3: '$$ref2', 4: '$$ref3', 5: '$$ref4' },
    storage: {
      ref0: { storageInfo: { path: 'dk-hkube/j/make', size: 10 }, path: 'big' },
      ref1: { storageInfo: { path: 'dk-hkube/j/make', size: 10 }, path: 'items.1.n' },
      ref2: { storageInfo: { path: 'dk-hkube/j/other', size: 5 } },
      ref3: [{ storageInfo: { path: 'dk-hkube/j/make' }, path: 'items.0' }, { storageInfo: { path: 'dk-hkube/j/other' } }],
      ref4: { storageInfo: { path: 'dk-hkube/j/make' }, path: 'flag' },
    },
  };
  const input = await resolveInput(task, read);
  assert.strictEqual(input, task.input, 'resolved in place');
  assert.deepStrictEqual(input, [5, [1, 2, 3], { deep: ['x', 2] }, 'plain', [{ n: 1 }, 'plain'], false]);
  assert.deepStrictEqual(reads.sort(), ['dk-hkube/j/make', 'dk-hkube/j/other'], 'each object read once');

  const untouched = { input: [1, '$$not-a-link'], flatInput: null, storage: {} };
  assert.deepStrictEqual(await resolveInput(untouched, read), [1, '$$not-a-link'], 'no flatInput: input as it is');

  const failing = (storage, flat = { 0: '$$r' }) => resolveInput({ input: ['$$r'], flatInput: flat, storage }, read);
  await assert.rejects(failing({}), /input '0' is \$\$r but storage has no 'r'/);
  await assert.rejects(failing({ r: { storageInfo: { path: 'dk-hkube/j/gone' } } }), /cannot read stored input 'dk-hkube\/j\/gone' \(gone\)/);
  await assert.rejects(failing({ r: { storageInfo: { path: 'dk-hkube/j/make' }, path: 'big.9' } }),
    /stored input 'dk-hkube\/j\/make' has no 'big.9'/);
  await assert.rejects(failing({ r: { path: 'big' } }), /storage 'r' has no storageInfo.path/);
  await assert.rejects(failing({ r: { storageInfo: { path: 'dk-hkube/j/other' } } }, { '3.x': '$$r' }),
    /flatInput '3.x' does not point into the input/);
});

test('metadata: what lies at each save path of {nodeName: output}', () => {
  const output = { items: [1, 2, 3], deep: { list: [] }, name: 'x', count: 2, none: null };
  const savePaths = ['make.items', 'make.deep.list', 'make.deep', 'make.name', 'make.count', 'make.none', 'make.missing', 'other.items', 'make'];
  assert.deepStrictEqual(metadata('make', output, savePaths), {
    'make.items': { type: 'array', size: 3 },
    'make.deep.list': { type: 'array', size: 0 },
    'make.deep': { type: 'object' },
    'make.name': { type: 'string' },
    'make.count': { type: 'number' },
    'make.none': { type: 'object' },
    make: { type: 'object' },
  });
  assert.deepStrictEqual(metadata('make', [1, 2], ['make']), { make: { type: 'array', size: 2 } });
  assert.deepStrictEqual(metadata('make', output, undefined), {});
});
