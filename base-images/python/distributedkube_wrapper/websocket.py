"""A small RFC 6455 websocket client (standard library only).

Supports ``ws://`` and ``wss://`` (via ``ssl``), the opening handshake with
``Sec-WebSocket-Accept`` verification, masked client frames, 7/16/64-bit
payload lengths, fragmented (continuation) messages, ping -> pong and the
close handshake. Payloads are read straight into preallocated buffers, so
messages of hundreds of MiB cost one copy, not a quadratic pile of them.

Sending is thread-safe (one lock); receiving must happen in one thread.
"""

import base64
import hashlib
import os
import socket
import struct
import threading
from urllib.parse import urlsplit

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA

_SMALL_READ = 65536
_MASK_CHUNK = 1 << 16  # a multiple of 4, so every chunk starts at mask[0]


class WebSocketError(Exception):
    """A handshake or protocol failure."""


class HandshakeError(WebSocketError):
    """The server did not upgrade the connection (no point retrying)."""


def accept_key(key):
    """The ``Sec-WebSocket-Accept`` value that answers ``key``."""
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def mask_payload(mask, payload):
    """XOR ``payload`` with the 4-byte ``mask`` (also unmasks). Returns bytes.

    Uses one big-integer XOR, which runs at C speed even for huge payloads.
    """
    n = len(payload)
    if n == 0:
        return b""
    key = (bytes(mask) * (n // 4 + 1))[:n]
    value = int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")
    return value.to_bytes(n, "little")


def frame_header(opcode, length, fin=True, mask=None):
    """The header bytes of one frame (with the masking key when ``mask``)."""
    first = (0x80 if fin else 0) | opcode
    bit = 0x80 if mask is not None else 0
    if length < 126:
        head = struct.pack("!BB", first, bit | length)
    elif length < 1 << 16:
        head = struct.pack("!BBH", first, bit | 126, length)
    else:
        head = struct.pack("!BBQ", first, bit | 127, length)
    return head + (mask or b"")


def parse_url(url):
    """Split a ws(s) URL into (secure, host, port, resource)."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise ValueError("not a ws:// or wss:// URL: %r" % url)
    secure = parts.scheme == "wss"
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if secure else 80)
    resource = parts.path or "/"
    if parts.query:
        resource += "?" + parts.query
    return secure, host, port, resource


class WebSocket:
    """One client connection. Use :meth:`connect` to open it."""

    def __init__(self, sock):
        self.sock = sock
        self._buf = bytearray()  # bytes received but not consumed yet
        self._send_lock = threading.Lock()
        self.close_sent = False
        self.closed = False
        self.close_code = None
        self.close_reason = ""

    @classmethod
    def connect(cls, url, timeout=10.0, headers=None):
        """Open a TCP (or TLS) connection to ``url`` and do the handshake."""
        secure, host, port, resource = parse_url(url)
        sock = socket.create_connection((host, port), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if secure:
                import ssl

                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
            ws = cls(sock)
            ws._handshake(host, port, resource, headers or {})
            sock.settimeout(None)
            return ws
        except BaseException:
            sock.close()
            raise

    def _handshake(self, host, port, resource, headers):
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        lines = [
            "GET %s HTTP/1.1" % resource,
            "Host: %s:%d" % (host, port),
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: %s" % key,
            "Sec-WebSocket-Version: 13",
        ]
        lines += ["%s: %s" % kv for kv in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        while b"\r\n\r\n" not in self._buf:
            if len(self._buf) > 65536:
                raise HandshakeError("handshake response headers too long")
            self._fill()
        end = self._buf.index(b"\r\n\r\n")
        head = bytes(self._buf[:end]).decode("latin-1").split("\r\n")
        del self._buf[: end + 4]
        status = head[0].split(" ", 2)
        fields = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        if len(status) < 2 or status[1] != "101":
            raise HandshakeError("server refused the websocket upgrade: %s" % head[0])
        if fields.get("upgrade", "").lower() != "websocket":
            raise HandshakeError("bad Upgrade header in handshake response")
        if fields.get("sec-websocket-accept") != accept_key(key):
            raise HandshakeError("bad Sec-WebSocket-Accept in handshake response")

    # ---- reading -------------------------------------------------------

    def _fill(self):
        chunk = self.sock.recv(_SMALL_READ)
        if not chunk:
            raise EOFError("connection closed by the server")
        self._buf += chunk

    def _read_exact(self, n):
        """Exactly ``n`` bytes as a bytearray (big reads go straight in)."""
        if n <= _SMALL_READ or n <= len(self._buf):
            while len(self._buf) < n:
                self._fill()
            out = self._buf[:n]
            del self._buf[:n]
            return out
        out = bytearray(n)
        have = len(self._buf)
        out[:have] = self._buf
        self._buf = bytearray()
        view = memoryview(out)
        while have < n:
            got = self.sock.recv_into(view[have:], min(n - have, 1 << 24))
            if got == 0:
                raise EOFError("connection closed by the server")
            have += got
        return out

    def _read_frame(self):
        b0, b1 = self._read_exact(2)
        if b0 & 0x70:
            raise WebSocketError("reserved bits set in frame (no extension negotiated)")
        fin, opcode, masked, length = bool(b0 & 0x80), b0 & 0x0F, b1 & 0x80, b1 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._read_exact(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._read_exact(8))
        mask = self._read_exact(4) if masked else None
        payload = self._read_exact(length)
        if mask is not None:  # servers must not mask, but be lenient
            payload = bytearray(mask_payload(mask, payload))
        return fin, opcode, payload

    def recv(self):
        """The next data message as ``(opcode, payload)``; ``None`` once closed.

        ``payload`` is a ``str`` for text messages and a ``bytearray`` for
        binary ones. Pings are answered; pongs are dropped; a close frame is
        answered and ends the stream. A dropped TCP connection also ends it.
        """
        parts, opcode = None, None
        while not self.closed:
            try:
                fin, op, payload = self._read_frame()
            except (EOFError, OSError):
                self.closed = True
                return None
            if op == OP_PING:
                try:
                    self._send_frame(OP_PONG, payload)
                except (OSError, WebSocketError):
                    pass  # closing or gone: the next read will tell
            elif op == OP_PONG:
                pass
            elif op == OP_CLOSE:
                self._on_close(payload)
                return None
            elif op == OP_CONT:
                if parts is None:
                    raise WebSocketError("continuation frame without a started message")
                parts.append(payload)
                if fin:
                    return self._message(opcode, parts)
            elif op in (OP_TEXT, OP_BINARY):
                if parts is not None:
                    raise WebSocketError("new message started inside a fragmented one")
                if fin:
                    return self._message(op, [payload])
                parts, opcode = [payload], op
            else:
                raise WebSocketError("unknown opcode 0x%x" % op)
        return None

    @staticmethod
    def _message(opcode, parts):
        data = parts[0] if len(parts) == 1 else bytearray().join(parts)
        if opcode == OP_TEXT:
            return opcode, data.decode("utf-8")
        return opcode, data

    def _on_close(self, payload):
        if len(payload) >= 2:
            (self.close_code,) = struct.unpack("!H", payload[:2])
            self.close_reason = bytes(payload[2:]).decode("utf-8", "replace")
        if not self.close_sent:
            try:
                self._send_frame(OP_CLOSE, payload[:2])
            except OSError:
                pass
        self.closed = True
        self._shutdown()

    # ---- writing -------------------------------------------------------

    def _send_frame(self, opcode, payload, fin=True):
        mask = os.urandom(4)
        n = len(payload)
        header = frame_header(opcode, n, fin, mask)
        with self._send_lock:
            if self.close_sent:
                if opcode == OP_CLOSE:
                    return
                raise WebSocketError("the websocket is closing")
            if opcode == OP_CLOSE:
                self.close_sent = True
            if n <= _MASK_CHUNK:
                self.sock.sendall(header + mask_payload(mask, payload))
                return
            # Mask and send in chunks: memory stays O(chunk), not O(message).
            self.sock.sendall(header)
            view = memoryview(payload).cast("B")
            key = int.from_bytes(mask * (_MASK_CHUNK // 4), "little")
            whole = n - n % _MASK_CHUNK
            for start in range(0, whole, _MASK_CHUNK):
                chunk = int.from_bytes(view[start : start + _MASK_CHUNK], "little") ^ key
                self.sock.sendall(chunk.to_bytes(_MASK_CHUNK, "little"))
            if whole < n:
                self.sock.sendall(mask_payload(mask, view[whole:]))

    def send_text(self, text):
        self._send_frame(OP_TEXT, text.encode("utf-8"))

    def send_binary(self, data):
        self._send_frame(OP_BINARY, data)

    def send(self, opcode, payload):
        """Send one message: ``payload`` is str for text, bytes for binary."""
        if opcode == OP_TEXT:
            self.send_text(payload)
        else:
            self.send_binary(payload)

    def ping(self, payload=b""):
        self._send_frame(OP_PING, payload)

    def close(self, code=1000, reason="", wait=2.0):
        """Start (or finish) the close handshake and drop the connection.

        Waits up to ``wait`` seconds for the server's close frame; must be
        called from the receiving thread (or when nobody is receiving).
        """
        if self.closed:
            return
        try:
            self._send_frame(OP_CLOSE, struct.pack("!H", code) + reason.encode("utf-8")[:120])
            self.sock.settimeout(wait)
            while not self.closed:
                fin, op, payload = self._read_frame()
                if op == OP_CLOSE:
                    self._on_close(payload)
        except (OSError, EOFError, WebSocketError):
            pass
        self.closed = True
        self._shutdown()

    def _shutdown(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
