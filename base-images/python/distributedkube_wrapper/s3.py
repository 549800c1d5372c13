"""A minimal S3 client: PUT and GET one object, signed with SigV4.

Path-style requests (``<endpoint>/<bucket>/<key>``), which every S3 server
accepts, including MinIO and rclone's. The body's SHA-256 is signed
(``x-amz-content-sha256``), as are the object's metadata headers
(``x-amz-meta-*``, which is where HKube keeps an object's header). One
connection per request: objects are task inputs and outputs, few and big.
"""

import datetime
import http.client
import re
import ssl
from urllib.parse import urlsplit

from . import sigv4


class S3Error(Exception):
    """A request S3 refused or that did not reach it; ``str`` says which and why."""


class S3Client:
    def __init__(self, endpoint, access_key, secret_key, region="us-east-1", verify_ssl=True, timeout=300):
        url = urlsplit(endpoint if "://" in endpoint else "http://" + endpoint)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError("not an http(s) URL: %r" % endpoint)
        self.scheme = url.scheme
        self.host = url.hostname
        self.port = url.port
        # What the Host header says (and what is signed): no default port.
        self.host_header = url.netloc.rpartition("@")[2]
        self.base_path = url.path.rstrip("/")
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region or "us-east-1"
        self.verify_ssl = verify_ssl
        self.timeout = timeout

    def put(self, bucket, key, body, metadata=None):
        """Store ``body`` (bytes); ``metadata`` becomes ``x-amz-meta-<name>``."""
        headers = {"x-amz-meta-%s" % name.lower(): value for name, value in (metadata or {}).items()}
        self._request("PUT", bucket, key, body, headers)

    def get(self, bucket, key):
        """``(body, metadata)``: the object's bytes and its ``x-amz-meta-*``
        headers by name (lower case, without the prefix)."""
        body, headers = self._request("GET", bucket, key)
        metadata = {name[len("x-amz-meta-"):]: value for name, value in headers.items()
                    if name.startswith("x-amz-meta-")}
        return body, metadata

    def _request(self, method, bucket, key, body=b"", extra=None):
        path = sigv4.uri_encode("%s/%s/%s" % (self.base_path, bucket, key))
        payload_hash = sigv4.sha256_hex(body)
        amz_date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        headers = {"host": self.host_header, "x-amz-date": amz_date, "x-amz-content-sha256": payload_hash}
        headers.update(extra or {})
        headers["authorization"] = sigv4.authorization(
            method, path, headers, payload_hash, self.access_key, self.secret_key, self.region, amz_date)
        try:
            conn = self._connection()
            try:
                conn.request(method, path, body=body if method == "PUT" else None, headers=headers)
                response = conn.getresponse()
                data = response.read()
                answer = {name.lower(): value for name, value in response.getheaders()}
            finally:
                conn.close()
        except (OSError, http.client.HTTPException) as e:
            raise S3Error("S3 %s: cannot reach %s: %s" % (method, self._endpoint(), e)) from None
        if response.status // 100 != 2:
            raise S3Error("S3 %s %d: %s" % (method, response.status, _error_text(data) or response.reason))
        return data, answer

    def _connection(self):
        if self.scheme == "https":
            context = ssl.create_default_context()
            if not self.verify_ssl:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=context)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def _endpoint(self):
        return "%s://%s%s" % (self.scheme, self.host_header, self.base_path)


def _error_text(xml):
    """``Code: Message`` from S3's XML error document, else its start."""
    text = xml.decode("utf-8", "replace")
    found = [re.search(r"<%s>(.*?)</%s>" % (tag, tag), text, re.S) for tag in ("Code", "Message")]
    parts = [m.group(1).strip() for m in found if m]
    return ": ".join(parts) if parts else text.strip()[:200]
