"""Entry point: ``python3 -m distributedkube_wrapper`` (cwd = the algorithm's code).

Environment:
  WORKER_SOCKET_URL          full ws:// URL (else ws://$WORKER_SOCKET_HOST:$WORKER_SOCKET_PORT,
                             defaults 127.0.0.1 and 3000); ?storage=v1&encoding=... is appended
  WORKER_ALGORITHM_ENCODING  json (default), msgpack or bson
  STORAGE_PROTOCOL           only v1 (default)
  ALGORITHM_ENTRY_POINT      main.py (default), a path relative to cwd or a module name
  WORKER_CONNECT_TIMEOUT     seconds to keep retrying the connection (default 10)

Exit codes: 0 when the server closes the connection, the ``exitCode`` of an
``exit`` command, 1 when the runner cannot be reached, 2 for a bad
configuration. An algorithm that fails to load does not exit: the wrapper
connects and answers every ``initialize`` with an errorMessage naming the
entry point and the problem (and logs it on stderr at start-up).
"""

import os
import sys
import time

from .algorithm import LoadError, load
from .codec import ENCODINGS, Codec
from .websocket import HandshakeError, WebSocket
from .wrapper import Wrapper, finish, log


def socket_url(env, encoding):
    url = env.get("WORKER_SOCKET_URL")
    if not url:
        url = "ws://%s:%s" % (env.get("WORKER_SOCKET_HOST") or "127.0.0.1", env.get("WORKER_SOCKET_PORT") or "3000")
    return url + ("&" if "?" in url else "?") + "storage=v1&encoding=" + encoding


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
    storage = env.get("STORAGE_PROTOCOL") or "v1"
    if storage != "v1":
        log("STORAGE_PROTOCOL=%s is not supported: only v1 (inline data) is" % storage)
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
    url = socket_url(env, encoding)
    try:
        ws = connect(url, time.monotonic() + timeout)
    except (OSError, HandshakeError) as e:
        log(str(e))
        return 1
    wrapper = Wrapper(ws, Codec(encoding), algorithm, load_error)
    try:
        code = wrapper.serve()
    except Exception as e:  # a protocol violation by the server
        log("connection failed: %s: %s" % (type(e).__name__, e))
        code = 1
    finish(code, wrapper)


if __name__ == "__main__":
    sys.exit(main())
