"""MessagePack codec: golden vectors from the spec, every decoder format, round trips."""

import struct
import unittest

from distributedkube_wrapper.msgpack_codec import ExtType, MsgpackError, packb, unpackb

# (value, exact bytes), hand-checked against the MessagePack spec.
GOLDEN = [
    (None, b"\xc0"),
    (False, b"\xc2"),
    (True, b"\xc3"),
    (0, b"\x00"),
    (127, b"\x7f"),  # positive fixint
    (128, b"\xcc\x80"),  # uint8
    (256, b"\xcd\x01\x00"),  # uint16
    (65536, b"\xce\x00\x01\x00\x00"),  # uint32
    (2**32, b"\xcf\x00\x00\x00\x01\x00\x00\x00\x00"),  # uint64
    (2**64 - 1, b"\xcf" + b"\xff" * 8),
    (-1, b"\xff"),  # negative fixint
    (-32, b"\xe0"),
    (-33, b"\xd0\xdf"),  # int8
    (-129, b"\xd1\xff\x7f"),  # int16
    (-32769, b"\xd2\xff\xff\x7f\xff"),  # int32
    (-(2**31) - 1, b"\xd3\xff\xff\xff\xff\x7f\xff\xff\xff"),  # int64
    (-(2**63), b"\xd3\x80" + b"\x00" * 7),
    (1.5, b"\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00"),  # float64
    ("", b"\xa0"),
    ("a", b"\xa1a"),  # fixstr
    ("é", b"\xa2\xc3\xa9"),  # UTF-8 length, not characters
    ("x" * 32, b"\xd9\x20" + b"x" * 32),  # str8
    ("x" * 256, b"\xda\x01\x00" + b"x" * 256),  # str16
    (b"\x01\x02", b"\xc4\x02\x01\x02"),  # bin8
    (b"z" * 256, b"\xc5\x01\x00" + b"z" * 256),  # bin16
    ([], b"\x90"),
    ([1, 2, 3], b"\x93\x01\x02\x03"),  # fixarray
    (list(range(16)), b"\xdc\x00\x10" + bytes(range(16))),  # array16
    ({}, b"\x80"),
    # The spec's introduction example: {"compact": true, "schema": 0} in 18 bytes.
    ({"compact": True, "schema": 0}, b"\x82\xa7compact\xc3\xa6schema\x00"),
    (ExtType(1, b"\x02"), b"\xd4\x01\x02"),  # fixext1
    (ExtType(5, b"abc"), b"\xc7\x03\x05abc"),  # ext8
]


class GoldenTest(unittest.TestCase):
    def test_encode_matches_spec_bytes(self):
        for value, expected in GOLDEN:
            with self.subTest(value=repr(value)[:40]):
                self.assertEqual(packb(value), expected)

    def test_decode_matches_spec_bytes(self):
        for value, encoded in GOLDEN:
            with self.subTest(value=repr(value)[:40]):
                self.assertEqual(unpackb(encoded), value)

    def test_map16_header(self):
        encoded = packb({i: i for i in range(16)})
        self.assertEqual(encoded[:3], b"\xde\x00\x10")
        self.assertEqual(encoded[3:5], b"\x00\x00")

    def test_tuple_encodes_as_array(self):
        self.assertEqual(packb((1, "a")), b"\x92\x01\xa1a")


