"""A test-only websocket SERVER (socket + threading), independent of the client code.

It does the RFC 6455 handshake, reads client frames (insisting that they
are masked) and writes unmasked server frames, fragmented when asked.
"""

import base64
import hashlib
import queue
import socket
import struct
import threading

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


class Server:
    """Listens on 127.0.0.1; each accepted client becomes a :class:`Conn`."""

    def __init__(self, respond=None):
        self.respond = respond  # optional: fn(key) -> raw handshake response bytes
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.conns = queue.Queue()
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def url(self, path=""):
        return "ws://127.0.0.1:%d%s" % (self.port, path)

    def _accept_loop(self):
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            try:
                self.conns.put(Conn(sock, self.respond))
            except Exception as e:  # a failed handshake
                self.conns.put(e)

    def accept(self, timeout=10):
        conn = self.conns.get(timeout=timeout)
        if isinstance(conn, Exception):
            raise conn
        return conn

    def close(self):
        self.listener.close()


class Conn:
    def __init__(self, sock, respond=None):
        self.sock = sock
        sock.settimeout(30)
        self.rfile = sock.makefile("rb")
        self.pongs = []
        request = b""
        while not request.endswith(b"\r\n\r\n"):
            line = self.rfile.readline()
            if not line:
                raise EOFError("client left during the handshake")
            request += line
        lines = request.decode("latin-1").split("\r\n")
        self.request_line = lines[0]
        self.path = lines[0].split(" ")[1]
        self.headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                self.headers[name.strip().lower()] = value.strip()
        key = self.headers["sec-websocket-key"]
        if respond is not None:
            sock.sendall(respond(key))
            return
        accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        sock.sendall(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n" % accept
            ).encode()
        )

    # ---- frames --------------------------------------------------------

    def send_frame(self, opcode, payload, fin=True):
        n = len(payload)
        first = (0x80 if fin else 0) | opcode
        if n < 126:
            head = struct.pack("!BB", first, n)
        elif n < 65536:
            head = struct.pack("!BBH", first, 126, n)
        else:
            head = struct.pack("!BBQ", first, 127, n)
        self.sock.sendall(head)
        self.sock.sendall(payload)

    def read_exact(self, n):
        data = self.rfile.read(n)
        if len(data) != n:
            raise EOFError("client closed the connection")
        return data

    def read_frame(self):
        """-> (fin, opcode, mask_key, raw_payload, payload)"""
        b0, b1 = self.read_exact(2)
        if not b1 & 0x80:
            raise AssertionError("client frame is not masked")
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self.read_exact(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self.read_exact(8))
        mask = self.read_exact(4)
        raw = self.read_exact(n)
        key = (mask * (n // 4 + 1))[:n]
        payload = (int.from_bytes(raw, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big") if n else b""
        return bool(b0 & 0x80), b0 & 0x0F, mask, raw, payload

    def recv(self):
        """The next data message (opcode, bytes); pongs are recorded; None on close."""
        parts, opcode = [], None
        while True:
            fin, op, _, _, payload = self.read_frame()
            if op == PONG:
                self.pongs.append(payload)
                continue
            if op == PING:
                self.send_frame(PONG, payload)
                continue
            if op == CLOSE:
                self.close_payload = payload
                return None
            if op != 0:
                opcode = op
            parts.append(payload)
            if fin:
                return opcode, b"".join(parts)

    def close(self, code=1000):
        try:
            self.send_frame(CLOSE, struct.pack("!H", code))
        except OSError:
            pass

    def drop(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
