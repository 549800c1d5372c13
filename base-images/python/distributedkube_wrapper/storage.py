"""HKube's shared storage, for storage v3: its settings, its object format,
and reading and writing objects on local files or S3.

Settings are HKube's variables (the server gives them to the workers it
starts): ``CLUSTER_NAME`` (objects go under ``<CLUSTER_NAME>-hkube/``),
``DEFAULT_STORAGE`` (``fs`` or ``s3``), ``BASE_FS_ADAPTER_DIRECTORY`` (the
fs root: an object is the file root + ``/`` + path), ``S3_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``S3_REGION`` (default
us-east-1), ``S3_VERIFY_SSL`` (default true) and ``STORAGE_ENCODING``
(msgpack by default; json or bson).

An object is HKube's 8-byte header then the payload::

    0 VERSION=1  1 HEADER_LENGTH=8  2 DATA_TYPE (1 raw bytes, 2 encoded)
    3 PROTOCOL (1 bson, 2 json, 3 msgpack)  4-5 unused (0)  6-7 magic b"HK"

On local files the header is the file's first 8 bytes. On S3, as HKube
does, the body is the payload alone and the header goes, base64, into the
object's ``header`` metadata (``x-amz-meta-header``). Reading accepts
either, and a bare payload in any of the three encodings.
"""

import base64
import json
import os

from . import bson_codec, msgpack_codec
from .codec import to_plain
from .s3 import S3Client

VERSION, HEADER_LENGTH, MAGIC = 0x01, 0x08, b"HK"
DATA_RAW, DATA_ENCODED = 0x01, 0x02
PROTOCOLS = {"bson": 0x01, "json": 0x02, "msgpack": 0x03}
ENCODINGS = tuple(PROTOCOLS)


class ConfigError(ValueError):
    """A storage setting that is missing or wrong; the message names the variable."""


class StorageError(Exception):
    """A read or write that failed; the message names the path and the reason."""


# ---- the object format ---------------------------------------------------

def make_header(encoding, raw=False):
    return bytes([VERSION, HEADER_LENGTH, DATA_RAW if raw else DATA_ENCODED, PROTOCOLS[encoding],
                  0, 0]) + MAGIC


def parse_header(header):
    """``(raw, encoding)`` of a valid header, else ``None``."""
    if header is None or len(header) != HEADER_LENGTH or bytes(header[6:8]) != MAGIC:
        return None
    names = {code: name for name, code in PROTOCOLS.items()}
    return header[2] == DATA_RAW, names.get(header[3])


def _plain(encoding):
    def default(value):
        if encoding == "json" and isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError("bytes cannot be stored with STORAGE_ENCODING=json; use msgpack or bson")
        return to_plain(value)
    return default


def encode_value(value, encoding):
    """``(header, payload)``: bytes travel raw, anything else encoded."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return make_header(encoding, raw=True), bytes(value)
    if encoding == "json":
        payload = json.dumps(value, ensure_ascii=False, allow_nan=False, default=_plain(encoding)).encode("utf-8")
    elif encoding == "msgpack":
        payload = msgpack_codec.packb(value, default=_plain(encoding))
    else:
        payload = bson_codec.encode({"data": value}, default=_plain(encoding))
    return make_header(encoding), payload


def _decode_payload(payload, encoding):
    if encoding == "json":
        return json.loads(bytes(payload).decode("utf-8"))
    if encoding == "msgpack":
        return msgpack_codec.unpackb(payload)
    return bson_codec.decode(payload).get("data")


def decode_object(header, payload, preferred="msgpack"):
    """The value of an object: by its header (separate, as on S3, or at the
    start of ``payload``), else whichever encoding reads the whole payload
    (``preferred`` first)."""
    if parse_header(header) is None and parse_header(payload[:HEADER_LENGTH]) is not None:
        header, payload = payload[:HEADER_LENGTH], payload[HEADER_LENGTH:]
    parsed = parse_header(header)
    if parsed is not None:
        raw, encoding = parsed
        if raw:
            return bytes(payload)
        if encoding is None:
            raise ValueError("unknown encoding %d in the object's header" % header[3])
        return _decode_payload(payload, encoding)
    for encoding in (preferred,) + tuple(e for e in ENCODINGS if e != preferred):
        try:
            return _decode_payload(payload, encoding)
        except (ValueError, TypeError, RecursionError):
            continue
    raise ValueError("not MessagePack, JSON or BSON, and no HKube header")


# ---- where objects live --------------------------------------------------

class FsAdapter:
    """Objects as files under ``root``: header, then payload."""

    def __init__(self, root):
        self.root = root

    def _file(self, path):
        parts = path.split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise ValueError("not a storage path")
        return os.path.join(self.root, *parts)

    def put(self, path, header, payload):
        file = self._file(path)
        os.makedirs(os.path.dirname(file), exist_ok=True)
        partial = "%s.partial-%d" % (file, os.getpid())
        with open(partial, "wb") as f:  # whole or not at all
            f.write(header)
            f.write(payload)
        os.replace(partial, file)

    def get(self, path):
        with open(self._file(path), "rb") as f:
            return None, f.read()


class S3Adapter:
    """Objects in S3: the path's first segment is the bucket, the rest the key."""

    def __init__(self, client):
        self.client = client

    @staticmethod
    def _split(path):
        bucket, _, key = path.partition("/")
        if not bucket or not key:
            raise ValueError("not <bucket>/<key>")
        return bucket, key

    def put(self, path, header, payload):
        bucket, key = self._split(path)
        self.client.put(bucket, key, payload, {"header": base64.b64encode(header).decode("ascii")})

    def get(self, path):
        body, metadata = self.client.get(*self._split(path))
        header = metadata.get("header")
        try:
            header = base64.b64decode(header) if header else None
        except ValueError:
            header = None
        return header, body


