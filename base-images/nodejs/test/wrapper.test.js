// End-to-end: the real wrapper as a child process (cwd = a temp dir holding the
// algorithm) against the test websocket server, for json, msgpack and bson.
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const net = require('net');
const codec = require('../wrapper/codec');
const { startServer, spawnWrapper, tempDir, within } = require('./helpers');

const ALGORITHM = `'use strict';
module.exports = {
  async init(args) {
    await new Promise((r) => setTimeout(r, 5));
    console.log('init ' + args.taskId);
    if (args.input[0] === 'bad-init') throw new Error('init refused');
  },
  async start(args, api) {
    const [mode, a, b] = args.input;
    api.progress(50, 'half way');
    if (mode === 'throw') throw new TypeError('cannot add ' + a);
    if (mode === 'reject-string') return Promise.reject('plain string');
    if (mode === 'sleep') { await new Promise((r) => setTimeout(r, a || 60000)); api.progress(100, 'late'); return 'slept'; }
    if (mode === 'timer-throw') { setTimeout(() => { throw new RangeError('late'); }, 10); return new Promise(() => {}); }
    if (mode === 'echo') return a;
    if (mode === 'nothing') return undefined;
    console.log('hello from ' + args.taskId);
    return { sum: a + b, task: args.taskId, batchIndex: args.batchIndex, echo: args.input };
  },
  stop(args) { console.log('stop ' + args.taskId); },
  exit() { console.log('bye'); },
};
`;

function task(taskId, input) {
  return { jobId: 'job-1', taskId, nodeName: 'node', pipelineName: 'pipe', algorithmName: 'algo',
    input, flatInput: null, storage: {}, batchIndex: 3, somethingNew: { ignored: true } };
}

/** Start a wrapper for `files` and accept its connection; returns helpers to talk to it. */
async function launch(t, srv, { encoding = 'json', files = { 'index.js': ALGORITHM }, env = {} } = {}) {
  const dir = tempDir(files);
  const worker = spawnWrapper(dir, {
    WORKER_SOCKET_URL: `${srv.url}/api/v1/internal/workers/w-${encoding}`,
    WORKER_ALGORITHM_ENCODING: encoding,
    ...env,
  });
  t.after(() => worker.child.kill('SIGKILL'));
  const conn = await srv.nextConnection();
  const send = (command, data) => conn.send(codec.encode(encoding, { command, data }));
  const recv = async (ms = 5000) => {
    const msg = await conn.next(ms);
    assert.strictEqual(msg.binary, encoding !== 'json', `frame type for ${encoding}`);
    return codec.decode(encoding, msg.binary ? msg.data : msg.data.toString('utf8'));
  };
  return { ...worker, conn, send, recv };
}

async function runTask(w, id, input) {
  w.send('initialize', task(id, input));
  assert.deepStrictEqual(await w.recv(), { command: 'initialized', data: null });
  w.send('start', null);
  assert.deepStrictEqual(await w.recv(), { command: 'started', data: null });
  assert.deepStrictEqual(await w.recv(), { command: 'progress', data: { progress: 50, details: 'half way' } });
  return w.recv();
}

