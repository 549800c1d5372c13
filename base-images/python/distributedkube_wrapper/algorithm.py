"""Loading the user's algorithm and calling its hooks.

The entry point (``ALGORITHM_ENTRY_POINT``) is a file path relative to the
code directory (``main.py``, ``pkg/mod.py``) or a module name (``main``,
``pkg.mod``). The code directory goes first on ``sys.path`` (then the entry
file's own directory) so the algorithm can import its sibling modules. The
file is loaded under its own module name (``main``, ``pkg.mod``) unless that
would replace an already imported module such as a standard library one.
"""

import asyncio
import importlib
import importlib.util
import inspect
import os
import sys
import traceback

HOOKS = ("init", "start", "stop", "exit")


class LoadError(Exception):
    """The entry point could not be loaded; ``details`` holds a traceback."""

    def __init__(self, message, details=""):
        super().__init__(message)
        self.details = details


class Algorithm:
    """The user's hooks (``None`` when not defined) and how to call them."""

    def __init__(self, module, source):
        self.module = module
        self.source = source
        for name in HOOKS:
            hook = getattr(module, name, None)
            setattr(self, name, hook if callable(hook) else None)
        if self.start is None:
            raise LoadError("%s defines no start(args) function" % source)

    def call(self, name, *args):
        """Call hook ``name`` with as many of ``args`` as it accepts.

        Coroutine functions (and returned awaitables) run with asyncio.
        Returns ``None`` for a hook the algorithm does not define.
        """
        hook = getattr(self, name)
        if hook is None:
            return None
        result = hook(*args[: positional_arity(hook, len(args))])
        if inspect.isawaitable(result):
            result = asyncio.run(_await(result))
        return result


async def _await(awaitable):
    return await awaitable


def positional_arity(func, most):
    """How many positional arguments (up to ``most``) ``func`` takes."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return min(1, most)
    count = 0
    for p in params:
        if p.kind == p.VAR_POSITIONAL:
            return most
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            count += 1
    return min(count, most)


def _module_name(rel_path):
    parts = rel_path[: -len(".py")].replace(os.sep, "/").split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    if parts and all(p.isidentifier() for p in parts):
        return ".".join(parts)
    return "__algorithm__"


def _find_file(entry, cwd):
    """The file for ``entry`` (a path or a module name), or ``None``."""
    candidates = [entry] if entry.endswith(".py") else [
        entry, entry.replace(".", "/") + ".py", entry.replace(".", "/") + "/__init__.py",
    ]
    for rel in candidates:
        path = os.path.join(cwd, rel)
        if os.path.isfile(path):
            return os.path.abspath(path)
    return None


def load(entry="main.py", cwd=None):
    """Load the entry point and return its :class:`Algorithm`; raises LoadError."""
    cwd = os.path.abspath(cwd or os.getcwd())
    if cwd not in sys.path[:1]:
        sys.path.insert(0, cwd)
    path = _find_file(entry, cwd)
    try:
        if path is None and entry.endswith(".py"):
            raise LoadError("algorithm entry point '%s' not found in %s" % (entry, cwd))
        if path is None:  # maybe an installed module
            return Algorithm(importlib.import_module(entry), "module '%s'" % entry)
        entry_dir = os.path.dirname(path)
        if entry_dir not in sys.path:
            sys.path.insert(1, entry_dir)
        rel = os.path.relpath(path, cwd)
        name = _module_name(rel) if not rel.startswith("..") else "__algorithm__"
        if name in sys.modules and getattr(sys.modules[name], "__file__", None) != path:
            name = "__algorithm__"  # never replace e.g. a standard library module
        if "." in name:
            importlib.import_module(name.rpartition(".")[0])
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return Algorithm(module, "'%s'" % rel)
    except LoadError:
        raise
    except SyntaxError as e:
        where = "%s line %s" % (os.path.relpath(e.filename or path or entry, cwd), e.lineno)
        raise LoadError("syntax error in %s: %s" % (where, e.msg), traceback.format_exc()) from None
    except BaseException as e:  # ImportError, NameError, SystemExit, ...
        raise LoadError(
            "cannot load algorithm entry point '%s': %s: %s" % (entry, type(e).__name__, e),
            traceback.format_exc(),
        ) from None