def _reason(e):
    return str(e) if type(e).__name__.startswith("S3") else "%s: %s" % (type(e).__name__, e)


class Storage:
    """Task outputs and inputs in HKube's storage."""

    def __init__(self, adapter, cluster, encoding="msgpack"):
        self.adapter = adapter
        self.cluster = cluster
        self.encoding = encoding

    @classmethod
    def from_env(cls, env):
        """The storage HKube's variables describe; raises ConfigError."""
        def need(name):
            value = env.get(name)
            if not value:
                raise ConfigError("%s is not set (STORAGE_PROTOCOL=v3 stores job data in HKube's storage)" % name)
            return value
        cluster = need("CLUSTER_NAME")
        encoding = env.get("STORAGE_ENCODING") or "msgpack"
        if encoding not in ENCODINGS:
            raise ConfigError("STORAGE_ENCODING=%s is not supported: use msgpack, json or bson" % encoding)
        kind = need("DEFAULT_STORAGE")
        if kind == "fs":
            adapter = FsAdapter(need("BASE_FS_ADAPTER_DIRECTORY"))
        elif kind == "s3":
            verify = (env.get("S3_VERIFY_SSL") or "true").lower() not in ("false", "0", "no")
            try:
                client = S3Client(need("S3_ENDPOINT_URL"), need("AWS_ACCESS_KEY_ID"), need("AWS_SECRET_ACCESS_KEY"),
                                  env.get("S3_REGION") or "us-east-1", verify_ssl=verify)
            except ValueError as e:
                raise ConfigError("S3_ENDPOINT_URL: %s" % e) from None
            adapter = S3Adapter(client)
        else:
            raise ConfigError("DEFAULT_STORAGE=%s is not supported: use fs or s3" % kind)
        return cls(adapter, cluster, encoding)

    def output_path(self, job_id, task_id):
        """HKube's path for a task's output."""
        return "%s-hkube/%s/%s" % (self.cluster, job_id, task_id)

    def put_value(self, path, value):
        """Store ``value`` at ``path``; answers the payload's size in bytes."""
        try:
            header, payload = encode_value(value, self.encoding)
        except (TypeError, ValueError, OverflowError, RecursionError) as e:
            raise StorageError("cannot encode the output as %s: %s" % (self.encoding, e)) from None
        try:
            self.adapter.put(path, header, payload)
        except Exception as e:
            raise StorageError("cannot store the output at '%s' (%s)" % (path, _reason(e))) from None
        return len(payload)

    def get_value(self, path):
        try:
            header, payload = self.adapter.get(path)
        except Exception as e:
            raise StorageError("cannot read stored input '%s' (%s)" % (path, _reason(e))) from None
        try:
            return decode_object(header, payload, self.encoding)
        except (ValueError, TypeError, RecursionError) as e:
            raise StorageError("cannot decode stored input '%s' (%s)" % (path, e)) from None
