"""The code API of ``start(args, hkubeApi)``, named as in HKube's Python wrapper.

``start_algorithm``, ``start_stored_subpipeline`` and ``start_raw_subpipeline``
send HKube's messages (``startAlgorithmExecution``, ``startStoredSubPipeline``,
``startRawSubPipeline``) and block until the server answers. The answer is
the child's result: an algorithm's output, or a sub-pipeline's result list
(``[{"nodeName", "algorithmName", "result"}]``); ``None`` when
``includeResult=False``. A failed or stopped child raises
:class:`CodeApiError` (HKube's wrapper returns the error text instead; an
exception can't be mistaken for a result). The user's ``start`` runs in its
own thread, so blocking here leaves the wrapper's read loop free.
"""

import itertools
import threading

# Answers the server sends, and which of them end a call.
ANSWERS = {
    "algorithmExecutionDone": ("execId", True),
    "algorithmExecutionError": ("execId", True),
    "subPipelineStarted": ("subPipelineId", False),
    "subPipelineDone": ("subPipelineId", True),
    "subPipelineError": ("subPipelineId", True),
    "subPipelineStopped": ("subPipelineId", True),
}


class CodeApiError(Exception):
    """A child the algorithm started failed or was stopped."""


class Pending:
    """One call waiting for its answer."""

    def __init__(self):
        self.done = threading.Event()
        self.command = None
        self.data = None


class Calls:
    """The calls one wrapper has in flight, by id (ids are strings, as HKube's)."""

    def __init__(self, send):
        self._send = send
        self._ids = itertools.count(1)
        self._pending = {}
        self._lock = threading.Lock()

    def call(self, command, id_key, data, include_result, stopped):
        """Send ``command`` with a fresh id under ``id_key``; wait for its end."""
        call_id = str(next(self._ids))
        pending = Pending()
        with self._lock:
            self._pending[call_id] = pending
        data = dict(data, **{id_key: call_id, "includeResult": include_result})
        self._send({"command": command, "data": data})
        while not pending.done.wait(0.2):
            if stopped():
                with self._lock:
                    self._pending.pop(call_id, None)
                raise CodeApiError("%s %s: the task was stopped" % (command, call_id))
        answer = pending.data if isinstance(pending.data, dict) else {}
        if pending.command in ("algorithmExecutionDone", "subPipelineDone") and not answer.get("error"):
            return answer.get("response") if include_result else None
        why = answer.get("error") or answer.get("reason") or pending.command
        raise CodeApiError("%s %s: %s" % (command, call_id, why))

    def answer(self, command, data):
        """An answer arrived; ``False`` if it is not one of ours."""
        if command not in ANSWERS:
            return False
        id_key, final = ANSWERS[command]
        call_id = str((data or {}).get(id_key))
        if not final:
            return True
        with self._lock:
            pending = self._pending.pop(call_id, None)
        if pending is not None:
            pending.command, pending.data = command, data
            pending.done.set()
        return True


class HkubeApi:
    """What an algorithm may start while it runs; bound to one task."""

    def __init__(self, calls, stopped):
        self._calls = calls
        self._stopped = stopped

    def start_algorithm(self, algorithmName, input=None, includeResult=True, **_ignored):
        """Run stored algorithm ``algorithmName`` with ``input`` (a list); its output."""
        data = {"algorithmName": algorithmName, "input": list(input or [])}
        return self._calls.call("startAlgorithmExecution", "execId", data, includeResult, self._stopped)

    def start_stored_subpipeline(self, name, flowInput=None, includeResult=True):
        """Run stored pipeline ``name`` (its flowInput keys replaced by ``flowInput``'s)."""
        data = {"subPipeline": {"name": name, "flowInput": dict(flowInput or {})}}
        return self._calls.call("startStoredSubPipeline", "subPipelineId", data, includeResult, self._stopped)

    def start_raw_subpipeline(self, name, nodes, flowInput, options=None, webhooks=None, includeResult=True):
        """Run the pipeline made of ``nodes`` and ``flowInput``."""
        sub = {"name": name, "nodes": nodes, "flowInput": flowInput or {}, "options": options or {}}
        if webhooks:
            sub["webhooks"] = webhooks
        data = {"subPipeline": sub}
        return self._calls.call("startRawSubPipeline", "subPipelineId", data, includeResult, self._stopped)
