"""A real S3 round trip against the test S3 server (scripts/scaled-out-env.sh;
scripts/test.sh sources its scaled-out.sh before these tests). Without its
variables these tests are skipped, saying how to get them, unless
DK_REQUIRE_S3=1 (scripts/test.sh sets it): then they fail."""

import base64
import os
import unittest
import uuid

from distributedkube_wrapper.s3 import S3Client
from distributedkube_wrapper.storage import Storage, StorageError, make_header, parse_header

SETUP = ("%s is not set; this test needs the test S3 server: run `bash scripts/scaled-out-env.sh` and "
         "`source ~/.cache/distributedkube/env/scaled-out.sh` (scripts/test.sh does both)")


def need(name):
    value = os.environ.get(name)
    if not value:
        if os.environ.get("DK_REQUIRE_S3") == "1":
            raise AssertionError(SETUP % name)
        raise unittest.SkipTest(SETUP % name)
    return value


def hkube_env(secret=None):
    """HKube's variables for the test S3 server, as the server gives them to its workers."""
    return {
        "CLUSTER_NAME": need("DK_S3_HKUBE_BUCKET")[: -len("-hkube")],
        "DEFAULT_STORAGE": "s3",
        "S3_ENDPOINT_URL": need("AWS_ENDPOINT"),
        "AWS_ACCESS_KEY_ID": need("AWS_ACCESS_KEY_ID"),
        "AWS_SECRET_ACCESS_KEY": secret or need("AWS_SECRET_ACCESS_KEY"),
        "S3_REGION": os.environ.get("AWS_REGION") or "us-east-1",
    }


class S3RoundTripTest(unittest.TestCase):
    def test_put_get_with_the_header_in_metadata(self):
        storage = Storage.from_env(hkube_env())
        path = storage.output_path("unit-" + uuid.uuid4().hex[:12], "make:0123abcd")
        self.assertTrue(path.startswith(need("DK_S3_HKUBE_BUCKET") + "/"))
        value = {"big": list(range(30000)), "items": [1, 2, 3], "text": "héllo"}
        size = storage.put_value(path, value)
        self.assertEqual(storage.get_value(path), value)
        # As HKube stores it: the body is the payload alone, the header base64 in x-amz-meta-header.
        client = S3Client(need("AWS_ENDPOINT"), need("AWS_ACCESS_KEY_ID"), need("AWS_SECRET_ACCESS_KEY"))
        bucket, key = path.split("/", 1)
        body, meta = client.get(bucket, key)
        self.assertEqual(len(body), size)
        self.assertIsNone(parse_header(body[:8]))
        self.assertEqual(base64.b64decode(meta["header"]), make_header("msgpack"))

    def test_failures_name_the_path_and_what_s3_said(self):
        storage = Storage.from_env(hkube_env())
        missing = storage.output_path("unit-none", "t")
        with self.assertRaises(StorageError) as e:
            storage.get_value(missing)
        self.assertIn("cannot read stored input '%s' (S3 GET 404: NoSuchKey" % missing, str(e.exception))
        wrong = Storage.from_env(hkube_env(secret="not-the-secret"))
        with self.assertRaises(StorageError) as e:
            wrong.put_value(storage.output_path("unit-none", "t"), [1])
        self.assertIn("cannot store the output at '%s' (S3 PUT 403" % missing, str(e.exception))


if __name__ == "__main__":
    unittest.main()
