"""The protocol loop: serve runner commands over one websocket.

The main thread reads messages and answers ``initialize``, ``start``,
``stop`` and ``exit``; user ``start`` runs in a background thread so pings,
``stop`` and close keep being handled meanwhile. One task at a time; after
``done`` the same connection serves the next ``initialize``.

If the algorithm failed to load, every ``initialize``/``start`` is answered
with an ``errorMessage`` naming the entry point and the problem.

With a :class:`~.storage.Storage` (``STORAGE_PROTOCOL=v3``) job data goes
by reference: before user ``start`` runs, links in the input are read from
the storage (``by_reference``); the result is stored at HKube's path
``<cluster>-hkube/<jobId>/<taskId>`` and announced with ``storing``
(``{storageInfo: {path, size}, metadata}``), then ``done`` carries no data.
"""

import os
import sys
import threading
import traceback

from . import by_reference
from .code_api import Calls, HkubeApi
from .codec import CodecError
from .storage import StorageError


def log(message):
    """A wrapper diagnostic line on stderr."""
    sys.stderr.write("[wrapper] %s\n" % message)
    sys.stderr.flush()


def error_envelope(message, details="", code="Failed"):
    return {"command": "errorMessage", "error": {"code": code, "message": message, "details": details}}


class Api(HkubeApi):
    """The second argument of ``start(args, api)``: progress, and the code
    API (``start_algorithm``, ``start_stored_subpipeline``,
    ``start_raw_subpipeline``, see ``code_api``)."""

    def __init__(self, wrapper, run):
        HkubeApi.__init__(self, wrapper.calls, lambda: run.stopped)
        self._wrapper = wrapper
        self._run = run

    def progress(self, progress, details=None):
        """Report progress (a number, e.g. a percentage) with optional details."""
        if not self._run.stopped:
            self._wrapper.send({"command": "progress", "data": {"progress": progress, "details": details}})

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        raise NotImplementedError("hkubeApi.%s is not supported by DistributedKube" % name)


class Run:
    """One started task: its thread and whether it was stopped."""

    def __init__(self, task):
        self.task = task
        self.stopped = False
        self.finished = False  # set before the result is sent, under the lock
        self.thread = None

    def busy(self):
        """Still computing a result nobody has seen yet."""
        return not (self.finished or self.stopped) and self.thread is not None and self.thread.is_alive()


