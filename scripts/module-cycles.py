#!/usr/bin/env python3
"""Finds import circles between the modules of each crate.

For every crate below, each top-level module (a file or a directory under
src/) becomes a node, and an edge runs from module A to module B when code
in A names `crate::B` (also inside `use crate::{..}` groups) or reaches B
through `super::` (from a top-level module's own file, `super::B` is B; from
deeper files the `super::` chain is followed, and it usually stays inside).
Test code is left out: `#[cfg(test)]` modules, inline or in their own file.

Inside every directory module the same is done one level down: its child
modules are the nodes, and names of the parent's own items (`super::Engine`)
are not edges, since a parent that owns the types its children share is the
usual shape, not a circle.

Prints each circle (a strongly connected component of more than one module)
and exits 1 if there is any. Standard library only.
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# (crate name, src dir, dirs under it to ignore)
CRATES = [
    ("runner", "runner/src", set()),
    ("builder", "builder/src", set()),
    ("server", "src", {"bin"}),
]

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip_comments_and_strings(text):
    """Blanks out comments, string and char literals (keeping newlines), so
    that a path in a doc comment or an error message is not an import."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    out.append("\n" if text[i] == "\n" else "")
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:]) and not re.match(r"[A-Za-z0-9_]", text[i - 1 : i] or " "):
            hashes = re.match(r"r(#*)\"", text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            end = n if end < 0 else end + 1 + len(hashes)
            out.append('""' + "\n" * text.count("\n", i, end))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i : i + 4]) or text.startswith("'\\", i):
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i:])
            if m:
                out.append("' '")
                i += m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


CFG_TEST_MOD = re.compile(r"#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*([;{])")


def drop_test_modules(code):
    """Removes inline `#[cfg(test)] mod x { .. }` blocks; returns the code
    and the names of `#[cfg(test)] mod x;` declared in their own files."""
    test_files = set()
    while True:
        m = CFG_TEST_MOD.search(code)
        if not m:
            return code, test_files
        if m.group(2) == ";":
            test_files.add(m.group(1))
            code = code[: m.start()] + code[m.end() :]
            continue
        depth, i = 1, m.end()
        while i < len(code) and depth:
            depth += {"{": 1, "}": -1}.get(code[i], 0)
            i += 1
        code = code[: m.start()] + code[i:]


def group_heads(code, start):
    """The first segment of each path in the `{..}` group at `start`."""
    heads, depth, item = [], 0, ""
    for i in range(start, len(code)):
        c = code[i]
        if c == "{":
            depth += 1
            if depth == 1:
                continue
        elif c == "}":
            depth -= 1
            if depth == 0:
                heads.append(item)
                break
        if depth == 1 and c == ",":
            heads.append(item)
            item = ""
        elif depth >= 1:
            item += c
    out = []
    for h in heads:
        m = re.match(r"\s*(" + IDENT + r")", h)
        if m:
            out.append(m.group(1))
    return out


def referenced_paths(code, module_path):
    """Absolute module paths (lists of segments) that `code`, written in
    the module at `module_path`, names through `crate::` or `super::`."""
    paths = []
    for m in re.finditer(r"(?<![A-Za-z0-9_:])(crate|super|self)((?:\s*::\s*super)*)\s*::\s*(\{|" + IDENT + ")", code):
        kind, supers, head = m.group(1), m.group(2), m.group(3)
        if kind == "crate":
            base = []
        else:
            ups = (1 if kind == "super" else 0) + supers.count("super")
            base = module_path[: max(0, len(module_path) - ups)]
        heads = group_heads(code, m.start(3)) if head == "{" else [head]
        paths.extend(base + [h] for h in heads if h not in ("self", "super", "crate"))
    return paths


def crate_files(src, ignored):
    """(module path, file path) for every non-test file of the crate."""
    result = []

    def walk(dir_path, module_path, skip):
        for name in sorted(os.listdir(dir_path)):
            full = os.path.join(dir_path, name)
            if os.path.isdir(full):
                if (not module_path and name in ignored) or name in skip:
                    continue
                walk(full, module_path + [name], set())
            elif name.endswith(".rs"):
                stem = name[:-3]
                if stem in skip:
                    continue
                if stem in ("lib", "main", "mod"):
                    path = module_path
                else:
                    path = module_path + [stem]
                result.append((path, full))

    # Test modules declared with `mod x;` are skipped by name in their parent.
    walk(src, [], set())
    files, test_paths = [], set()
    for path, full in result:
        with open(full, encoding="utf-8") as f:
            code, tests = drop_test_modules(strip_comments_and_strings(f.read()))
        test_paths.update(tuple(path + [t]) for t in tests)
        files.append((path, full, code))
    is_test = lambda p: any(tuple(p[:k]) in test_paths for k in range(1, len(p) + 1))
    return [(p, full, code) for p, full, code in files if not is_test(p)]


def sccs(graph):
    """Tarjan's strongly connected components of more than one node."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def edges_at(files, prefix):
    """The module graph one level below `prefix` (`[]` for the crate),
    with the files that cause each edge."""
    depth = len(prefix)
    children = {p[depth] for p, _, _ in files if len(p) > depth and p[:depth] == prefix}
    graph, why = {c: set() for c in children}, {}
    for path, full, code in files:
        if len(path) <= depth or path[:depth] != prefix:
            continue
        here = path[depth]
        for ref in referenced_paths(code, path):
            if len(ref) > depth and ref[:depth] == prefix and ref[depth] in children and ref[depth] != here:
                graph[here].add(ref[depth])
                why.setdefault((here, ref[depth]), set()).add(os.path.relpath(full, ROOT))
    return graph, why


def report(label, graph, why):
    found = sccs(graph)
    for comp in found:
        print(f"{label}: circle between {', '.join(comp)}")
        for a in comp:
            for b in sorted(graph[a] & set(comp)):
                print(f"    {a} -> {b}  ({', '.join(sorted(why[(a, b)]))})")
    return len(found)


def main():
    circles = 0
    for crate, src, ignored in CRATES:
        files = crate_files(os.path.join(ROOT, src), ignored)
        circles += report(crate, *edges_at(files, []))
        dirs = sorted({tuple(p[:k]) for p, _, _ in files for k in range(1, len(p))})
        for d in dirs:
            circles += report(f"{crate}::{'::'.join(d)}", *edges_at(files, list(d)))
    if circles:
        print(f"{circles} module import circle(s)")
        return 1
    print("no module import circles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
