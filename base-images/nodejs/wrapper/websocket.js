// A small RFC 6455 websocket client on top of Node's http/https upgrade machinery,
// with no dependencies: handshake with Sec-WebSocket-Accept check, masked client
// frames, 16/64-bit lengths, fragmented messages, ping -> pong, close handshake.
// Incoming bytes are kept as a list of chunks and copied once per frame (and once
// more per fragmented message), so 100+ MiB messages cost linear time.
//
//   const ws = await connect('ws://host:port/path', { timeout: 5000 });
//   ws.on('message', (data, isBinary) => ...);   // string for text, Buffer for binary;
//                                                // reading starts once this is attached
//   ws.on('close', (code, reason) => ...);       // exactly once
//   ws.send('text' | buffer); ws.ping(); ws.close(1000);
'use strict';

const http = require('http');
const https = require('https');
const crypto = require('crypto');
const { EventEmitter } = require('events');

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const EMPTY = Buffer.alloc(0);
const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa };

function acceptFor(key) {
  return crypto.createHash('sha1').update(key + GUID).digest('base64');
}

/** Open a websocket to a ws:// or wss:// URL; resolves once the handshake is checked. */
function connect(url, { timeout = 10000, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    if (u.protocol !== 'ws:' && u.protocol !== 'wss:') {
      return reject(new Error(`not a websocket URL (ws:// or wss://): ${url}`));
    }
    const secure = u.protocol === 'wss:';
    const key = crypto.randomBytes(16).toString('base64');
    const req = (secure ? https : http).request({
      hostname: u.hostname.replace(/^\[|\]$/g, ''),
      port: u.port || (secure ? 443 : 80),
      path: (u.pathname || '/') + u.search,
      agent: false,
      headers: {
        Connection: 'Upgrade', Upgrade: 'websocket',
        'Sec-WebSocket-Key': key, 'Sec-WebSocket-Version': '13', ...headers,
      },
    });
    const timer = setTimeout(() => req.destroy(new Error(`websocket handshake timed out after ${timeout} ms`)), timeout);
    req.on('upgrade', (res, socket, head) => {
      clearTimeout(timer);
      if (String(res.headers.upgrade).toLowerCase() !== 'websocket' || res.headers['sec-websocket-accept'] !== acceptFor(key)) {
        socket.destroy();
        return reject(new Error('invalid websocket handshake: bad Upgrade or Sec-WebSocket-Accept header'));
      }
      resolve(new WebSocket(socket, head));
    });
    req.on('response', (res) => {
      clearTimeout(timer);
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { if (body.length < 2000) body += c; });
      const fail = () => reject(new Error(`the server refused the websocket upgrade: HTTP ${res.statusCode}` +
        (body.trim() ? `: ${body.trim().slice(0, 500)}` : '')));
      res.on('end', fail);
      res.on('error', fail);
    });
    req.on('error', (err) => { clearTimeout(timer); reject(err); });
    req.end();
  });
}

/** An open connection. Nothing is read (so no message is lost) until the first
 *  'message' or 'close' listener is attached, as with a stream's 'data' event. */
class WebSocket extends EventEmitter {
  constructor(socket, head) {
    super();
    this.socket = socket;
    this.chunks = [];       // unread incoming bytes
    this.buffered = 0;
    this.frame = null;      // header of the frame whose payload we are waiting for
    this.fragments = null;  // payloads of a fragmented message in progress
    this.fragmentOpcode = 0;
    this.closeSent = false;
    this.closed = false;
    this.failed = false;
    this.closeCode = 1006;
    this.closeReason = '';
    this.closeTimer = null;
    this.flowing = false;
    socket.setNoDelay(true);
    socket.setTimeout(0);
    // Hold incoming bytes until someone listens for messages (see the class comment).
    socket.pause();
    if (head && head.length) socket.unshift(head);
    this.on('newListener', (event) => {
      if ((event === 'message' || event === 'close') && !this.flowing) {
        this.flowing = true;
        process.nextTick(() => socket.resume());
      }
    });
    socket.on('data', (c) => this._onData(c));
    socket.on('end', () => socket.end());
    socket.on('error', (err) => { if (this.listenerCount('error')) this.emit('error', err); });
    socket.on('close', () => this._onSocketClose());
  }

  /** Send a string as a text frame or bytes (Buffer/Uint8Array) as a binary frame. */
  send(data) {
    if (typeof data === 'string') return this._frame(OP.TEXT, Buffer.from(data, 'utf8'));
    const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    return this._frame(OP.BINARY, bytes);
  }

  ping(payload = EMPTY) { this._frame(OP.PING, Buffer.from(payload)); }

  /** Start the close handshake; the socket is dropped if the server does not answer. */
  close(code = 1000, reason = '') {
    if (this.closeSent || this.closed) return;
    const body = Buffer.alloc(2 + Buffer.byteLength(reason));
    body.writeUInt16BE(code, 0);
    body.write(reason, 2);
    this._frame(OP.CLOSE, body);
    this.closeSent = true;
    this.closeTimer = setTimeout(() => this.socket.destroy(), 2000);
  }

  _frame(opcode, payload) {
    if (this.closeSent || this.closed || this.socket.destroyed) throw new Error('the websocket is closed');
    const len = payload.length;
    const extra = len < 126 ? 0 : len < 0x10000 ? 2 : 8;
    const header = Buffer.allocUnsafe(2 + extra + 4);
    header[0] = 0x80 | opcode; // always FIN: we never fragment what we send
    if (extra === 0) header[1] = 0x80 | len;
    else if (extra === 2) { header[1] = 0x80 | 126; header.writeUInt16BE(len, 2); }
    else { header[1] = 0x80 | 127; header.writeBigUInt64BE(BigInt(len), 2); }
    const key = crypto.randomBytes(4);
    key.copy(header, 2 + extra);
    this.socket.cork();
    this.socket.write(header);
    if (len) this.socket.write(mask(payload, key));
    this.socket.uncork();
  }

