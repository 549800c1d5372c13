"""HKube's object format and the local-files storage."""

import base64
import json
import os
import tempfile
import unittest

from distributedkube_wrapper import msgpack_codec
from distributedkube_wrapper.storage import (
    ConfigError, FsAdapter, S3Adapter, Storage, StorageError, decode_object, encode_value, make_header,
    parse_header,
)


class HeaderTest(unittest.TestCase):
    def test_header_bytes(self):
        self.assertEqual(make_header("msgpack"), bytes([1, 8, 2, 3, 0, 0]) + b"HK")
        self.assertEqual(make_header("bson"), bytes([1, 8, 2, 1, 0, 0]) + b"HK")
        self.assertEqual(make_header("json", raw=True), bytes([1, 8, 1, 2, 0, 0]) + b"HK")
        self.assertEqual(parse_header(make_header("json")), (False, "json"))
        self.assertEqual(parse_header(make_header("msgpack", raw=True)), (True, "msgpack"))
        self.assertIsNone(parse_header(b"\x01\x08\x02\x03\x00\x00XX"))
        self.assertIsNone(parse_header(None))
        # On S3, HKube keeps the header base64 in the object's metadata (Encoding.headerToString).
        self.assertEqual(base64.b64encode(make_header("msgpack")), b"AQgCAwAASEs=")

    def test_encode_decode_in_each_encoding(self):
        value = {"big": list(range(1000)), "items": [1, 2.5, "x", None, True], "nested": {"a": [{}]}}
        for encoding in ("msgpack", "json", "bson"):
            header, payload = encode_value(value, encoding)
            self.assertEqual(parse_header(header), (False, encoding))
            self.assertEqual(decode_object(header, payload), value, encoding)  # the header apart, as on S3
            self.assertEqual(decode_object(None, header + payload), value, encoding)  # in the file, as on fs
            self.assertEqual(decode_object(None, payload, encoding), value, encoding)  # no header at all

    def test_bytes_travel_raw(self):
        header, payload = encode_value(b"\x00\x01binary", "msgpack")
        self.assertEqual(parse_header(header), (True, "msgpack"))
        self.assertEqual(payload, b"\x00\x01binary")
        self.assertEqual(decode_object(None, header + payload), b"\x00\x01binary")

    def test_headerless_objects_in_any_encoding(self):
        self.assertEqual(decode_object(None, msgpack_codec.packb([1, "x"])), [1, "x"])
        self.assertEqual(decode_object(None, b'{"a": 1}'), {"a": 1})
        with self.assertRaises(ValueError):
            decode_object(None, b"\xc1 not anything")


class FsStorageTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        self.storage = Storage(FsAdapter(self.dir.name), "dk")

    def test_put_get_round_trip_with_hkube_header_in_the_file(self):
        path = self.storage.output_path("job-1", "make:abc")
        self.assertEqual(path, "dk-hkube/job-1/make:abc")
        value = {"big": list(range(70000)), "items": [1, 2, 3]}
        size = self.storage.put_value(path, value)
        with open(os.path.join(self.dir.name, "dk-hkube", "job-1", "make:abc"), "rb") as f:
            data = f.read()
        self.assertEqual(data[:8], make_header("msgpack"))
        self.assertEqual(size, len(data) - 8, "size is the payload's, as HKube reports it")
        self.assertEqual(msgpack_codec.unpackb(data[8:]), value)
        self.assertEqual(self.storage.get_value(path), value)
        self.assertEqual(os.listdir(os.path.dirname(os.path.join(self.dir.name, path))), ["make:abc"])

    def test_json_encoding_and_a_file_without_header(self):
        storage = Storage(FsAdapter(self.dir.name), "dk", "json")
        storage.put_value("dk-hkube/j/t", {"a": [1]})
        with open(os.path.join(self.dir.name, "dk-hkube/j/t"), "rb") as f:
            self.assertEqual(f.read(), make_header("json") + b'{"a": [1]}')
        os.makedirs(os.path.join(self.dir.name, "dk-hkube/j2"))
        with open(os.path.join(self.dir.name, "dk-hkube/j2/t"), "w") as f:
            json.dump([1, 2], f)
        self.assertEqual(storage.get_value("dk-hkube/j2/t"), [1, 2])

    def test_errors_name_the_path(self):
        with self.assertRaises(StorageError) as e:
            self.storage.get_value("dk-hkube/job-1/missing")
        self.assertIn("cannot read stored input 'dk-hkube/job-1/missing' (FileNotFoundError", str(e.exception))
        with self.assertRaises(StorageError) as e:
            self.storage.get_value("dk-hkube/../../etc/passwd")
        self.assertIn("'dk-hkube/../../etc/passwd' (ValueError: not a storage path)", str(e.exception))
        with self.assertRaises(StorageError) as e:
            Storage(FsAdapter(self.dir.name), "dk", "json").put_value("dk-hkube/j/t", {"b": b"x"})
        self.assertIn("cannot encode the output as json: bytes cannot be stored", str(e.exception))


class SettingsTest(unittest.TestCase):
    def test_fs_and_s3_from_hkube_variables(self):
        fs = Storage.from_env({"CLUSTER_NAME": "team", "DEFAULT_STORAGE": "fs", "BASE_FS_ADAPTER_DIRECTORY": "/d"})
        self.assertIsInstance(fs.adapter, FsAdapter)
        self.assertEqual((fs.adapter.root, fs.encoding), ("/d", "msgpack"))
        self.assertEqual(fs.output_path("j", "t"), "team-hkube/j/t")
        s3 = Storage.from_env({"CLUSTER_NAME": "dk", "DEFAULT_STORAGE": "s3", "S3_ENDPOINT_URL": "http://h:9000/",
                               "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "STORAGE_ENCODING": "bson"})
        self.assertIsInstance(s3.adapter, S3Adapter)
        self.assertEqual((s3.adapter.client.host_header, s3.adapter.client.region, s3.encoding),
                         ("h:9000", "us-east-1", "bson"))

    def test_missing_or_wrong_settings_name_the_variable(self):
        cases = [
            ({}, "CLUSTER_NAME is not set"),
            ({"CLUSTER_NAME": "dk"}, "DEFAULT_STORAGE is not set"),
            ({"CLUSTER_NAME": "dk", "DEFAULT_STORAGE": "gcs"}, "DEFAULT_STORAGE=gcs is not supported"),
            ({"CLUSTER_NAME": "dk", "DEFAULT_STORAGE": "fs"}, "BASE_FS_ADAPTER_DIRECTORY is not set"),
            ({"CLUSTER_NAME": "dk", "DEFAULT_STORAGE": "s3", "S3_ENDPOINT_URL": "http://h"},
             "AWS_ACCESS_KEY_ID is not set"),
            ({"CLUSTER_NAME": "dk", "DEFAULT_STORAGE": "fs", "BASE_FS_ADAPTER_DIRECTORY": "/d",
              "STORAGE_ENCODING": "xml"}, "STORAGE_ENCODING=xml is not supported"),
            ({"CLUSTER_NAME": "dk", "DEFAULT_STORAGE": "s3", "S3_ENDPOINT_URL": "ftp://h", "AWS_ACCESS_KEY_ID": "k",
              "AWS_SECRET_ACCESS_KEY": "s"}, "S3_ENDPOINT_URL: not an http(s) URL"),
        ]
        for env, message in cases:
            with self.assertRaises(ConfigError) as e:
                Storage.from_env(env)
            self.assertIn(message, str(e.exception))


if __name__ == "__main__":
    unittest.main()
