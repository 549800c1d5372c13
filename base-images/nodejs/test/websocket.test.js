// Websocket client tests against the independent test server in helpers.js:
// handshake, masking, 16/64-bit lengths, 20 MiB both ways, fragmentation, ping/pong, close.
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const net = require('net');
const { once } = require('events');
const { connect } = require('../wrapper/websocket');
const { startServer, within } = require('./helpers');

function nextMessage(ws, ms = 10000) {
  return within(new Promise((resolve) => ws.once('message', (data, isBinary) => resolve({ data, isBinary }))), ms, 'a client message');
}

test('websocket client', async (t) => {
  const srv = await startServer();
  t.after(() => srv.close());

  await t.test('handshake keeps path and query; client frames are masked', async () => {
    const ws = await connect(`${srv.url}/api/v1/internal/workers/w-1?storage=v1&encoding=json`);
    const conn = await srv.nextConnection();
    assert.strictEqual(conn.req.url, '/api/v1/internal/workers/w-1?storage=v1&encoding=json');
    assert.strictEqual(conn.req.headers['sec-websocket-version'], '13');
    ws.send('héllo');
    ws.send(Buffer.from([1, 2, 3, 4, 5]));
    assert.deepStrictEqual(await conn.next(), { data: Buffer.from('héllo'), binary: false });
    assert.deepStrictEqual(await conn.next(), { data: Buffer.from([1, 2, 3, 4, 5]), binary: true });
    assert.ok(conn.frames.length >= 2 && conn.frames.every((f) => f.masked), 'every client frame is masked');
    ws.close();
    await conn.closed;
  });

  await t.test('20 MiB binary both ways and a 100 KiB text (16- and 64-bit lengths)', async () => {
    const ws = await connect(srv.url);
    const conn = await srv.nextConnection();
    const big = Buffer.alloc(20 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4093) big[i] = i % 251;
    big[big.length - 1] = 0x5a;
    ws.send(big);
    const got = await conn.next(20000);
    assert.strictEqual(got.binary, true);
    assert.ok(got.data.equals(big), 'server received the 20 MiB message intact');
    assert.strictEqual(conn.frames[0].length, big.length);

    const reply = nextMessage(ws, 20000);
    conn.send(big);
    const back = await reply;
    assert.strictEqual(back.isBinary, true);
    assert.ok(back.data.equals(big), 'client received the 20 MiB message intact');

    const text = 'ü'.repeat(50000); // 100000 bytes: 16-bit length
    const echoed = nextMessage(ws);
    conn.send(text);
    assert.deepStrictEqual(await echoed, { data: text, isBinary: false });
    ws.close();
    await conn.closed;
  });

  await t.test('fragmented message with a ping in between; ping is answered by pong', async () => {
    const ws = await connect(srv.url);
    const conn = await srv.nextConnection();
    const pong = once(conn, 'pong');
    const message = nextMessage(ws);
    conn.sendFrame(0x1, Buffer.from('frag'), false);
    conn.ping('are you there');
    conn.sendFrame(0x0, Buffer.from('men'), false);
    conn.sendFrame(0x0, Buffer.from('ted ✓'), true);
    assert.deepStrictEqual(await message, { data: 'fragmented ✓', isBinary: false });
    const [payload] = await within(pong, 3000, 'pong');
    assert.strictEqual(payload.toString(), 'are you there');
    const binary = nextMessage(ws);
    conn.send(Buffer.alloc(300000, 3), { fragments: 7 });
    const got = await binary;
    assert.ok(got.isBinary && got.data.equals(Buffer.alloc(300000, 3)));
    ws.close();
    await conn.closed;
  });

  await t.test('server-initiated close is echoed and reported once', async () => {
    const ws = await connect(srv.url);
    const conn = await srv.nextConnection();
    let closes = 0;
    const closed = new Promise((resolve) => ws.on('close', (code) => { closes++; resolve(code); }));
    conn.sendFrame(0x8, Buffer.from([0x03, 0xe9])); // 1001 going away
    assert.strictEqual(await within(closed, 3000, 'close'), 1001);
    await conn.closed;
    assert.strictEqual(conn.frames.at(-1).opcode, 0x8, 'client echoed the close frame');
    assert.strictEqual(closes, 1);
    assert.throws(() => ws.send('late'), /closed/);
  });

  await t.test('client-initiated close sends a close frame with the code', async () => {
    const ws = await connect(srv.url);
    const conn = await srv.nextConnection();
    const closed = once(ws, 'close');
    ws.close(1000);
    assert.strictEqual((await once(conn, 'closeFrame'))[0], 1000);
    assert.strictEqual((await within(closed, 3000, 'close'))[0], 1000);
  });

  await t.test('a masked frame from the server is a protocol error (1002)', async () => {
    const ws = await connect(srv.url);
    const conn = await srv.nextConnection();
    const errors = [];
    ws.on('error', (err) => errors.push(err.message));
    const closed = new Promise((resolve) => ws.on('close', resolve)); // (events.once would reject on 'error')
    conn.socket.write(Buffer.from([0x81, 0x81, 1, 2, 3, 4, 0x61 ^ 1]));
    assert.strictEqual(await within(closed, 3000, 'close'), 1002);
    assert.match(errors[0], /server sent a masked frame/);
    assert.strictEqual(conn.closeCode, 1002, 'the client told the server why');
  });
});

test('handshake edge cases: failures are clear errors, early data is kept', async (t) => {
  const srv = await startServer();
  t.after(() => srv.close());
  await assert.rejects(connect(srv.url.replace('ws:', 'http:')), /not a websocket URL/);

  // a plain HTTP answer: the status and body are reported
  srv.server.removeAllListeners('upgrade');
  srv.server.on('upgrade', (req, socket) => {
    socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 19\r\nConnection: close\r\n\r\nunknown encoding xx');
  });
  await assert.rejects(connect(srv.url), /HTTP 400: unknown encoding xx/);

  // a 101 with a wrong Sec-WebSocket-Accept
  srv.server.removeAllListeners('upgrade');
  srv.server.on('upgrade', (req, socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: bm9wZQ==\r\n\r\n');
  });
  await assert.rejects(connect(srv.url), /Sec-WebSocket-Accept/);

  // a first message in the same packet as the 101 is kept until a listener is attached
  srv.server.removeAllListeners('upgrade');
  srv.server.on('upgrade', (req, socket) => {
    const accept = require('../wrapper/websocket').acceptFor(req.headers['sec-websocket-key']);
    socket.write(Buffer.from(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n` +
      '\x81\x05early\x81\x04next', 'latin1'));
  });
  const ws = await connect(srv.url);
  await new Promise((r) => setTimeout(r, 100));
  const got = [];
  await within(new Promise((resolve) => ws.on('message', (m) => { got.push(m); if (got.length === 2) resolve(); })), 3000, 'early messages');
  assert.deepStrictEqual(got, ['early', 'next']);
  ws.socket.destroy();

  // nobody listening
  const port = await new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
  await assert.rejects(connect(`ws://127.0.0.1:${port}`), (err) => err.code === 'ECONNREFUSED');
});
