// DistributedKube's JavaScript algorithm wrapper (HKube wrapper protocol, storage v1 or v3).
// Run as `node <wrappers>/nodejs/wrapper/index.js` with cwd = the algorithm's code.
// Needs Node >= 18 and nothing installed. Environment:
//   WORKER_SOCKET_URL          ws://host:port/path (else ws://$WORKER_SOCKET_HOST:$WORKER_SOCKET_PORT,
//                              defaults 127.0.0.1 and 3000); ?storage=<v1|v3>&encoding=<enc> is appended
//   WORKER_ALGORITHM_ENCODING  json (default) | msgpack | bson
//   STORAGE_PROTOCOL           v1 (default: task data inline in messages) | v3 (job data by
//                              reference: inputs are read from, and outputs written to, the
//                              shared storage; only paths pass through the server). v3 reads
//                              HKube's storage variables (storage.js):
//     CLUSTER_NAME               outputs at <CLUSTER_NAME>-hkube/<jobId>/<taskId>
//     DEFAULT_STORAGE            fs | s3
//     BASE_FS_ADAPTER_DIRECTORY  fs: the storage's root folder
//     S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, S3_REGION (default us-east-1): s3
//     STORAGE_ENCODING           msgpack (default) | json | bson: how outputs are stored
//                              (DISCOVERY_* are ignored: data never goes wrapper to wrapper)
//   ALGORITHM_ENTRY_POINT      the user's module, relative to cwd (default index.js)
//   WORKER_CONNECT_TIMEOUT_MS  how long to retry a refused connection (default 10000)
// Exit codes: 0 when the server closes the connection, the exitCode of an `exit`
// command, 1 when it cannot connect, 2 for a bad configuration (a missing or wrong variable).
'use strict';

const { connect } = require('./websocket');
const { load } = require('./algorithm');
const { Wrapper, log } = require('./wrapper');
const { ENCODINGS } = require('./codec');
const { Storage, storageSettings } = require('./storage');

const RETRYABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ETIMEDOUT', 'EPIPE']);

/** Read and check the environment; throws with a message for the user on bad values. */
function settings(env) {
  const protocol = env.STORAGE_PROTOCOL || 'v1';
  if (protocol !== 'v1' && protocol !== 'v3') {
    throw new Error(`STORAGE_PROTOCOL=${protocol} is not supported: use v1 (data inline in messages) or v3 (data by reference)`);
  }
  const storage = protocol === 'v3' ? storageSettings(env) : null;
  const encoding = env.WORKER_ALGORITHM_ENCODING || 'json';
  if (!ENCODINGS.includes(encoding)) {
    throw new Error(`WORKER_ALGORITHM_ENCODING=${encoding} is not supported: use ${ENCODINGS.join(', ')}`);
  }
  let host = env.WORKER_SOCKET_HOST || '127.0.0.1';
  if (host.includes(':') && !host.startsWith('[')) host = `[${host}]`;
  const base = env.WORKER_SOCKET_URL || `ws://${host}:${env.WORKER_SOCKET_PORT || 3000}`;
  const url = `${base}${base.includes('?') ? '&' : '?'}storage=${protocol}&encoding=${encoding}`;
  const connectTimeout = Number(env.WORKER_CONNECT_TIMEOUT_MS) || 10000;
  return { url, encoding, storage, entryPoint: env.ALGORITHM_ENTRY_POINT || 'index.js', connectTimeout };
}

/** Connect, retrying refused connections with backoff until the deadline. */
async function connectWithRetry(url, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let delay = 50;
  for (;;) {
    try {
      return await connect(url, { timeout: Math.max(1000, deadline - Date.now()) });
    } catch (err) {
      if (!RETRYABLE.has(err.code) || Date.now() + delay > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 1000);
    }
  }
}

async function main() {
  let cfg;
  try {
    cfg = settings(process.env);
  } catch (err) {
    log(err.message);
    return process.exit(2);
  }
  let wrapper = null;
  const onUncaught = (err) => {
    if (wrapper) return wrapper.onUncaught(err);
    log(`uncaught error before connecting: ${err && err.stack ? err.stack : err}`);
  };
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);

  const loaded = await load(cfg.entryPoint, process.cwd());
  if (loaded.error) log(loaded.details === loaded.error ? loaded.error : `${loaded.error}\n${loaded.details}`);

  let ws;
  try {
    ws = await connectWithRetry(cfg.url, cfg.connectTimeout);
  } catch (err) {
    log(`cannot connect to ${cfg.url} within ${cfg.connectTimeout} ms: ${err.message || err.code || err}`);
    return process.exit(1);
  }
  wrapper = new Wrapper(ws, cfg.encoding, loaded, cfg.storage && new Storage(cfg.storage));
  process.exit(await wrapper.finished);
}

if (require.main === module) main();

module.exports = { settings, connectWithRetry };