test('wrapper end to end', async (t) => {
  const srv = await startServer();
  t.after(() => srv.close());

  for (const encoding of ['json', 'msgpack', 'bson']) {
    await t.test(`${encoding}: tasks, errors, stop and exit on one connection`, async (t) => {
      const w = await launch(t, srv, { encoding });
      assert.strictEqual(w.conn.req.url, `/api/v1/internal/workers/w-${encoding}?storage=v1&encoding=${encoding}`);

      assert.deepStrictEqual(await runTask(w, 't1', ['add', 2, 3]), {
        command: 'done', data: { sum: 5, task: 't1', batchIndex: 3, echo: ['add', 2, 3] },
      });
      assert.deepStrictEqual((await runTask(w, 't2', ['add', 40, 2])).data.sum, 42, 'a second task on the same connection');

      const failed = await runTask(w, 't3', ['throw', 1]);
      assert.strictEqual(failed.command, 'errorMessage');
      assert.strictEqual(failed.error.code, 'Failed');
      assert.strictEqual(failed.error.message, 'TypeError: cannot add 1');
      assert.match(failed.error.details, /TypeError: cannot add 1\n\s+at /);

      w.send('dance', { please: true }); // unknown: logged and ignored

      const started = Date.now();
      w.send('initialize', task('t4', ['sleep']));
      assert.strictEqual((await w.recv()).command, 'initialized');
      w.send('start', null);
      assert.strictEqual((await w.recv()).command, 'started');
      assert.strictEqual((await w.recv()).command, 'progress');
      w.conn.send(JSON.stringify({ command: 'stop', data: { forceStop: false } })); // text is JSON whatever the encoding
      assert.deepStrictEqual(await w.recv(1000), { command: 'stopped', data: null });
      assert.ok(Date.now() - started < 3000, 'stop answered promptly');

      const big = 'é'.repeat(3 * 1024 * 1024); // 6 MiB each way
      assert.deepStrictEqual(await runTask(w, 't5', ['echo', big]), { command: 'done', data: big });
      assert.deepStrictEqual(await runTask(w, 't6', ['nothing']), { command: 'done', data: null });

      w.send('exit', { exitCode: 7 });
      assert.strictEqual(await within(w.exited, 5000, 'exit'), 7);
      for (const line of ['init t1', 'hello from t1', 'hello from t2', 'stop t4', 'bye']) {
        assert.match(w.out.stdout, new RegExp(`^${line}$`, 'm'), `stdout has "${line}"`);
      }
      assert.match(w.out.stderr, /\[wrapper\] .*unknown command 'dance'/);
      assert.match(w.out.stderr, /TypeError: cannot add 1/, 'the stack is printed to stderr');
    });
  }

  await t.test('init failures, non-Error rejections and uncaught errors become errorMessage', async (t) => {
    const w = await launch(t, srv);
    w.send('initialize', task('t1', ['bad-init']));
    const initFailed = await w.recv();
    assert.strictEqual(initFailed.command, 'errorMessage');
    assert.strictEqual(initFailed.error.message, 'Error: init refused');
    assert.strictEqual((await runTask(w, 't2', ['reject-string'])).error.message, 'plain string');
    assert.strictEqual((await runTask(w, 't3', ['timer-throw'])).error.message, 'RangeError: late');
    assert.strictEqual((await runTask(w, 't4', ['add', 1, 1])).data.sum, 2, 'still serving after an uncaught error');

    // a stopped start that finishes later sends neither progress nor done
    w.send('initialize', task('t5', ['sleep', 200]));
    assert.strictEqual((await w.recv()).command, 'initialized');
    w.send('start', null);
    assert.strictEqual((await w.recv()).command, 'started');
    assert.strictEqual((await w.recv()).command, 'progress');
    w.send('stop', { forceStop: true });
    assert.strictEqual((await w.recv()).command, 'stopped');
    await new Promise((r) => setTimeout(r, 400));
    assert.deepStrictEqual(await runTask(w, 't6', ['echo', 'after']), { command: 'done', data: 'after' });
    w.conn.close(1000); // the server closes: exit code 0
    assert.strictEqual(await within(w.exited, 5000, 'exit'), 0);
  });

  const broken = {
    'a missing entry point': [{ 'index.js': ALGORITHM }, 'nope.js', /cannot find the algorithm entry point .*nope\.js/],
    'a syntax error': [{ 'index.js': 'module.exports = { start( };' }, 'index.js', /index\.js: SyntaxError: .* \(index\.js line 1\)/],
    'no start export': [{ 'main.js': 'module.exports = { run() {} };' }, 'main.js', /main\.js does not export a start.*found: run/],
  };
  for (const [name, [files, entry, pattern]] of Object.entries(broken)) {
    await t.test(`${name}: connects anyway and fails each initialize clearly`, async (t) => {
      const w = await launch(t, srv, { encoding: 'msgpack', files, env: { ALGORITHM_ENTRY_POINT: entry } });
      for (const id of ['t1', 't2']) {
        w.send('initialize', task(id, []));
        const reply = await w.recv();
        assert.strictEqual(reply.command, 'errorMessage');
        assert.match(reply.error.message, pattern);
      }
      assert.match(w.out.stderr, pattern);
      w.send('exit', { exitCode: 0 });
      assert.strictEqual(await within(w.exited, 5000, 'exit'), 0);
    });
  }

  await t.test('ES module entry points (.mjs with a default export, "type": "module")', async (t) => {
    const esm = 'export default { async start(args) { return args.input[0] * 2; } };';
    const named = 'export function start(args) { return "named " + args.input[0]; }';
    for (const [files, entry, expected] of [
      [{ 'algo.mjs': esm }, 'algo.mjs', 42],
      [{ 'index.js': named, 'package.json': '{"type": "module"}' }, 'index.js', 'named 21'],
    ]) {
      const w = await launch(t, srv, { encoding: 'bson', files, env: { ALGORITHM_ENTRY_POINT: entry } });
      w.send('initialize', task('t1', [21]));
      assert.strictEqual((await w.recv()).command, 'initialized');
      w.send('start', null);
      assert.strictEqual((await w.recv()).command, 'started');
      assert.deepStrictEqual(await w.recv(), { command: 'done', data: expected });
      w.send('exit', { exitCode: 3 });
      assert.strictEqual(await within(w.exited, 5000, 'exit'), 3);
    }
  });
});

