"""Envelope encoding for json / msgpack / bson, as the runner expects it on the wire."""

import json
import unittest

from distributedkube_wrapper import bson_codec, msgpack_codec
from distributedkube_wrapper.codec import Codec, CodecError
from distributedkube_wrapper.websocket import OP_BINARY, OP_TEXT

ENVELOPE = {
    "command": "initialize",
    "data": {"jobId": "j-1", "input": [1, -2, 3.5, "é", None, True, {"deep": [[]]}], "big": 2**63 - 1},
}


class CodecTest(unittest.TestCase):
    def test_every_encoding_round_trips(self):
        for enc in ("json", "msgpack", "bson"):
            with self.subTest(enc=enc):
                codec = Codec(enc)
                opcode, payload = codec.encode(ENVELOPE)
                self.assertEqual(opcode, OP_TEXT if enc == "json" else OP_BINARY)
                self.assertEqual(codec.decode(opcode, payload), ENVELOPE)

    def test_wire_shapes(self):
        _, text = Codec("json").encode({"command": "done", "data": None})
        self.assertEqual(json.loads(text), {"command": "done", "data": None})
        _, packed = Codec("msgpack").encode({"command": "done", "data": None})
        self.assertEqual(packed, b"\x82\xa7command\xa4done\xa4data\xc0")
        _, doc = Codec("bson").encode({"command": "done", "data": 30})
        self.assertEqual(bson_codec.decode(doc), {"data": {"command": "done", "data": 30}})

    def test_text_frames_are_always_json(self):
        for enc in ("msgpack", "bson"):
            self.assertEqual(Codec(enc).decode(OP_TEXT, '{"command": "start", "data": {}}')["command"], "start")

    def test_binary_frame_in_json_mode_is_json(self):
        self.assertEqual(Codec("json").decode(OP_BINARY, bytearray(b'{"command":"stop"}')), {"command": "stop"})

    def test_bytes(self):
        env = {"command": "done", "data": b"\x00\x01"}
        for enc in ("msgpack", "bson"):
            codec = Codec(enc)
            self.assertEqual(codec.decode(*codec.encode(env)), env)
        with self.assertRaises(CodecError) as ctx:
            Codec("json").encode(env)
        self.assertIn("msgpack or bson", str(ctx.exception))

    def test_unencodable_values_are_clear(self):
        for enc in ("json", "msgpack", "bson"):
            with self.subTest(enc=enc):
                with self.assertRaises(CodecError) as ctx:
                    Codec(enc).encode({"command": "done", "data": object()})
                self.assertIn("done", str(ctx.exception))
        with self.assertRaises(CodecError):
            Codec("json").encode({"command": "done", "data": float("nan")})
        with self.assertRaises(CodecError):
            Codec("bson").encode({"command": "done", "data": 2**64})

    def test_sets_and_numpy_like_values(self):
        class Scalar:
            def __index__(self):
                return 4

        class Array:
            def tolist(self):
                return [1, 2]

        env = {"command": "done", "data": [Scalar(), Array(), {3}]}
        for enc in ("json", "msgpack", "bson"):
            codec = Codec(enc)
            self.assertEqual(codec.decode(*codec.encode(env))["data"], [4, [1, 2], [3]])

    def test_bad_messages(self):
        for enc, opcode, payload in [
            ("json", OP_TEXT, "not json"),
            ("json", OP_TEXT, '{"data": 1}'),
            ("json", OP_TEXT, "[1, 2]"),
            ("msgpack", OP_BINARY, b"\xc1"),
            ("msgpack", OP_BINARY, msgpack_codec.packb({"command": 5})),
            ("bson", OP_BINARY, bson_codec.encode({"command": "start"})),  # not wrapped in "data"
            ("bson", OP_BINARY, b"\x01\x02"),
        ]:
            with self.subTest(enc=enc, payload=payload):
                with self.assertRaises(CodecError):
                    Codec(enc).decode(opcode, payload)

    def test_unknown_encoding(self):
        with self.assertRaises(CodecError):
            Codec("xml")


if __name__ == "__main__":
    unittest.main()
