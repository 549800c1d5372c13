// End to end, storage v3: the real wrapper process against the test websocket server, with
// a local-files storage in a temp dir. Links are read into the input before start; the
// result is stored at <CLUSTER_NAME>-hkube/<jobId>/<taskId> and announced with storing.
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const codec = require('../wrapper/codec');
const { Storage, storageSettings } = require('../wrapper/storage');
const { startServer, spawnWrapper, tempDir, within } = require('./helpers');

const ALGORITHM = `'use strict';
module.exports.start = async (args) => {
  const [mode, data] = args.input;
  if (mode === 'big') return { big: Array.from({ length: 100000 }, (_, i) => i), items: ['a', 'b', 'c'] };
  if (mode === 'bytes') return Buffer.from('raw!');
  if (mode === 'fn') return { f() {} };
  return { seen: args.input };
};
`;

test('storage v3 end to end on local files', async (t) => {
  const srv = await startServer();
  t.after(() => srv.close());
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dkube-v3-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const storageEnv = { CLUSTER_NAME: 'dk', DEFAULT_STORAGE: 'fs', BASE_FS_ADAPTER_DIRECTORY: root };
  const storage = new Storage(storageSettings(storageEnv));

  const worker = spawnWrapper(tempDir({ 'index.js': ALGORITHM }), {
    WORKER_SOCKET_URL: `${srv.url}/w`, WORKER_ALGORITHM_ENCODING: 'msgpack', STORAGE_PROTOCOL: 'v3', ...storageEnv,
  });
  t.after(() => worker.child.kill('SIGKILL'));
  const conn = await srv.nextConnection();
  assert.strictEqual(conn.req.url, '/w?storage=v3&encoding=msgpack');
  const send = (command, data) => conn.send(codec.encode('msgpack', { command, data }));
  const recv = async () => codec.decode('msgpack', (await conn.next()).data);
  const run = async (task) => {
    send('initialize', { jobId: 'job-1', nodeName: 'make', info: { savePaths: ['make.items', 'make.nope'] }, ...task });
    assert.deepStrictEqual(await recv(), { command: 'initialized', data: null });
    send('start', null);
    assert.deepStrictEqual(await recv(), { command: 'started', data: null });
    return recv();
  };

  // A large output goes to the storage; the server gets its path, size and the list lengths.
  const storing = await run({ taskId: 't1', input: ['big'] });
  assert.strictEqual(storing.command, 'storing');
  const file = fs.readFileSync(path.join(root, 'dk-hkube', 'job-1', 't1'));
  assert.deepStrictEqual(storing.data, {
    storageInfo: { path: 'dk-hkube/job-1/t1', size: file.length - 8 },
    metadata: { 'make.items': { type: 'array', size: 3 } },
  });
  assert.deepStrictEqual(await recv(), { command: 'done', data: null });
  assert.strictEqual(file.subarray(6, 8).toString(), 'HK');
  assert.ok(file.length > 300000, `${file.length} bytes stored`);

  // The next task gets links to it: a sub path, a list item, nested in the input.
  const consumed = await run({
    taskId: 't2',
    input: ['echo', '$$ref0', { deep: '$$ref1' }],
    flatInput: { 1: '$$ref0', '2.deep': '$$ref1' },
    storage: {
      ref0: { storageInfo: { path: 'dk-hkube/job-1/t1', size: file.length - 8 }, path: 'items' },
      ref1: { storageInfo: { path: 'dk-hkube/job-1/t1' }, path: 'items.2' },
    },
  });
  assert.strictEqual(consumed.command, 'storing');
  assert.deepStrictEqual(await recv(), { command: 'done', data: null });
  assert.deepStrictEqual(await storage.get('dk-hkube/job-1/t2'), { seen: ['echo', ['a', 'b', 'c'], { deep: 'c' }] });

  // Bytes are stored raw.
  assert.strictEqual((await run({ taskId: 't3', input: ['bytes'] })).data.storageInfo.size, 4);
  assert.strictEqual((await recv()).command, 'done');
  assert.strictEqual(fs.readFileSync(path.join(root, 'dk-hkube/job-1/t3')).subarray(8).toString(), 'raw!');

  // Failures name the path and why.
  const missing = await run({ taskId: 't4', input: ['$$r'], flatInput: { 0: '$$r' },
    storage: { r: { storageInfo: { path: 'dk-hkube/job-1/none' } } } });
  assert.strictEqual(missing.command, 'errorMessage');
  assert.match(missing.error.message, /^Error: cannot read stored input 'dk-hkube\/job-1\/none' \(no such file under /);
  const unencodable = await run({ taskId: 't5', input: ['fn'] });
  assert.strictEqual(unencodable.command, 'errorMessage');
  assert.match(unencodable.error.message, /cannot encode the output for 'dk-hkube\/job-1\/t5' \(msgpack\)/);

  send('exit', { exitCode: 0 });
  assert.strictEqual(await within(worker.exited, 5000, 'exit'), 0);
});
