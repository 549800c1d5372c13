"""Entry point: ``python3 -m distributedkube_wrapper`` (cwd = the algorithm's code).

Environment:
  WORKER_SOCKET_URL          full ws:// URL (else ws://$WORKER_SOCKET_HOST:$WORKER_SOCKET_PORT,
                             defaults 127.0.0.1 and 3000); ?storage=<v1|v3>&encoding=... is appended
  WORKER_ALGORITHM_ENCODING  json (default), msgpack or bson
  STORAGE_PROTOCOL           v1 (default: job data inline) or v3 (HKube's storage v3: inputs
                             read from and outputs stored in the shared storage, by reference)
  ALGORITHM_ENTRY_POINT      main.py (default), a path relative to cwd or a module name
  WORKER_CONNECT_TIMEOUT     seconds to keep retrying the connection (default 10)

With STORAGE_PROTOCOL=v3, HKube's storage variables (the server sets them
for the workers it starts; see ``storage``):
  CLUSTER_NAME               objects go under <CLUSTER_NAME>-hkube/<jobId>/<taskId>
  DEFAULT_STORAGE            fs or s3
  BASE_FS_ADAPTER_DIRECTORY  fs: the storage's root directory
  S3_ENDPOINT_URL            s3: http(s)://host:port (path-style: <endpoint>/<bucket>/<key>;
                             the path's first segment is the bucket)
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY   s3: the keys
  S3_REGION                  s3: signing region (default us-east-1)
  S3_VERIFY_SSL              s3 over https: false skips certificate checks (default true)
  STORAGE_ENCODING           msgpack (default), json or bson: how outputs are stored

Exit codes: 0 when the server closes the connection, the ``exitCode`` of an
``exit`` command, 1 when the runner cannot be reached, 2 for a bad
configuration (a missing storage variable is named). An algorithm that fails to load does not exit: the wrapper
connects and answers every ``initialize`` with an errorMessage naming the
entry point and the problem (and logs it on stderr at start-up).
"""

import os
import sys
import time

from .algorithm import LoadError, load
from .codec import ENCODINGS, Codec
from .storage import ConfigError, Storage
from .websocket import HandshakeError, WebSocket
from .wrapper import Wrapper, finish, log


def socket_url(env, encoding, storage="v1"):
    url = env.get("WORKER_SOCKET_URL")
    if not url:
        url = "ws://%s:%s" % (env.get("WORKER_SOCKET_HOST") or "127.0.0.1", env.get("WORKER_SOCKET_PORT") or "3000")
    return url + ("&" if "?" in url else "?") + "storage=%s&encoding=%s" % (storage, encoding)


def connect(url, deadline):
    """Connect, retrying with backoff until ``deadline`` (time.monotonic)."""
    delay = 0.05
    while True:
        try:
            return WebSocket.connect(url, timeout=max(1.0, deadline - time.monotonic()))
        except HandshakeError:
            raise
        except (OSError, EOFError) as e:
            if time.monotonic() + delay > deadline:
                raise OSError("cannot connect to %s: %s" % (url, e)) from None
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def main(env=None):
    env = os.environ if env is None else env
    try:
        sys.stdout.reconfigure(line_buffering=True)
    except (AttributeError, ValueError):
        pass
    protocol = env.get("STORAGE_PROTOCOL") or "v1"
    if protocol not in ("v1", "v3"):
        log("STORAGE_PROTOCOL=%s is not supported: use v1 (inline data) or v3 (by reference)" % protocol)
        return 2
    storage = None
    if protocol == "v3":
        try:
            storage = Storage.from_env(env)
        except ConfigError as e:
            log(str(e))
            return 2
    encoding = env.get("WORKER_ALGORITHM_ENCODING") or "json"
    if encoding not in ENCODINGS:
        log("WORKER_ALGORITHM_ENCODING=%s is not supported: use json, msgpack or bson" % encoding)
        return 2
    try:
        timeout = float(env.get("WORKER_CONNECT_TIMEOUT") or 10)
    except ValueError:
        log("WORKER_CONNECT_TIMEOUT must be a number of seconds")
        return 2
    algorithm, load_error = None, None
    try:
        algorithm = load(env.get("ALGORITHM_ENTRY_POINT") or "main.py")
    except LoadError as e:
        load_error = e
        log(str(e))
    url = socket_url(env, encoding, protocol)
    try:
        ws = connect(url, time.monotonic() + timeout)
    except (OSError, HandshakeError) as e:
        log(str(e))
        return 1
    wrapper = Wrapper(ws, Codec(encoding), algorithm, load_error, storage)
    try:
        code = wrapper.serve()
    except Exception as e:  # a protocol violation by the server
        log("connection failed: %s: %s" % (type(e).__name__, e))
        code = 1
    finish(code, wrapper)


if __name__ == "__main__":
    sys.exit(main())
