"""The wrapper as a real subprocess (``python3 -m distributedkube_wrapper``) against the test server."""

import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest

from distributedkube_wrapper.codec import Codec
from distributedkube_wrapper.websocket import OP_TEXT

from .ws_server import BINARY, PING, TEXT, Server

BASE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # base-images/python
ENCODINGS = ("json", "msgpack", "bson")

MAIN = """
import threading
import time

import helper

released = threading.Event()

def init(args):
    print("init", args["taskId"])

def start(args, api):
    print("hello from", args["taskId"])
    api.progress(50, "half way")
    kind = args["input"][0]
    if kind == "raise":
        raise ValueError("boom in " + args["taskId"])
    if kind == "wait":  # returns once stop() is called
        released.wait(60)
        return "finished after stop"
    if kind == "sleep":  # ignores stop
        time.sleep(60)
    if kind == "echo":
        return args["input"][1]
    return helper.multiply(args["input"][1:])

def stop(args):
    print("stop called for", args["taskId"])
    released.set()

def exit(args):
    print("exit called")
"""

HELPER = """
def multiply(values):
    result = 1
    for v in values:
        result *= v
    return result
"""


def task(task_id, *inputs):
    return {
        "jobId": "job-1", "taskId": task_id, "nodeName": "node", "pipelineName": "p",
        "algorithmName": "algo", "input": list(inputs), "flatInput": None, "storage": {},
        "batchIndex": None, "kind": "batch", "unknownField": {"x": 1},
    }


class Wrapper:
    """A wrapper subprocess, its output and the server side of its connection."""

    def __init__(self, test, files, encoding="json", env=None, path="/api/v1/internal/workers/w-1"):
        self.codec = Codec(encoding)
        self.server = Server()
        self.dir = tempfile.TemporaryDirectory()
        test.addCleanup(self.cleanup)
        for name, text in files.items():
            with open(os.path.join(self.dir.name, name), "w") as f:
                f.write(textwrap.dedent(text))
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKER_", "ALGORITHM_"))}
        full_env.update(
            PYTHONPATH=BASE, WORKER_SOCKET_URL=self.server.url(path),
            WORKER_ALGORITHM_ENCODING=encoding, STORAGE_PROTOCOL="v1",
        )
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "distributedkube_wrapper"], cwd=self.dir.name, env=full_env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self.stdout, self.stderr = [], []
        self.readers = [
            threading.Thread(target=self._collect, args=(stream, lines), daemon=True)
            for stream, lines in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr))
        ]
        for reader in self.readers:
            reader.start()
        self.conn = None

    @staticmethod
    def _collect(stream, lines):
        for line in iter(stream.readline, b""):
            lines.append(line.decode("utf-8", "replace"))

    def accept(self):
        self.conn = self.server.accept(timeout=15)
        self.conn.sock.settimeout(15)
        return self.conn

    def send(self, command, data=None):
        opcode, payload = self.codec.encode({"command": command, "data": data})
        self.conn.send_frame(TEXT if opcode == OP_TEXT else BINARY, payload.encode() if opcode == OP_TEXT else payload)

    def recv(self, skip_progress=True):
        while True:
            message = self.conn.recv()
            if message is None:
                return None
            opcode, payload = message
            envelope = self.codec.decode(opcode, payload.decode() if opcode == TEXT else payload)
            if envelope["command"] == "progress" and skip_progress:
                self.progress = envelope["data"]
                continue
            return envelope

    def expect(self, command, data=None):
        envelope = self.recv()
        if envelope is None or envelope["command"] != command:
            raise AssertionError("expected %r, got %r; stderr:\n%s" % (command, envelope, "".join(self.stderr)))
        return envelope

    def run_task(self, task_data):
        self.send("initialize", task_data)
        self.expect("initialized")
        self.send("start", {})
        self.expect("started")
        return self.recv()

    def wait(self, timeout=15):
        code = self.proc.wait(timeout)
        for reader in self.readers:  # the pipes are drained once both hit EOF
            reader.join(5)
        return code

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()
        if self.conn is not None:
            self.conn.drop()
        self.server.close()
        self.dir.cleanup()


FILES = {"main.py": MAIN, "helper.py": HELPER}


