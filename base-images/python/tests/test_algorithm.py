"""Loading entry points and calling hooks with the arguments they accept."""

import os
import sys
import tempfile
import textwrap
import unittest

from distributedkube_wrapper.algorithm import LoadError, load, positional_arity


class LoadTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = self.dir.name
        self.saved_path = list(sys.path)
        self.saved_modules = set(sys.modules)

    def tearDown(self):
        sys.path[:] = self.saved_path
        for name in set(sys.modules) - self.saved_modules:
            del sys.modules[name]
        self.dir.cleanup()

    def write(self, rel, text):
        full = os.path.join(self.path, rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(textwrap.dedent(text))

    def test_main_py_imports_siblings(self):
        self.write("helper_for_test.py", "def twice(x):\n    return 2 * x\n")
        self.write("main.py", "import helper_for_test\ndef start(args):\n    return helper_for_test.twice(args['input'][0])\n")
        algo = load("main.py", self.path)
        self.assertEqual(algo.call("start", {"input": [21]}, "api"), 42)
        self.assertIsNone(algo.init)
        self.assertIsNone(algo.call("init", {}))
        self.assertEqual(sys.path[0], os.path.abspath(self.path))

    def test_module_name_and_nested_path(self):
        self.write("pkg/__init__.py", "")
        self.write("pkg/util.py", "VALUE = 5\n")
        self.write("pkg/mod.py", "from . import util\ndef start(args, api):\n    return (util.VALUE, api)\n")
        self.assertEqual(load("pkg/mod.py", self.path).call("start", {}, "api"), (5, "api"))
        self.assertEqual(load("pkg.mod", self.path).call("start", {}, "api"), (5, "api"))

    def test_name_clash_with_stdlib_module(self):
        self.write("json.py", "def start(args):\n    return 'mine'\n")
        import json

        algo = load("json.py", self.path)
        self.assertEqual(algo.call("start", {}), "mine")
        self.assertIs(sys.modules["json"], json)

    def test_arity_and_async(self):
        self.write(
            "main.py",
            """
            import asyncio
            def init():
                return 'no args'
            async def start(args, api=None, *rest):
                await asyncio.sleep(0)
                return [args, api]
            def stop(*args):
                return args
            """,
        )
        algo = load("main", self.path)
        self.assertEqual(algo.call("init", {"a": 1}), "no args")
        self.assertEqual(algo.call("start", {"a": 1}, "api"), [{"a": 1}, "api"])
        self.assertEqual(algo.call("stop", {"a": 1}), ({"a": 1},))
        self.assertEqual(positional_arity(lambda a, b, c: 0, 2), 2)
        self.assertEqual(positional_arity(lambda a, *, k=1: 0, 2), 1)

    def test_load_errors(self):
        self.write("nostart.py", "def begin(args):\n    pass\n")
        self.write("broken.py", "def start(args)\n    pass\n")
        self.write("fails.py", "import no_such_module_here\ndef start(args):\n    pass\n")
        for entry, words in [
            ("main.py", "'main.py' not found"),
            ("nostart.py", "no start(args) function"),
            ("broken.py", "syntax error in broken.py line 1"),
            ("fails.py", "ModuleNotFoundError"),
            ("no_such_entry_module", "ModuleNotFoundError"),
        ]:
            with self.subTest(entry=entry):
                with self.assertRaises(LoadError) as ctx:
                    load(entry, self.path)
                self.assertIn(words, str(ctx.exception))


if __name__ == "__main__":
    unittest.main()
