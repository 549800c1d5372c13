"""The SigV4 signer against AWS's documented examples (S3 API reference,
"Signature Calculations for the Authorization Header: Transferring Payload
in a Single Chunk": GET Object, PUT Object and GET Bucket (List Objects),
examplebucket, 2013-05-24)."""

import unittest

from distributedkube_wrapper import sigv4

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AMZ_DATE = "20130524T000000Z"
HOST = "examplebucket.s3.amazonaws.com"


class KnownAnswerTest(unittest.TestCase):
    def test_get_object_with_range(self):
        headers = {"Host": HOST, "Range": "bytes=0-9", "x-amz-content-sha256": sigv4.EMPTY_SHA256,
                   "x-amz-date": AMZ_DATE}
        canonical = sigv4.canonical_request("GET", "/test.txt", [], headers, sigv4.EMPTY_SHA256)
        self.assertEqual(canonical, "\n".join([
            "GET", "/test.txt", "",
            "host:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
            "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
            "x-amz-date:20130524T000000Z\n",
            "host;range;x-amz-content-sha256;x-amz-date",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ]))
        to_sign = sigv4.string_to_sign(AMZ_DATE, sigv4.scope(AMZ_DATE, "us-east-1"), canonical)
        self.assertEqual(to_sign.splitlines()[-1], "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972")
        self.assertEqual(
            sigv4.authorization("GET", "/test.txt", headers, sigv4.EMPTY_SHA256, ACCESS_KEY, SECRET_KEY,
                                "us-east-1", AMZ_DATE),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
        )

    def test_put_object_with_signed_body_and_encoded_path(self):
        body_hash = sigv4.sha256_hex(b"Welcome to Amazon S3.")
        self.assertEqual(body_hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072")
        headers = {"Host": HOST, "Date": "Fri, 24 May 2013 00:00:00 GMT", "x-amz-content-sha256": body_hash,
                   "x-amz-date": AMZ_DATE, "x-amz-storage-class": "REDUCED_REDUNDANCY"}
        path = sigv4.uri_encode("/test$file.text")
        self.assertEqual(path, "/test%24file.text")
        auth = sigv4.authorization("PUT", path, headers, body_hash, ACCESS_KEY, SECRET_KEY, "us-east-1", AMZ_DATE)
        self.assertTrue(auth.endswith(
            "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"
            "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"), auth)

    def test_list_objects_with_a_sorted_query(self):
        headers = {"Host": HOST, "x-amz-content-sha256": sigv4.EMPTY_SHA256, "x-amz-date": AMZ_DATE}
        query = [("prefix", "J"), ("max-keys", "2")]
        canonical = sigv4.canonical_request("GET", "/", query, headers, sigv4.EMPTY_SHA256)
        self.assertEqual(canonical.splitlines()[2], "max-keys=2&prefix=J")
        auth = sigv4.authorization("GET", "/", headers, sigv4.EMPTY_SHA256, ACCESS_KEY, SECRET_KEY, "us-east-1",
                                   AMZ_DATE, query=query)
        self.assertTrue(auth.endswith("Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"))
        self.assertEqual(sigv4.uri_encode("a b/c:d", keep_slash=False), "a%20b%2Fc%3Ad")

if __name__ == "__main__":
    unittest.main()