test('configuration and connection problems', async (t) => {
  const dir = tempDir({ 'index.js': ALGORITHM });
  const freePort = () => new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });

  await t.test('STORAGE_PROTOCOL other than v1 or v3 exits with code 2', async () => {
    const w = spawnWrapper(dir, { STORAGE_PROTOCOL: 'v2', WORKER_SOCKET_PORT: '1' });
    assert.strictEqual(await within(w.exited, 5000, 'exit'), 2);
    assert.match(w.out.stderr, /\[wrapper\] STORAGE_PROTOCOL=v2 is not supported: use v1 .* or v3/);
  });

  await t.test('v3 without its storage variables exits with code 2, naming the variable', async () => {
    const w = spawnWrapper(dir, { STORAGE_PROTOCOL: 'v3', CLUSTER_NAME: 'dk', DEFAULT_STORAGE: 'fs', WORKER_SOCKET_PORT: '1' });
    assert.strictEqual(await within(w.exited, 5000, 'exit'), 2);
    assert.match(w.out.stderr, /\[wrapper\] STORAGE_PROTOCOL=v3 needs BASE_FS_ADAPTER_DIRECTORY/);
  });

  await t.test('retries until the server comes up (host/port variables)', async (t) => {
    const port = await freePort();
    const w = spawnWrapper(dir, { WORKER_SOCKET_HOST: '127.0.0.1', WORKER_SOCKET_PORT: String(port) });
    t.after(() => w.child.kill('SIGKILL'));
    await new Promise((r) => setTimeout(r, 700));
    const srv = await startServer(port);
    t.after(() => srv.close());
    const conn = await srv.nextConnection(5000);
    assert.strictEqual(conn.req.url, '/?storage=v1&encoding=json');
    conn.close();
    assert.strictEqual(await within(w.exited, 5000, 'exit'), 0);
  });

  await t.test('gives up with a clear message when nobody listens', async () => {
    const port = await freePort();
    const w = spawnWrapper(dir, { WORKER_SOCKET_URL: `ws://127.0.0.1:${port}/x?a=b`, WORKER_CONNECT_TIMEOUT_MS: '800' });
    assert.strictEqual(await within(w.exited, 5000, 'exit'), 1);
    assert.match(w.out.stderr, /\[wrapper\] cannot connect to ws:\/\/127\.0\.0\.1:\d+\/x\?a=b&storage=v1&encoding=json/);
  });
});