  _onData(chunk) {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    try {
      while (!this.failed && this._readFrame());
    } catch (err) {
      this._fail(err);
    }
  }

  /** Parse one frame if enough bytes are buffered; false when more are needed. */
  _readFrame() {
    if (!this.frame) {
      if (this.buffered < 2) return false;
      const first = this._peek(2);
      const len7 = first[1] & 0x7f;
      const headerLen = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (first[1] & 0x80 ? 4 : 0);
      if (this.buffered < headerLen) return false;
      const h = this._take(headerLen);
      const fin = (h[0] & 0x80) !== 0;
      const opcode = h[0] & 0x0f;
      let len = len7;
      if (len7 === 126) len = h.readUInt16BE(2);
      else if (len7 === 127) {
        const big = h.readBigUInt64BE(2);
        if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw protocolError('frame length too large');
        len = Number(big);
      }
      if (h[0] & 0x70) throw protocolError('reserved bits set but no extension was negotiated');
      if (h[1] & 0x80) throw protocolError('the server sent a masked frame');
      if (![0, 1, 2, 8, 9, 10].includes(opcode)) throw protocolError(`unknown opcode 0x${opcode.toString(16)}`);
      if (opcode >= 8 && (!fin || len > 125)) throw protocolError('invalid control frame');
      this.frame = { fin, opcode, len };
    }
    if (this.buffered < this.frame.len) return false;
    const { fin, opcode, len } = this.frame;
    this.frame = null;
    this._onFrame(fin, opcode, this._take(len));
    return true;
  }

  _onFrame(fin, opcode, payload) {
    switch (opcode) {
      case OP.TEXT:
      case OP.BINARY:
        if (this.fragments) throw protocolError('a new message started before the previous one ended');
        if (fin) return this._deliver(opcode, payload);
        this.fragments = [payload];
        this.fragmentOpcode = opcode;
        return;
      case OP.CONT: {
        if (!this.fragments) throw protocolError('continuation frame without a message');
        this.fragments.push(payload);
        if (!fin) return;
        const parts = this.fragments;
        this.fragments = null;
        return this._deliver(this.fragmentOpcode, Buffer.concat(parts));
      }
      case OP.PING:
        if (!this.closeSent) this._frame(OP.PONG, payload);
        return this.emit('ping', payload);
      case OP.PONG:
        return this.emit('pong', payload);
      case OP.CLOSE: {
        if (payload.length === 1) throw protocolError('invalid close frame');
        this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        this.closeReason = payload.subarray(2).toString('utf8');
        if (!this.closeSent) {
          this._frame(OP.CLOSE, payload.subarray(0, 2));
          this.closeSent = true;
        }
        this.failed = true; // nothing after a close frame is read
        this.socket.end();
        this.closeTimer = this.closeTimer || setTimeout(() => this.socket.destroy(), 2000);
      }
    }
  }

  _deliver(opcode, data) {
    this.emit('message', opcode === OP.TEXT ? data.toString('utf8') : data, opcode === OP.BINARY);
  }

  _fail(err) {
    this.failed = true;
    if (this.listenerCount('error')) this.emit('error', err);
    this.closeCode = err.closeCode || 1002;
    this.closeReason = err.message;
    try { this.close(this.closeCode, err.message.slice(0, 120)); } catch { /* already closed */ }
    this.socket.end();
  }

  _onSocketClose() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.closeTimer);
    this.emit('close', this.closeCode, this.closeReason);
  }

  /** The first n buffered bytes, without consuming them. */
  _peek(n) {
    if (this.chunks[0].length >= n) return this.chunks[0];
    const out = Buffer.allocUnsafe(n);
    for (let i = 0, off = 0; off < n; i++) off += this.chunks[i].copy(out, off, 0, Math.min(this.chunks[i].length, n - off));
    return out;
  }

  /** Consume the first n buffered bytes (a single copy when they span chunks). */
  _take(n) {
    if (n === 0) return EMPTY;
    this.buffered -= n;
    const first = this.chunks[0];
    if (first.length === n) return this.chunks.shift();
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    let used = 0; // chunks fully consumed
    while (off < n) {
      const c = this.chunks[used];
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
      if (k === c.length) used++;
      else this.chunks[used] = c.subarray(k);
    }
    this.chunks.splice(0, used);
    return out;
  }
}

function protocolError(message) {
  const err = new Error(`websocket protocol error: ${message}`);
  err.closeCode = 1002;
  return err;
}

/** XOR payload with the 4-byte mask into a new buffer, 4 bytes at a time. */
function mask(payload, key) {
  const len = payload.length;
  const out = Buffer.allocUnsafeSlow(len); // its own ArrayBuffer, so 4-byte aligned
  payload.copy(out);
  const words = len >>> 2;
  if (words) {
    const k = new Uint32Array(new Uint8Array(key).buffer)[0];
    const u32 = new Uint32Array(out.buffer, out.byteOffset, words);
    for (let i = 0; i < words; i++) u32[i] ^= k;
  }
  for (let i = words * 4; i < len; i++) out[i] ^= key[i & 3];
  return out;
}

module.exports = { connect, WebSocket, acceptFor, mask };