class ProtocolTest(unittest.TestCase):
    def test_tasks_in_every_encoding(self):
        value = {"a": [1, -(2**40), 2**62, 1.5, "é✓", None, True, [], {}], "b": {"nested": [[1]]}}
        for enc in ENCODINGS:
            with self.subTest(encoding=enc):
                w = Wrapper(self, FILES, enc)
                conn = w.accept()
                self.assertEqual(conn.path, "/api/v1/internal/workers/w-1?storage=v1&encoding=" + enc)
                done = w.run_task(task("t1", "mul", 6, 7))
                self.assertEqual(done, {"command": "done", "data": 42})
                self.assertEqual(w.progress, {"progress": 50, "details": "half way"})
                # A second task on the same connection (warm worker).
                self.assertEqual(w.run_task(task("t2", "echo", value)), {"command": "done", "data": value})
                failed = w.run_task(task("t3", "raise"))
                self.assertEqual(failed["command"], "errorMessage")
                self.assertEqual(failed["error"]["code"], "Failed")
                self.assertEqual(failed["error"]["message"], "ValueError: boom in t3")
                self.assertIn("Traceback", failed["error"]["details"])
                self.assertEqual(w.run_task(task("t4", "mul", 2, 5))["data"], 10)
                w.send("exit", {"exitCode": 7})
                self.assertIsNone(conn.recv())  # the wrapper starts the close handshake
                conn.close()
                self.assertEqual(w.wait(), 7)
                out = "".join(w.stdout)
                for line in ("init t1\n", "hello from t1\n", "hello from t2\n", "init t4\n", "exit called\n"):
                    self.assertIn(line, out)
                self.assertIn("ValueError: boom in t3", "".join(w.stderr))

    def test_large_values(self):
        big = {"json": "ü" * (10 << 20), "msgpack": os.urandom(20 << 20), "bson": os.urandom(20 << 20)}
        for enc in ENCODINGS:
            with self.subTest(encoding=enc):
                w = Wrapper(self, FILES, enc)
                w.accept()
                done = w.run_task(task("big", "echo", big[enc]))
                self.assertEqual(done["command"], "done")
                self.assertTrue(done["data"] == big[enc])
                w.conn.close()
                self.assertEqual(w.wait(), 0)

    def test_bytes_with_json_is_a_clear_error(self):
        files = {"main.py": "def start(args):\n    return b'\\x00'\n"}
        w = Wrapper(self, files, "json")
        w.accept()
        failed = w.run_task(task("t1"))
        self.assertEqual(failed["command"], "errorMessage")
        self.assertIn("msgpack or bson", failed["error"]["message"])

    def test_stop_during_long_start(self):
        for enc in ENCODINGS:
            with self.subTest(encoding=enc):
                w = Wrapper(self, FILES, enc)
                conn = w.accept()
                w.send("initialize", task("t1", "wait"))
                w.expect("initialized")
                w.send("start", {})
                w.expect("started")
                time.sleep(0.2)
                began = time.monotonic()
                w.send("stop", {"forceStop": False})
                w.expect("stopped")
                self.assertLess(time.monotonic() - began, 2)
                time.sleep(0.3)  # start() has returned by now: no 'done' may follow
                conn.close()
                self.assertIsNone(w.recv(skip_progress=False))
                self.assertEqual(w.wait(), 0)
                self.assertIn("stop called for t1\n", "".join(w.stdout))

    def test_server_close_while_user_code_runs(self):
        w = Wrapper(self, FILES)
        conn = w.accept()
        w.send("initialize", task("t1", "sleep"))
        w.expect("initialized")
        w.send("start", None)
        w.expect("started")
        w.send("stop", {"forceStop": True})
        w.expect("stopped")
        conn.close()
        self.assertEqual(w.wait(timeout=5), 0)

    def test_exit_while_user_code_runs(self):
        w = Wrapper(self, FILES, "msgpack")
        conn = w.accept()
        w.send("initialize", task("t1", "sleep"))
        w.expect("initialized")
        w.send("start", {})
        w.expect("started")
        self.assertEqual(w.recv(skip_progress=False)["command"], "progress")  # start() is in its sleep
        w.send("exit", {"exitCode": 3})
        self.assertIsNone(w.recv())
        conn.close()
        self.assertEqual(w.wait(timeout=5), 3)
        self.assertIn("exit called\n", "".join(w.stdout))

    def test_unknown_commands_and_pings_are_harmless(self):
        w = Wrapper(self, FILES, "bson")
        conn = w.accept()
        w.send("somethingNew", {"x": 1})
        conn.send_frame(TEXT, b"not even json")
        conn.send_frame(PING, b"still there?")
        w.send("start", {})  # before initialize
        self.assertIn("before 'initialize'", w.recv()["error"]["message"])
        self.assertEqual(w.run_task(task("t1", "mul", 3))["data"], 3)
        self.assertEqual(conn.pongs, [b"still there?"])
        self.assertIn("somethingNew", "".join(w.stderr))

    def test_async_and_single_argument_start(self):
        files = {
            "main.py": """
            import asyncio
            async def start(args):
                await asyncio.sleep(0.01)
                return {"sum": sum(args["input"])}
            """
        }
        w = Wrapper(self, files, "msgpack")
        w.accept()
        self.assertEqual(w.run_task(task("t1", 1, 2, 3))["data"], {"sum": 6})

    def test_init_failure(self):
        files = {"main.py": "def init(args):\n    raise RuntimeError('no config')\ndef start(args):\n    return 1\n"}
        w = Wrapper(self, files)
        w.accept()
        w.send("initialize", task("t1"))
        failed = w.expect("errorMessage")
        self.assertEqual(failed["error"]["message"], "RuntimeError: no config")


