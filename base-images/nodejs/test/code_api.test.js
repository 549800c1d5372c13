// The code API (hkubeApi in start) through a real wrapper process: it sends
// HKube's messages, and the server's answers resolve or reject user code's promises.
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const codec = require('../wrapper/codec');
const { startServer, spawnWrapper, tempDir } = require('./helpers');

const ALGORITHM = `'use strict';
module.exports = {
  async start(args, hkubeApi) {
    const kind = args.input[0];
    if (kind === 'algorithm') return hkubeApi.startAlgorithm('double', [21]);
    if (kind === 'stored') return hkubeApi.startStoredSubpipeline('numbers', { x: 3 });
    if (kind === 'raw') {
      const nodes = [{ nodeName: 'a', algorithmName: 'double', input: ['@flowInput.x'] }];
      return hkubeApi.startRawSubpipeline('inline', nodes, { x: 4 }, {}, {}, false);
    }
    try { await hkubeApi.startAlgorithm('missing'); } catch (e) { return 'caught: ' + e.message; }
    return 'not caught';
  },
};
`;

async function started(t, srv, kind) {
  const worker = spawnWrapper(tempDir({ 'index.js': ALGORITHM }), {
    WORKER_SOCKET_URL: `${srv.url}/api/v1/internal/workers/w-code`,
    WORKER_ALGORITHM_ENCODING: 'json',
  });
  t.after(() => worker.child.kill('SIGKILL'));
  const conn = await srv.nextConnection();
  const send = (command, data) => conn.send(codec.encode('json', { command, data }));
  const recv = async () => codec.decode('json', (await conn.next(5000)).data.toString('utf8'));
  send('initialize', { jobId: 'j', taskId: 't', nodeName: 'n', input: [kind] });
  assert.strictEqual((await recv()).command, 'initialized');
  send('start', null);
  assert.strictEqual((await recv()).command, 'started');
  return { send, recv };
}

test('code API calls', async (t) => {
  const srv = await startServer();
  t.after(() => srv.close());

  await t.test('startAlgorithm resolves with the output', async (t) => {
    const w = await started(t, srv, 'algorithm');
    assert.deepStrictEqual(await w.recv(), {
      command: 'startAlgorithmExecution',
      data: { algorithmName: 'double', input: [21], execId: '1', includeResult: true },
    });
    w.send('algorithmExecutionDone', { execId: '1', response: 42 });
    assert.deepStrictEqual(await w.recv(), { command: 'done', data: 42 });
  });

  await t.test('a stored sub-pipeline resolves past started with its results', async (t) => {
    const w = await started(t, srv, 'stored');
    const call = await w.recv();
    assert.strictEqual(call.command, 'startStoredSubPipeline');
    assert.deepStrictEqual(call.data.subPipeline, { name: 'numbers', flowInput: { x: 3 } });
    w.send('subPipelineStarted', { subPipelineId: '1', jobId: 'numbers-1' });
    const results = [{ nodeName: 'a', algorithmName: 'double', result: 6 }];
    w.send('subPipelineDone', { subPipelineId: '1', response: results });
    assert.deepStrictEqual(await w.recv(), { command: 'done', data: results });
  });

  await t.test('a raw sub-pipeline without its result', async (t) => {
    const w = await started(t, srv, 'raw');
    const call = await w.recv();
    assert.strictEqual(call.command, 'startRawSubPipeline');
    assert.strictEqual(call.data.subPipeline.nodes[0].algorithmName, 'double');
    assert.strictEqual(call.data.includeResult, false);
    w.send('subPipelineDone', { subPipelineId: '1', response: [1] });
    assert.deepStrictEqual(await w.recv(), { command: 'done', data: null });
  });

  await t.test('an error answer rejects', async (t) => {
    const w = await started(t, srv, 'failing');
    assert.strictEqual((await w.recv()).command, 'startAlgorithmExecution');
    w.send('algorithmExecutionError', { execId: '1', error: "algorithm 'missing' does not exist" });
    assert.deepStrictEqual(await w.recv(), {
      command: 'done', data: "caught: startAlgorithmExecution 1: algorithm 'missing' does not exist",
    });
  });
});
