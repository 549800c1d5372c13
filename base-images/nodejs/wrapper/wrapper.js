// The protocol loop: one websocket, one task at a time, many tasks per process.
//   initialize(task) -> init(task)            -> initialized
//   start            -> started, start(task, api) -> done(value) | errorMessage
//   (meanwhile api.startAlgorithm / startStoredSubpipeline / startRawSubpipeline: see code_api.js)
//   stop             -> stop(task)            -> stopped (the running start's result is dropped)
//   exit({exitCode}) -> exit(task), close the socket, finish with exitCode
// initialize and start are handled in arrival order; the user's start runs detached,
// so stop, pings and close keep being processed while it is pending.
// With storage v3 (a Storage from storage.js) the task's links are read into its input
// before start, and the result is stored, then announced: storing({storageInfo, metadata})
// and done(null); a storage failure fails the task with a message naming the path.
'use strict';

const codec = require('./codec');
const { Calls } = require('./code_api');
const links = require('./links');

const HOOK_TIMEOUT_MS = 10000; // how long stop()/exit() hooks may delay the answer

function log(message) {
  process.stderr.write(`[wrapper] ${message}\n`);
}

function safeString(v) {
  try { return String(v); } catch { return Object.prototype.toString.call(v); }
}

/** {message, details} for anything thrown: "Name: message" and the stack for errors. */
function describe(err) {
  if (err instanceof Error || (err && typeof err === 'object' && typeof err.message === 'string' && typeof err.name === 'string')) {
    const message = `${err.name}: ${err.message}`;
    return { message, details: typeof err.stack === 'string' ? err.stack : message };
  }
  const text = safeString(err);
  return { message: text, details: text };
}

