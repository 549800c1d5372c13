"""The code API (``hkubeApi`` in ``start``) through a real wrapper process: the
messages it sends are HKube's, and the server's answers come back as results
or as ``CodeApiError``."""

import unittest

from .test_end_to_end import Wrapper, task

MAIN = """
from distributedkube_wrapper.code_api import CodeApiError

def start(args, hkubeApi):
    kind = args["input"][0]
    if kind == "algorithm":
        return hkubeApi.start_algorithm("double", [21])
    if kind == "stored":
        return hkubeApi.start_stored_subpipeline("numbers", {"x": 3})
    if kind == "raw":
        nodes = [{"nodeName": "a", "algorithmName": "double", "input": ["@flowInput.x"]}]
        return hkubeApi.start_raw_subpipeline("inline", nodes, {"x": 4}, includeResult=False)
    if kind == "failing":
        try:
            hkubeApi.start_algorithm("missing", [])
        except CodeApiError as e:
            return "caught: " + str(e)
"""


class CodeApiTest(unittest.TestCase):
    def start(self, kind):
        w = Wrapper(self, {"main.py": MAIN})
        w.accept()
        w.send("initialize", task("t1", kind))
        w.expect("initialized")
        w.send("start", {})
        w.expect("started")
        return w

    def test_start_algorithm_gets_the_childs_output(self):
        w = self.start("algorithm")
        call = w.expect("startAlgorithmExecution")["data"]
        self.assertEqual(call, {"execId": "1", "algorithmName": "double", "input": [21], "includeResult": True})
        w.send("algorithmExecutionDone", {"execId": "1", "response": 42})
        self.assertEqual(w.expect("done")["data"], 42)

    def test_stored_subpipeline_waits_past_started_for_done(self):
        w = self.start("stored")
        call = w.expect("startStoredSubPipeline")["data"]
        self.assertEqual(call["subPipeline"], {"name": "numbers", "flowInput": {"x": 3}})
        self.assertEqual(call["subPipelineId"], "1")
        w.send("subPipelineStarted", {"subPipelineId": "1", "jobId": "numbers-1"})
        result = [{"nodeName": "a", "algorithmName": "double", "result": 6}]
        w.send("subPipelineDone", {"subPipelineId": "1", "response": result})
        self.assertEqual(w.expect("done")["data"], result)

    def test_raw_subpipeline_without_result(self):
        w = self.start("raw")
        call = w.expect("startRawSubPipeline")["data"]
        self.assertEqual(call["subPipeline"]["name"], "inline")
        self.assertEqual(call["subPipeline"]["nodes"][0]["algorithmName"], "double")
        self.assertFalse(call["includeResult"])
        w.send("subPipelineDone", {"subPipelineId": "1"})
        self.assertEqual(w.expect("done")["data"], None)

    def test_an_error_answer_raises_in_user_code(self):
        w = self.start("failing")
        w.expect("startAlgorithmExecution")
        w.send("algorithmExecutionError", {"execId": "1", "error": "algorithm 'missing' does not exist"})
        self.assertEqual(
            w.expect("done")["data"],
            "caught: startAlgorithmExecution 1: algorithm 'missing' does not exist",
        )


if __name__ == "__main__":
    unittest.main()