class StartupTest(unittest.TestCase):
    def test_missing_entry_point_fails_each_task(self):
        w = Wrapper(self, {"other.py": "x = 1\n"}, "msgpack")
        conn = w.accept()
        w.send("initialize", task("t1"))
        failed = w.expect("errorMessage")
        self.assertIn("'main.py' not found", failed["error"]["message"])
        w.send("start", {})
        self.assertIn("main.py", w.expect("errorMessage")["error"]["message"])
        conn.close()
        self.assertEqual(w.wait(), 0)
        self.assertIn("[wrapper]", "".join(w.stderr))

    def test_syntax_error_names_file_and_line(self):
        w = Wrapper(self, {"algo.py": "def start(args)\n    return 1\n"}, env={"ALGORITHM_ENTRY_POINT": "algo.py"})
        w.accept()
        w.send("initialize", task("t1"))
        self.assertIn("syntax error in algo.py line 1", w.expect("errorMessage")["error"]["message"])

    def test_host_and_port_variables(self):
        server = Server()
        self.addCleanup(server.close)
        env = {"WORKER_SOCKET_URL": "", "WORKER_SOCKET_HOST": "127.0.0.1", "WORKER_SOCKET_PORT": str(server.port)}
        w = Wrapper(self, FILES, env=env)
        w.server = server
        conn = w.accept()
        self.assertEqual(conn.path, "/?storage=v1&encoding=json")
        self.assertEqual(w.run_task(task("t1", "mul", 2, 2))["data"], 4)

    def test_unsupported_storage_protocol(self):
        w = Wrapper(self, FILES, env={"STORAGE_PROTOCOL": "v2"})
        self.assertEqual(w.wait(), 2)
        self.assertIn("use v1 (inline data) or v3", "".join(w.stderr))

    def test_v3_without_storage_settings_names_the_variable(self):
        env = {"STORAGE_PROTOCOL": "v3", "CLUSTER_NAME": "dk", "DEFAULT_STORAGE": "fs",
               "BASE_FS_ADAPTER_DIRECTORY": ""}
        w = Wrapper(self, FILES, env=env)
        self.assertEqual(w.wait(), 2)
        self.assertIn("BASE_FS_ADAPTER_DIRECTORY is not set", "".join(w.stderr))

    def test_no_runner_to_connect_to(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # nobody listens here once closed
        env = {"WORKER_SOCKET_URL": "ws://127.0.0.1:%d/x" % port, "WORKER_CONNECT_TIMEOUT": "0.5"}
        w = Wrapper(self, FILES, env=env)
        self.assertEqual(w.wait(), 1)
        self.assertIn("cannot connect", "".join(w.stderr))


if __name__ == "__main__":
    unittest.main()
