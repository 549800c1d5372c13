"""BSON codec: golden vectors from bsonspec.org, type coverage, errors, round trips."""

import struct
import unittest

from distributedkube_wrapper.bson_codec import BsonError, decode, encode

GOLDEN = [
    # bsonspec.org's first example.
    ({"hello": "world"}, b"\x16\x00\x00\x00\x02hello\x00\x06\x00\x00\x00world\x00\x00"),
    # bsonspec.org's second example: an array with a string, a double and an int32.
    (
        {"BSON": ["awesome", 5.05, 1986]},
        b"\x31\x00\x00\x00\x04BSON\x00\x26\x00\x00\x00\x020\x00\x08\x00\x00\x00awesome\x00"
        b"\x011\x00\x33\x33\x33\x33\x33\x33\x14\x40\x102\x00\xc2\x07\x00\x00\x00\x00",
    ),
    ({}, b"\x05\x00\x00\x00\x00"),
    ({"t": True, "n": None}, b"\x0c\x00\x00\x00\x08t\x00\x01\x0an\x00\x00"),
    ({"b": b"\x01\x02"}, b"\x0f\x00\x00\x00\x05b\x00\x02\x00\x00\x00\x00\x01\x02\x00"),
    ({"i": -1}, b"\x0c\x00\x00\x00\x10i\x00\xff\xff\xff\xff\x00"),
    ({"a": 2**31}, b"\x10\x00\x00\x00\x12a\x00\x00\x00\x00\x80\x00\x00\x00\x00\x00"),  # int64
    ({"e": []}, b"\x0d\x00\x00\x00\x04e\x00\x05\x00\x00\x00\x00\x00"),
    ({"d": {"x": 1.0}}, b"\x18\x00\x00\x00\x03d\x00\x10\x00\x00\x00\x01x\x00" + struct.pack("<d", 1.0) + b"\x00\x00"),
]


def doc(element):
    """Wrap one raw element in a document with the right length."""
    return struct.pack("<i", len(element) + 5) + element + b"\x00"


class GoldenTest(unittest.TestCase):
    def test_encode_matches_spec_bytes(self):
        for value, expected in GOLDEN:
            with self.subTest(value=value):
                self.assertEqual(encode(value), expected)

    def test_decode_matches_spec_bytes(self):
        for value, encoded in GOLDEN:
            with self.subTest(value=value):
                self.assertEqual(decode(encoded), value)

    def test_int_width_choice(self):
        self.assertEqual(encode({"x": 2**31 - 1})[4], 0x10)
        self.assertEqual(encode({"x": -(2**31)})[4], 0x10)
        self.assertEqual(encode({"x": -(2**31) - 1})[4], 0x12)
        self.assertEqual(encode({"x": 2**63 - 1})[4], 0x12)


class DecodeTypesTest(unittest.TestCase):
    def test_datetime_is_milliseconds(self):
        self.assertEqual(decode(doc(b"\x09d\x00" + struct.pack("<q", 1700000000123))), {"d": 1700000000123})

    def test_int64_and_binary_subtypes(self):
        self.assertEqual(decode(doc(b"\x12n\x00" + struct.pack("<q", 5))), {"n": 5})
        self.assertEqual(decode(doc(b"\x05u\x00\x02\x00\x00\x00\x04\xaa\xbb")), {"u": b"\xaa\xbb"})
        old = b"\x05o\x00\x06\x00\x00\x00\x02" + struct.pack("<i", 2) + b"\xaa\xbb"
        self.assertEqual(decode(doc(old)), {"o": b"\xaa\xbb"})

    def test_unsupported_types_are_named(self):
        for element, name in [
            (b"\x13x\x00" + b"\x00" * 16, "decimal128"),
            (b"\x07x\x00" + b"\x00" * 12, "ObjectId"),
            (b"\x11x\x00" + b"\x00" * 8, "timestamp"),
            (b"\x42x\x00", "0x42"),
        ]:
            with self.subTest(name=name):
                with self.assertRaises(BsonError) as ctx:
                    decode(doc(element))
                self.assertIn(name, str(ctx.exception))

    def test_malformed(self):
        for bad in [
            b"",
            b"\x05\x00\x00\x00",  # truncated
            b"\x06\x00\x00\x00\x00\x00",  # a 0x00 type byte inside the document
            b"\x05\x00\x00\x00\x01",  # last byte not NUL
            doc(b"\x02s\x00\x05\x00\x00\x00ab\x00"),  # string length past the document
            doc(b"\x02s\x00\x03\x00\x00\x00abc"),  # string without NUL
            doc(b"\x10i\x00\x01\x00"),  # int32 cut short
            encode({"a": 1}) + b"\x00",  # trailing bytes
        ]:
            with self.subTest(bad=bad):
                with self.assertRaises(BsonError):
                    decode(bad)


class EncodeErrorsTest(unittest.TestCase):
    def test_too_big_int(self):
        with self.assertRaises(BsonError) as ctx:
            encode({"x": 2**63})
        self.assertIn("int64", str(ctx.exception))

    def test_bad_values_and_keys(self):
        for value in [{"x": object()}, {"a\x00b": 1}, {(1, 2): 1}]:
            with self.subTest(value=value):
                with self.assertRaises(BsonError):
                    encode(value)
        with self.assertRaises(BsonError):
            encode([1, 2])

    def test_non_string_keys_become_strings(self):
        self.assertEqual(decode(encode({1: "a"})), {"1": "a"})


class RoundTripTest(unittest.TestCase):
    def test_nested_structure(self):
        value = {
            "ints": [0, 1, -1, 2**31 - 1, -(2**31), 2**31, -(2**31) - 1, 2**63 - 1, -(2**63)],
            "floats": [0.0, -2.5, 1e300, -1e-300, 3.141592653589793],
            "unicode": {"héllo": "日本語", "emoji": "🎉"},
            "bytes": [b"", b"\x00\xff" * 100, bytes(range(256)) * 300],
            "empty": [[], {}, "", b""],
            "nested": {"a": [{"b": [[[None, True, False]]]}]},
            "long_list": list(range(20000)),
        }
        self.assertEqual(decode(encode(value)), value)

    def test_tuples_become_lists(self):
        self.assertEqual(decode(encode({"t": (1, (2, 3))})), {"t": [1, [2, 3]]})


if __name__ == "__main__":
    unittest.main()
