"""The wrapper subprocess in storage v3 on local files: links read into the
input before user start, the output stored with HKube's header, ``storing``
then ``done`` without data."""

import os
import tempfile
import unittest

from distributedkube_wrapper import msgpack_codec
from distributedkube_wrapper.storage import FsAdapter, Storage, make_header

from .test_end_to_end import Wrapper, task

MAIN = """
def start(args, api):
    numbers, first = args["input"]
    if first == "raise":
        raise ValueError("user code failed")
    return {"sum": sum(numbers), "first": first, "items": numbers[:2]}
"""


class V3Test(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.TemporaryDirectory()
        self.addCleanup(self.root.cleanup)
        self.storage = Storage(FsAdapter(self.root.name), "dk")
        self.env = {"STORAGE_PROTOCOL": "v3", "CLUSTER_NAME": "dk", "DEFAULT_STORAGE": "fs",
                    "BASE_FS_ADAPTER_DIRECTORY": self.root.name}

    def linked_task(self, task_id, path="dk-hkube/job-1/make:1"):
        t = task(task_id, "$$ref0", "$$ref1")
        t["flatInput"] = {"0": "$$ref0", "1": "$$ref1"}
        t["storage"] = {"ref0": {"storageInfo": {"path": path, "size": 1}, "path": "big"},
                        "ref1": {"storageInfo": {"path": path, "size": 1}, "path": "big.0"}}
        t["info"] = {"savePaths": ["node.items", "node.sum"]}
        return t

    def test_links_in_output_by_reference(self):
        self.storage.put_value("dk-hkube/job-1/make:1", {"big": list(range(1, 101))})
        w = Wrapper(self, {"main.py": MAIN}, "msgpack", env=self.env)
        conn = w.accept()
        self.assertIn("storage=v3&encoding=msgpack", conn.path)
        storing = w.run_task(self.linked_task("node:t1"))
        self.assertEqual(storing["command"], "storing", storing)
        path = "dk-hkube/job-1/node:t1"
        with open(os.path.join(self.root.name, path), "rb") as f:
            stored = f.read()
        self.assertEqual(storing["data"], {
            "storageInfo": {"path": path, "size": len(stored) - 8},
            "metadata": {"node.items": {"type": "array", "size": 2}, "node.sum": {"type": "int"}},
        })
        self.assertEqual(stored[:8], make_header("msgpack"))
        self.assertEqual(msgpack_codec.unpackb(stored[8:]), {"sum": 5050, "first": 1, "items": [1, 2]})
        self.assertEqual(w.recv(), {"command": "done", "data": None})
        # The same connection serves the next task; a missing object fails it, naming the path.
        failed = w.run_task(self.linked_task("node:t2", "dk-hkube/job-1/gone"))
        self.assertEqual(failed["command"], "errorMessage", failed)
        self.assertIn("cannot read stored input 'dk-hkube/job-1/gone' (FileNotFoundError",
                      failed["error"]["message"])

    def test_user_failures_store_nothing(self):
        self.storage.put_value("dk-hkube/job-1/make:1", {"big": ["raise"]})
        w = Wrapper(self, {"main.py": MAIN}, "json", env=self.env)
        w.accept()
        failed = w.run_task(self.linked_task("node:t3"))
        self.assertEqual(failed["command"], "errorMessage", failed)
        self.assertIn("user code failed", failed["error"]["message"])
        self.assertFalse(os.path.exists(os.path.join(self.root.name, "dk-hkube/job-1/node:t3")))


if __name__ == "__main__":
    unittest.main()