function withTimeout(promise, what) {
  let timer;
  const limit = new Promise((resolve) => {
    timer = setTimeout(() => { log(`${what} did not finish within ${HOOK_TIMEOUT_MS} ms; going on`); resolve(); }, HOOK_TIMEOUT_MS);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

class Wrapper {
  /** loaded: the result of algorithm.load(): { algorithm } or { error, details }; storage: a Storage for v3, else null. */
  constructor(ws, encoding, loaded, storage = null) {
    this.ws = ws;
    this.encoding = encoding;
    this.loaded = loaded;
    this.storage = storage;
    this.hooks = loaded.algorithm || {};
    this.task = null;   // the task from the last initialize
    this.run = null;    // the latest start: { task, stopped, finished }
    this.queue = Promise.resolve();
    this.exiting = false;
    this.calls = new Calls((command, data) => this._send(command, data)); // code API calls in flight
    /** Resolves with the process exit code once the connection is over. */
    this.finished = new Promise((resolve) => { this._finish = resolve; });
    ws.on('message', (data) => this._onMessage(data));
    ws.on('error', (err) => log(`websocket error: ${err.message}`));
    ws.on('close', () => {
      this.calls.abandon('the connection closed');
      if (!this.exiting) this._finish(0);
    });
  }

  _onMessage(raw) {
    let msg;
    try {
      msg = codec.decode(this.encoding, raw);
    } catch (err) {
      return log(`ignoring a message that cannot be decoded: ${err.message}`);
    }
    switch (msg.command) {
      case 'initialize': return this._enqueue(() => this._initialize(msg.data));
      case 'start': return this._enqueue(() => this._start());
      case 'stop': return this._stop();
      case 'exit': return this._exit(msg.data);
      default:
        if (this.calls.answer(msg.command, msg.data)) return undefined;
        return log(`ignoring unknown command '${msg.command}'`);
    }
  }

  _enqueue(fn) {
    this.queue = this.queue.then(fn).catch((err) => log(`internal error: ${describe(err).details}`));
  }

  async _initialize(task) {
    if (this.loaded.error) return this._reportLoadError();
    this._abandonRun('a new task was initialized');
    this.task = task && typeof task === 'object' ? task : {};
    if (this.hooks.init) {
      try {
        await this.hooks.init(this.task);
      } catch (err) {
        return this._sendError(err);
      }
    }
    this._send('initialized', null);
  }

  _start() {
    if (this.loaded.error) return this._reportLoadError();
    if (!this.task) return this._sendError(new Error('received start before initialize'));
    this._abandonRun('a new start arrived before the previous one finished');
    const run = { task: this.task, stopped: false, finished: false };
    this.run = run;
    this._send('started', null);
    this._execute(run); // not awaited: the socket keeps serving stop/exit meanwhile
  }

  async _execute(run) {
    const api = this.calls.api((progress, details) => {
      if (!run.stopped && !run.finished) this._send('progress', { progress: progress ?? null, details: details ?? null });
    });
    let value;
    try {
      if (this.storage) await links.resolveInput(run.task, (p) => this.storage.get(p));
      if (run.stopped || run.finished) return;
      value = await this.hooks.start(run.task, api);
    } catch (err) {
      return this._failRun(run, err);
    }
    if (run.stopped || run.finished) return;
    if (value === undefined) value = null;
    if (this.storage) return this._store(run, value);
    run.finished = true;
    const encodeError = this._send('done', value);
    if (encodeError) this._sendError(new Error(`cannot send the algorithm's result (${this.encoding}): ${encodeError.message}`));
  }

  /** Storage v3: the result goes to the storage, the server gets its path (as HKube's wrapper sends it). */
  async _store(run, value) {
    const { jobId, taskId, nodeName, info } = run.task;
    let where;
    let size;
    try {
      if (!jobId || !taskId) throw new Error('cannot store the output: the task has no jobId or taskId');
      where = this.storage.outputPath(jobId, taskId);
      size = await this.storage.put(where, value);
    } catch (err) {
      return this._failRun(run, err);
    }
    if (run.stopped || run.finished) return;
    run.finished = true;
    const meta = links.metadata(nodeName, value, info && info.savePaths);
    this._send('storing', { storageInfo: { path: where, size }, metadata: meta });
    this._send('done', null);
  }

  /** Report err as the failure of run, unless it was stopped or already ended. */
  _failRun(run, err) {
    if (!run || run.stopped || run.finished) return false;
    run.finished = true;
    this._sendError(err);
    return true;
  }

  _abandonRun(why) {
    if (this.run && !this.run.finished && !this.run.stopped) {
      log(`dropping the result of the previous start: ${why}`);
      this.run.stopped = true;
    }
  }

  async _stop() {
    if (this.run && !this.run.finished) this.run.stopped = true;
    if (this.hooks.stop) {
      await withTimeout(Promise.resolve().then(() => this.hooks.stop(this.task)), 'stop()')
        .catch((err) => log(`the algorithm's stop() failed: ${describe(err).details}`));
    }
    this._send('stopped', null);
  }

  async _exit(data) {
    const n = Number(data && data.exitCode);
    const code = Number.isInteger(n) ? n : 0;
    this.exiting = true;
    if (this.hooks.exit) {
      await withTimeout(Promise.resolve().then(() => this.hooks.exit(this.task)), 'exit()')
        .catch((err) => log(`the algorithm's exit() failed: ${describe(err).details}`));
    }
    if (!this.ws.closed) {
      const closed = new Promise((resolve) => { this.ws.once('close', resolve); setTimeout(resolve, 1000); });
      try { this.ws.close(1000); } catch { /* already closing */ }
      await closed;
    }
    this._finish(code);
  }

  /** An error thrown outside any awaited call (timer callback, unhandled rejection). */
  onUncaught(err) {
    const failed = this._failRun(this.run, err);
    if (!failed) log(`uncaught error outside a running task: ${describe(err).details}`);
  }

  _reportLoadError() {
    log(this.loaded.error);
    this._sendEnvelope({ command: 'errorMessage', error: { code: 'Failed', message: this.loaded.error, details: this.loaded.details } });
  }

  _sendError(err) {
    const { message, details } = describe(err);
    process.stderr.write(`${details}\n`);
    this._sendEnvelope({ command: 'errorMessage', error: { code: 'Failed', message, details } });
  }

  _send(command, data) {
    return this._sendEnvelope({ command, data });
  }

  /** Encode and send; returns the encoding error (if any) so callers can report it. */
  _sendEnvelope(envelope) {
    let payload;
    try {
      payload = codec.encode(this.encoding, envelope);
    } catch (err) {
      return err;
    }
    try {
      this.ws.send(payload);
    } catch (err) {
      log(`cannot send '${envelope.command}': ${err.message}`);
    }
    return null;
  }
}

module.exports = { Wrapper, describe, log };