class DecoderFormatsTest(unittest.TestCase):
    """Formats our encoder never writes but must still read."""

    CASES = [
        (b"\xca\x3f\xc0\x00\x00", 1.5),  # float32
        (b"\xcc\x05", 5),  # uint8 for a small number
        (b"\xd0\x05", 5),  # int8 for a positive number
        (b"\xd3\x00\x00\x00\x00\x00\x00\x00\x07", 7),  # int64
        (b"\xd9\x01a", "a"),  # str8 for a short string
        (b"\xda\x00\x01a", "a"),  # str16
        (b"\xdb\x00\x00\x00\x01a", "a"),  # str32
        (b"\xc5\x00\x01\x09", b"\x09"),  # bin16
        (b"\xc6\x00\x00\x00\x01\x09", b"\x09"),  # bin32
        (b"\xdc\x00\x01\x01", [1]),  # array16
        (b"\xdd\x00\x00\x00\x01\x01", [1]),  # array32
        (b"\xde\x00\x01\xa1a\x01", {"a": 1}),  # map16
        (b"\xdf\x00\x00\x00\x01\xa1a\x01", {"a": 1}),  # map32
        (b"\xd5\x02\x01\x02", ExtType(2, b"\x01\x02")),  # fixext2
        (b"\xd6\xff\x00\x00\x00\x01", ExtType(-1, b"\x00\x00\x00\x01")),  # timestamp32
        (b"\xd7\x01" + b"\x00" * 8, ExtType(1, b"\x00" * 8)),  # fixext8
        (b"\xd8\x01" + b"\x00" * 16, ExtType(1, b"\x00" * 16)),  # fixext16
        (b"\xc8\x00\x01\x03z", ExtType(3, b"z")),  # ext16
        (b"\xc9\x00\x00\x00\x01\x03z", ExtType(3, b"z")),  # ext32
        (b"\x81\x92\x01\x02\xc0", {(1, 2): None}),  # array key -> tuple
    ]

    def test_all_formats(self):
        for encoded, expected in self.CASES:
            with self.subTest(encoded=encoded[:6]):
                self.assertEqual(unpackb(encoded), expected)

    def test_accepts_bytearray_and_memoryview(self):
        self.assertEqual(unpackb(bytearray(b"\x93\x01\x02\x03")), [1, 2, 3])
        self.assertEqual(unpackb(memoryview(b"\xa1a")), "a")

    def test_errors_are_clear(self):
        for bad, words in [
            (b"\xc1", "0xc1"),  # never used
            (b"\xa5ab", "truncated"),
            (b"\xcd\x01", "truncated"),
            (b"\x01\x02", "extra bytes"),
            (b"\xa2\xff\xfe", "UTF-8"),
            (b"", "truncated"),
        ]:
            with self.subTest(bad=bad):
                with self.assertRaises(MsgpackError) as ctx:
                    unpackb(bad)
                self.assertIn(words, str(ctx.exception))
        with self.assertRaises(MsgpackError):
            packb(2**64)
        with self.assertRaises(MsgpackError):
            packb(-(2**63) - 1)
        with self.assertRaises(MsgpackError):
            packb(object())


class RoundTripTest(unittest.TestCase):
    def test_nested_structure(self):
        value = {
            "ints": [0, 1, -1, 127, 128, -32, -33, 255, 256, 65535, 65536, 2**31, -(2**31), 2**63 - 1,
                     2**63, 2**64 - 1, -(2**63)],
            "floats": [0.0, -2.5, 1e300, -1e-300, 3.141592653589793],
            "unicode": ["héllo", "日本語", "🎉", "a\x00b"],
            "bytes": [b"", b"\x00\xff" * 100, bytes(range(256)) * 300],
            "empty": [[], {}, "", b""],
            "nested": {"a": [{"b": [[[None, True, False]]]}]},
            "long_list": list(range(70000)),
            "big_map": {str(i): i for i in range(70000)},
            7: "int key",
        }
        self.assertEqual(unpackb(packb(value)), value)

    def test_float_is_exact(self):
        for f in (0.1, 1 / 3, 2.0**-1074, 1.7976931348623157e308):
            self.assertEqual(struct.unpack(">d", packb(f)[1:])[0], f)
            self.assertEqual(unpackb(packb(f)), f)

    def test_default_hook(self):
        self.assertEqual(unpackb(packb({1, 2}, default=sorted)), [1, 2])


if __name__ == "__main__":
    unittest.main()