class Wrapper:
    def __init__(self, ws, codec, algorithm=None, load_error=None, storage=None):
        self.ws = ws
        self.codec = codec
        self.algorithm = algorithm
        self.load_error = load_error
        self.storage = storage  # v3: job data by reference
        self.task = None
        self.run = None
        self.lock = threading.Lock()  # guards run.stopped vs. sending the result
        self.calls = Calls(self.send)  # code API calls in flight

    # ---- sending -------------------------------------------------------

    def send(self, envelope):
        """Encode and send; an unencodable result becomes an errorMessage."""
        try:
            opcode, payload = self.codec.encode(envelope)
        except CodecError as e:
            log(str(e))
            opcode, payload = self.codec.encode(error_envelope(str(e)))
        try:
            self.ws.send(opcode, payload)
        except Exception as e:  # connection gone: the read loop will notice
            log("cannot send '%s': %s" % (envelope.get("command"), e))

    def send_load_error(self):
        self.send(error_envelope(str(self.load_error), self.load_error.details))

    # ---- the loop ------------------------------------------------------

    def serve(self):
        """Handle messages until the server closes; returns the exit code."""
        while True:
            message = self.ws.recv()
            if message is None:
                return 0
            try:
                envelope = self.codec.decode(*message)
            except CodecError as e:
                log("ignoring a message: %s" % e)
                continue
            command, data = envelope["command"], envelope.get("data")
            if self.calls.answer(command, data):
                continue
            handler = getattr(self, "on_" + command, None)
            if handler is None:
                log("ignoring unknown command '%s'" % command)
                continue
            try:
                code = handler(data)
            except Exception:  # a wrapper bug must not drop the connection
                log("error while handling '%s':\n%s" % (command, traceback.format_exc()))
                continue
            if code is not None:
                return code

    def on_initialize(self, data):
        if self.run is not None and self.run.busy():
            self.send(error_envelope("cannot initialize: the previous task is still running"))
            return
        self.task = data if isinstance(data, dict) else {"input": data}
        self.run = None
        if self.load_error is not None:
            return self.send_load_error()
        try:
            self.algorithm.call("init", self.task)
        except BaseException as e:
            return self.send_failure(e)
        self.send({"command": "initialized", "data": None})

    def on_start(self, data):
        if self.load_error is not None:
            return self.send_load_error()
        if self.task is None:
            return self.send(error_envelope("'start' arrived before 'initialize'"))
        if self.run is not None and self.run.busy():
            return self.send(error_envelope("the task is already running"))
        self.send({"command": "started", "data": None})
        run = self.run = Run(self.task)
        run.thread = threading.Thread(target=self._start, args=(run,), name="algorithm-start", daemon=True)
        run.thread.start()

    def _start(self, run):
        try:
            if self.storage is not None:
                by_reference.resolve_input(run.task, self.storage.get_value)
            result = self.algorithm.call("start", run.task, Api(self, run))
            envelopes = [{"command": "done", "data": result}]
            if self.storage is not None and not run.stopped:
                envelopes = self.store(run.task, result)
        except StorageError as e:
            log(str(e))
            envelopes = [error_envelope(str(e))]
        except BaseException as e:
            envelopes = [self.failure(e)]
        sys.stdout.flush()
        with self.lock:
            # The server may answer `done` with the next `initialize` at once:
            # the run must count as finished before the result leaves.
            run.finished = True
            if not run.stopped:
                for envelope in envelopes:
                    self.send(envelope)

    def store(self, task, result):
        """v3: put the result in the storage; the messages that say so."""
        job_id, task_id = task.get("jobId"), task.get("taskId")
        if not (isinstance(job_id, str) and job_id and isinstance(task_id, str) and task_id):
            raise StorageError("cannot store the output: the task has no jobId and taskId")
        path = self.storage.output_path(job_id, task_id)
        size = self.storage.put_value(path, result)
        info = task.get("info") if isinstance(task.get("info"), dict) else {}
        meta = by_reference.metadata(task.get("nodeName"), result, info.get("savePaths"))
        storing = {"storageInfo": {"path": path, "size": size}, "metadata": meta}
        return [{"command": "storing", "data": storing}, {"command": "done", "data": None}]

    def on_stop(self, data):
        run = self.run
        if run is not None:
            with self.lock:
                run.stopped = True
        if self.algorithm is not None:
            try:
                self.algorithm.call("stop", self.task if self.task is not None else {})
            except BaseException:
                log("stop() raised:\n" + traceback.format_exc())
        self.send({"command": "stopped", "data": None})

    def on_exit(self, data):
        code = data.get("exitCode", 0) if isinstance(data, dict) else 0
        code = code if isinstance(code, int) and not isinstance(code, bool) else 0
        if self.algorithm is not None:
            try:
                self.algorithm.call("exit", self.task if self.task is not None else {})
            except BaseException:
                log("exit() raised:\n" + traceback.format_exc())
        self.ws.close(1000, "exit")
        return code

    # ---- failures ------------------------------------------------------

    def failure(self, exc):
        details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        sys.stderr.write(details)
        sys.stderr.flush()
        return error_envelope("%s: %s" % (type(exc).__name__, exc), details)

    def send_failure(self, exc):
        self.send(self.failure(exc))


def finish(code, wrapper=None):
    """Exit with ``code``; ``os._exit`` if user code is still running."""
    sys.stdout.flush()
    sys.stderr.flush()
    run = wrapper.run if wrapper is not None else None
    if run is not None and run.thread is not None and run.thread.is_alive():
        os._exit(code)
    sys.exit(code)
