"""The websocket client against the test-only server in ws_server.py."""

import os
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import unittest
from unittest import mock

from distributedkube_wrapper import websocket
from distributedkube_wrapper.websocket import OP_BINARY, OP_TEXT, HandshakeError, WebSocket

from .ws_server import BINARY, CLOSE, PING, TEXT, Conn, Server

MIB = 1 << 20


class HelpersTest(unittest.TestCase):
    def test_accept_key_rfc_example(self):
        # RFC 6455 section 1.3.
        self.assertEqual(websocket.accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")

    def test_headers_and_lengths(self):
        mask = b"\x01\x02\x03\x04"
        self.assertEqual(websocket.frame_header(OP_TEXT, 5), b"\x81\x05")
        self.assertEqual(websocket.frame_header(OP_BINARY, 126, mask=mask), b"\x82\xfe\x00\x7e" + mask)
        self.assertEqual(websocket.frame_header(OP_BINARY, 65536), b"\x82\x7f" + struct.pack("!Q", 65536))
        self.assertEqual(websocket.frame_header(OP_TEXT, 0, fin=False), b"\x01\x00")

    def test_mask_rfc_example(self):
        # RFC 6455 section 5.7: masked "Hello".
        masked = websocket.mask_payload(b"\x37\xfa\x21\x3d", b"Hello")
        self.assertEqual(masked, b"\x7f\x9f\x4d\x51\x58")

    def test_parse_url(self):
        self.assertEqual(websocket.parse_url("ws://h:3000/a/b?x=1"), (False, "h", 3000, "/a/b?x=1"))
        self.assertEqual(websocket.parse_url("wss://h"), (True, "h", 443, "/"))
        with self.assertRaises(ValueError):
            websocket.parse_url("http://h")


class ClientTest(unittest.TestCase):
    def setUp(self):
        self.server = Server()
        self.client = WebSocket.connect(self.server.url("/w/1?storage=v1&encoding=json"), timeout=5)
        self.conn = self.server.accept()

    def tearDown(self):
        self.client._shutdown()
        self.conn.drop()
        self.server.close()

    def test_handshake_request(self):
        self.assertEqual(self.conn.path, "/w/1?storage=v1&encoding=json")
        self.assertEqual(self.conn.headers["upgrade"].lower(), "websocket")
        self.assertEqual(self.conn.headers["sec-websocket-version"], "13")

    def test_client_frames_are_masked(self):
        self.client.send_text("hello, world")
        fin, opcode, mask, raw, payload = self.conn.read_frame()
        self.assertTrue(fin)
        self.assertEqual(opcode, TEXT)
        self.assertEqual(payload, b"hello, world")
        self.assertEqual(len(mask), 4)
        self.assertEqual(websocket.mask_payload(mask, raw), b"hello, world")
        self.client.send_text("hello, world")
        self.assertNotEqual(self.conn.read_frame()[2], mask, "a fresh key per frame")

    def test_all_length_forms_both_ways(self):
        for n in (0, 1, 125, 126, 127, 65535, 65536, 70000):
            data = os.urandom(n)
            self.client.send_binary(data)
            self.assertEqual(self.conn.recv(), (BINARY, data))
            self.conn.send_frame(BINARY, data)
            op, got = self.client.recv()
            self.assertEqual((op, bytes(got)), (OP_BINARY, data))

    def test_large_message_both_ways(self):
        data = os.urandom(20 * MIB)
        sender = threading.Thread(target=self.client.send_binary, args=(data,))
        sender.start()
        self.assertEqual(self.conn.recv(), (BINARY, data))
        sender.join()
        threading.Thread(target=self.conn.send_frame, args=(BINARY, data)).start()
        op, got = self.client.recv()
        self.assertEqual(op, OP_BINARY)
        self.assertTrue(got == data)
        text = "é" * (10 * MIB)
        threading.Thread(target=self.conn.send_frame, args=(TEXT, text.encode())).start()
        self.assertEqual(self.client.recv(), (OP_TEXT, text))

    def test_fragmented_message_with_interleaved_ping(self):
        self.conn.send_frame(TEXT, "frag".encode(), fin=False)
        self.conn.send_frame(0, "men".encode(), fin=False)
        self.conn.send_frame(PING, b"are you there")
        self.conn.send_frame(0, "ted ✓".encode(), fin=True)
        self.assertEqual(self.client.recv(), (OP_TEXT, "fragmented ✓"))
        self.conn.send_frame(BINARY, b"\x01", fin=False)
        self.conn.send_frame(0, b"\x02" * 100000, fin=True)
        op, got = self.client.recv()
        self.assertEqual(bytes(got), b"\x01" + b"\x02" * 100000)
        self.client.send_text("x")
        self.assertEqual(self.conn.recv(), (TEXT, b"x"))
        self.assertEqual(self.conn.pongs, [b"are you there"])

    def test_ping_answered_with_pong(self):
        self.conn.send_frame(PING, b"p1")
        self.conn.send_frame(TEXT, b"after")
        self.assertEqual(self.client.recv(), (OP_TEXT, "after"))
        fin, opcode, _, _, payload = self.conn.read_frame()
        self.assertEqual((opcode, payload), (0xA, b"p1"))

    def test_server_close_is_echoed(self):
        self.conn.close(1001)
        self.assertIsNone(self.client.recv())
        self.assertEqual(self.client.close_code, 1001)
        fin, opcode, _, _, payload = self.conn.read_frame()
        self.assertEqual((opcode, payload), (CLOSE, struct.pack("!H", 1001)))

    def test_client_close_handshake(self):
        answered = []

        def server_side():
            answered.append(self.conn.recv())
            self.conn.close(1000)

        t = threading.Thread(target=server_side)
        t.start()
        self.client.close(1000, "bye")
        t.join()
        self.assertEqual(answered, [None])
        self.assertEqual(self.conn.close_payload, struct.pack("!H", 1000) + b"bye")
        self.assertTrue(self.client.closed)

    def test_dropped_connection_ends_stream(self):
        self.conn.drop()
        self.assertIsNone(self.client.recv())


class BufferedFramesTest(unittest.TestCase):
    def test_frames_glued_to_the_handshake_response(self):
        big = os.urandom(200000)

        def respond(key):
            frames = (
                b"\x81\x05first"
                + b"\x82\x7f" + struct.pack("!Q", len(big)) + big
                + b"\x82\x7f" + struct.pack("!Q", 70000) + big[:70000]
                + b"\x82\x7e" + struct.pack("!H", 65535) + big[:65535]
                + b"\x81\x04last"
            )
            return (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Accept: %s\r\n\r\n" % websocket.accept_key(key)
            ).encode() + frames

        server = Server(respond=respond)
        self.addCleanup(server.close)
        client = WebSocket.connect(server.url("/"), timeout=5)
        self.addCleanup(client._shutdown)
        self.assertEqual(client.recv(), (OP_TEXT, "first"))
        self.assertEqual(bytes(client.recv()[1]), big)
        self.assertEqual(bytes(client.recv()[1]), big[:70000])
        self.assertEqual(bytes(client.recv()[1]), big[:65535])
        self.assertEqual(client.recv(), (OP_TEXT, "last"))


@unittest.skipUnless(shutil.which("openssl"), "needs the openssl command to make a certificate")
class TlsTest(unittest.TestCase):
    def test_wss(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        cert, key = os.path.join(tmp.name, "c.pem"), os.path.join(tmp.name, "k.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
             "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
            check=True, capture_output=True,
        )
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        listener = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(listener.close)
        got = []

        def serve():
            sock, _ = listener.accept()
            conn = Conn(ctx.wrap_socket(sock, server_side=True))
            got.append(conn.recv())
            conn.send_frame(TEXT, b"secure")

        threading.Thread(target=serve, daemon=True).start()
        with mock.patch.dict(os.environ, {"SSL_CERT_FILE": cert}):
            client = WebSocket.connect("wss://localhost:%d/x" % listener.getsockname()[1], timeout=5)
        self.addCleanup(client._shutdown)
        client.send_text("hi")
        self.assertEqual(client.recv(), (OP_TEXT, "secure"))
        self.assertEqual(got, [(TEXT, b"hi")])


class HandshakeFailureTest(unittest.TestCase):
    def check_refused(self, response, words):
        server = Server(respond=lambda key: response)
        try:
            with self.assertRaises(HandshakeError) as ctx:
                WebSocket.connect(server.url("/"), timeout=5)
            self.assertIn(words, str(ctx.exception))
        finally:
            server.close()

    def test_http_error(self):
        self.check_refused(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "404")

    def test_bad_accept(self):
        self.check_refused(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: wrong\r\n\r\n",
            "Sec-WebSocket-Accept",
        )


if __name__ == "__main__":
    unittest.main()
