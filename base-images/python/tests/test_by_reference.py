"""Links resolved into a task's input, and the metadata of a stored output."""

import unittest

from distributedkube_wrapper.by_reference import get_path, metadata, resolve_input, Missing
from distributedkube_wrapper.storage import StorageError

OBJECTS = {
    "dk-hkube/j/make": {"big": [10, 20, 30], "items": [{"n": 1}, {"n": 2}]},
    "dk-hkube/j/other": "whole",
}


class Reader:
    """``read(path)`` over OBJECTS, counting reads."""

    def __init__(self):
        self.reads = []

    def __call__(self, path):
        self.reads.append(path)
        if path not in OBJECTS:
            raise StorageError("cannot read stored input '%s' (gone)" % path)
        return OBJECTS[path]


def link(path, sub=None):
    out = {"storageInfo": {"path": path, "size": 9}}
    if sub is not None:
        out["path"] = sub
    return out


class ResolveTest(unittest.TestCase):
    def test_links_go_where_flat_input_says_with_sub_paths(self):
        task = {
            "input": [5, "$$ref0", {"deep": ["x", "$$ref1"]}, "$$ref2"],
            "flatInput": {"1": "$$ref0", "2.deep.1": "$$ref1", "3": "$$ref2"},
            "storage": {"ref0": link("dk-hkube/j/make", "big"), "ref1": link("dk-hkube/j/make", "items.1.n"),
                        "ref2": link("dk-hkube/j/other")},
        }
        read = Reader()
        self.assertEqual(resolve_input(task, read), [5, [10, 20, 30], {"deep": ["x", 2]}, "whole"])
        self.assertEqual(task["input"][1], [10, 20, 30], "in place: user start sees the values")
        self.assertEqual(read.reads, ["dk-hkube/j/make", "dk-hkube/j/other"], "each object read once")

    def test_a_list_of_links_is_a_list_of_values(self):
        task = {"input": ["$$b"], "flatInput": {"0": "$$b"},
                "storage": {"b": [link("dk-hkube/j/make", "big.0"), link("dk-hkube/j/make", "big.2")]}}
        self.assertEqual(resolve_input(task, Reader()), [[10, 30]])

    def test_v1_style_tasks_are_left_alone(self):
        task = {"input": ["$$not-a-link", 1], "flatInput": None, "storage": {}}
        self.assertEqual(resolve_input(task, Reader()), ["$$not-a-link", 1])

    def test_errors_say_which_link_and_path(self):
        cases = [
            ({"0": "$$nope"}, {}, "input link '$$nope' (at input.0) is not in the task's storage"),
            ({"0": "$$r"}, {"r": link("dk-hkube/j/make", "big.7")}, "stored input 'dk-hkube/j/make' has no 'big.7'"),
            ({"0": "$$r"}, {"r": link("dk-hkube/j/gone")}, "cannot read stored input 'dk-hkube/j/gone' (gone)"),
            ({"4.a": "$$r"}, {"r": link("dk-hkube/j/other")}, "flatInput names input.4.a"),
            ({"0": "$$r"}, {"r": {"tasks": ["t1"]}}, "has no storageInfo.path"),
        ]
        for flat, storage, message in cases:
            with self.assertRaises(StorageError) as e:
                resolve_input({"input": ["$$x"], "flatInput": flat, "storage": storage}, Reader())
            self.assertIn(message, str(e.exception))

    def test_get_path(self):
        self.assertEqual(get_path({"a": [{"b": 3}]}, "a.0.b"), 3)
        self.assertEqual(get_path([1], ""), [1])
        for path in ("a.1", "a.x", "c", "a.0.b.c"):
            with self.assertRaises(Missing):
                get_path({"a": [{"b": 3}]}, path)


class MetadataTest(unittest.TestCase):
    def test_types_and_lengths_at_save_paths(self):
        result = {"items": [1, 2, 3], "obj": {"x": 1}, "n": 4, "s": "t", "none": None, "deep": {"l": [[], []]}}
        meta = metadata("make", result, ["make.items", "make.obj", "make.n", "make.s", "make.none", "make.missing",
                                         "make.deep.l", "make.deep.l.1", "make"])
        self.assertEqual(meta, {
            "make.items": {"type": "array", "size": 3},
            "make.obj": {"type": "object"},
            "make.n": {"type": "int"},
            "make.s": {"type": "str"},
            "make.deep.l": {"type": "array", "size": 2},
            "make.deep.l.1": {"type": "array", "size": 0},
            "make": {"type": "object"},
        })
        self.assertEqual(metadata("make", [7, 8], ["make"]), {"make": {"type": "array", "size": 2}})
        self.assertEqual(metadata("make", 1, None), {})


if __name__ == "__main__":
    unittest.main()
