// Test-only helpers (not a test file, though `node --test` also loads it): an
// independent RFC 6455 websocket SERVER built on http 'upgrade' + crypto, and a
// way to spawn the real wrapper as a child process against it.
'use strict';

const http = require('http');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');
const { EventEmitter, once } = require('events');

const WRAPPER = path.join(__dirname, '..', 'wrapper', 'index.js');

/** Resolve with the first of `promise` or a rejection after ms. */
function within(promise, ms, what) {
  let timer;
  const limit = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms); });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

/** One accepted connection, server side: unmasked frames out, masked frames expected in. */
class ServerConn extends EventEmitter {
  constructor(req, socket, head) {
    super();
    this.req = req;
    this.socket = socket;
    this.chunks = [];
    this.total = 0;
    this.frames = [];   // every received frame: {fin, opcode, masked, length}
    this.messages = []; // unread messages: {data: Buffer, binary}
    this.waiters = [];
    this.fragments = null;
    this.closeCode = null;
    this.closed = new Promise((resolve) => socket.on('close', resolve));
    socket.on('data', (c) => { this.chunks.push(c); this.total += c.length; this._parse(); });
    socket.on('error', () => {});
    if (head.length) socket.emit('data', head);
  }

  _bytes(n) { // consume n bytes: one concat when they span chunks
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.total);
    this.chunks = all.length > n ? [all.subarray(n)] : [];
    this.total -= n;
    return all.subarray(0, n);
  }

  _parse() {
    for (;;) {
      if (this.total < 2) return;
      const head = this.chunks[0].length >= 14 ? this.chunks[0] : Buffer.concat(this.chunks, Math.min(14, this.total));
      let len = head[1] & 0x7f;
      let hl = 2;
      if (len === 126) { if (head.length < 4) return; len = head.readUInt16BE(2); hl = 4; }
      else if (len === 127) { if (head.length < 10) return; len = Number(head.readBigUInt64BE(2)); hl = 10; }
      const masked = (head[1] & 0x80) !== 0;
      if (masked) hl += 4;
      if (this.total < hl + len) return;
      const frame = this._bytes(hl + len);
      const payload = Buffer.from(frame.subarray(hl)); // own copy, unmasked in place
      if (masked) {
        const key = frame.subarray(hl - 4, hl);
        for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
      }
      this._frame(head[0] >> 7 === 1, head[0] & 0x0f, masked, payload);
    }
  }

  _frame(fin, opcode, masked, payload) {
    this.frames.push({ fin, opcode, masked, length: payload.length });
    if (opcode === 0x9) return this.emit('ping', payload);
    if (opcode === 0xa) return this.emit('pong', payload);
    if (opcode === 0x8) {
      this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
      this.emit('closeFrame', this.closeCode);
      this.sendFrame(0x8, payload.subarray(0, 2));
      return this.socket.end();
    }
    if (opcode !== 0) this.fragments = { binary: opcode === 2, parts: [] };
    this.fragments.parts.push(payload);
    if (!fin) return;
    const msg = { data: Buffer.concat(this.fragments.parts), binary: this.fragments.binary };
    this.fragments = null;
    const waiter = this.waiters.shift();
    if (waiter) waiter(msg);
    else this.messages.push(msg);
  }

  /** The next whole message {data: Buffer, binary}. */
  next(ms = 5000) {
    if (this.messages.length) return Promise.resolve(this.messages.shift());
    return within(new Promise((resolve) => this.waiters.push(resolve)), ms, 'a websocket message');
  }

  sendFrame(opcode, payload, fin = true) {
    const len = payload.length;
    const ext = len < 126 ? 0 : len < 0x10000 ? 2 : 8;
    const h = Buffer.alloc(2 + ext);
    h[0] = (fin ? 0x80 : 0) | opcode;
    if (ext === 0) h[1] = len;
    else if (ext === 2) { h[1] = 126; h.writeUInt16BE(len, 2); }
    else { h[1] = 127; h.writeBigUInt64BE(BigInt(len), 2); }
    this.socket.write(Buffer.concat([h, payload]));
  }

  /** Send a text (string) or binary (Buffer) message, split into `fragments` frames. */
  send(data, { fragments = 1 } = {}) {
    const binary = Buffer.isBuffer(data);
    const bytes = binary ? data : Buffer.from(data, 'utf8');
    const size = Math.ceil(bytes.length / fragments) || 1;
    for (let i = 0, off = 0; i < fragments; i++, off += size) {
      this.sendFrame(i === 0 ? (binary ? 2 : 1) : 0, bytes.subarray(off, off + size), i === fragments - 1);
    }
  }

  ping(payload) { this.sendFrame(0x9, Buffer.from(payload)); }
  close(code = 1000) { const b = Buffer.alloc(2); b.writeUInt16BE(code); this.sendFrame(0x8, b); }
}

/** A websocket server on an ephemeral port; `nextConnection()` resolves with a ServerConn. */
async function startServer(port = 0) {
  const server = http.createServer((req, res) => { res.writeHead(426); res.end('websocket only'); });
  const pending = [];
  const waiting = [];
  server.on('upgrade', (req, socket, head) => {
    const accept = crypto.createHash('sha1').update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    const conn = new ServerConn(req, socket, head);
    const w = waiting.shift();
    if (w) w(conn); else pending.push(conn);
  });
  const sockets = new Set();
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return {
    server,
    port: server.address().port,
    url: `ws://127.0.0.1:${server.address().port}`,
    nextConnection(ms = 10000) {
      if (pending.length) return Promise.resolve(pending.shift());
      return within(new Promise((resolve) => waiting.push(resolve)), ms, 'a websocket connection');
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

// Every directory tempDir made is removed when the test process exits.
const tempDirs = [];
process.on('exit', () => {
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** Write files into a fresh temporary directory (removed at exit) and return its path. */
function tempDir(files) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dkube-node-'));
  tempDirs.push(dir);
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  return dir;
}

/** Spawn the real wrapper (cwd = dir); stdout/stderr are collected, `exited` resolves with the code. */
function spawnWrapper(dir, env) {
  const child = spawn(process.execPath, [WRAPPER], {
    cwd: dir,
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (c) => { out.stdout += c; });
  child.stderr.on('data', (c) => { out.stderr += c; });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code === null ? signal : code)));
  return { child, out, exited };
}

module.exports = { startServer, spawnWrapper, tempDir, within, WRAPPER };
