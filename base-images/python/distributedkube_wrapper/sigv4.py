"""AWS Signature Version 4 for S3 requests (the ``Authorization`` header).

S3 checks every request against a signature made from the request itself
(method, path, query, the headers we choose to sign and the SHA-256 of the
body) and a key derived from the secret access key, the date, the region
and the service. The steps, as AWS documents them
(https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html):

1. the *canonical request*: one line each for the method, the URI-encoded
   path, the sorted query, every signed header as ``name:value``, the list of
   signed header names, and the body's hash;
2. the *string to sign*: the algorithm, the timestamp, the *scope*
   (``date/region/service/aws4_request``) and the canonical request's hash;
3. the *signing key*: HMAC-SHA256 chained over date, region, service and
   ``aws4_request``, starting from ``"AWS4" + secret``;
4. the signature: HMAC-SHA256 of the string to sign with that key, in hex.

Pure functions of their arguments (the time is passed in), so the tests
check them against AWS's published example.
"""

import hashlib
import hmac
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def uri_encode(text, keep_slash=True):
    """S3's URI encoding: every byte but ``A-Z a-z 0-9 - _ . ~`` (and ``/``
    in a path) as ``%XX``, upper-case hex."""
    return quote(text, safe="/~" if keep_slash else "~")


def canonical_request(method, path, query, headers, payload_hash):
    """``path`` is already URI-encoded (as sent); ``query`` a list of
    ``(name, value)``; ``headers`` a dict of the headers to sign."""
    names = sorted(name.lower() for name in headers)
    values = {name.lower(): " ".join(str(value).split()) for name, value in headers.items()}
    query_line = "&".join(
        "%s=%s" % (uri_encode(k, False), uri_encode(v, False)) for k, v in sorted(query)
    )
    return "\n".join([
        method,
        path or "/",
        query_line,
        "".join("%s:%s\n" % (name, values[name]) for name in names),
        ";".join(names),
        payload_hash,
    ])


def scope(amz_date, region, service="s3"):
    return "%s/%s/%s/aws4_request" % (amz_date[:8], region, service)


def string_to_sign(amz_date, request_scope, canonical):
    return "\n".join([ALGORITHM, amz_date, request_scope, sha256_hex(canonical.encode("utf-8"))])


def signing_key(secret_key, date, region, service="s3"):
    key = ("AWS4" + secret_key).encode("utf-8")
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def authorization(method, path, headers, payload_hash, access_key, secret_key, region,
                  amz_date, query=(), service="s3"):
    """The ``Authorization`` header value for a request whose ``headers``
    (all of them signed) include ``host``, ``x-amz-date`` (= ``amz_date``,
    ``YYYYMMDDTHHMMSSZ``) and, for S3, ``x-amz-content-sha256``."""
    canonical = canonical_request(method, path, list(query), headers, payload_hash)
    request_scope = scope(amz_date, region, service)
    key = signing_key(secret_key, amz_date[:8], region, service)
    signature = hmac.new(key, string_to_sign(amz_date, request_scope, canonical).encode("utf-8"),
                         hashlib.sha256).hexdigest()
    return "%s Credential=%s/%s,SignedHeaders=%s,Signature=%s" % (
        ALGORITHM, access_key, request_scope, ";".join(sorted(h.lower() for h in headers)), signature)
