"""Job data by reference (storage v3): links in, metadata out.

In v3 a task's input may hold *links* to outputs other wrappers stored.
``initialize`` then carries, besides ``input`` (where each link is the
string ``"$$<key>"``):

- ``flatInput``: where each link sits, as a dot path of list indexes and
  object keys from the input list (``{"0": "$$ref0", "2.deep": "$$ref1"}``);
- ``storage``: what each key stands for, ``{"ref0": {"storageInfo":
  {"path": "dk-hkube/<job>/<task>", "size": N}, "path": "big"}}``, where the
  optional ``path`` is a dot path inside the stored value.

:func:`resolve_input` reads each object once and puts the values where
``flatInput`` says. When the task's output is stored, :func:`metadata` tells
the server the types (and list lengths) at the paths children batch over
(``info.savePaths``, e.g. ``"make.items"``), so it needs no read to batch.
"""

from .storage import StorageError


class Missing(Exception):
    """A dot path that leads nowhere."""


def _step(value, key):
    if isinstance(value, (list, tuple)):
        try:
            return value[int(key)]
        except (ValueError, IndexError):
            raise Missing(key) from None
    if isinstance(value, dict) and key in value:
        return value[key]
    raise Missing(key)


def get_path(value, path):
    """The value at dot path ``path`` (``""``: ``value`` itself); raises Missing."""
    for key in path.split(".") if path else ():
        value = _step(value, key)
    return value


def set_path(container, path, value):
    """Replace what sits at ``path`` inside ``container`` (it must be there)."""
    *parents, last = path.split(".")
    target = get_path(container, ".".join(parents))
    if isinstance(target, list):
        target[int(last)] = value
    elif isinstance(target, dict):
        target[last] = value
    else:
        raise Missing(last)


def _read_link(link, read, cache):
    """The value a link stands for (``read(path)`` once per object)."""
    info = link.get("storageInfo") if isinstance(link, dict) else None
    path = info.get("path") if isinstance(info, dict) else None
    if not isinstance(path, str):
        raise StorageError("an input link has no storageInfo.path (peer-to-peer links are not supported): %.200r"
                           % (link,))
    if path not in cache:
        cache[path] = read(path)
    sub = link.get("path") or ""
    try:
        return get_path(cache[path], sub)
    except Missing:
        raise StorageError("stored input '%s' has no '%s'" % (path, sub)) from None


def resolve_input(task, read):
    """``task["input"]`` with every link replaced by its value (in place)."""
    items = task.get("input")
    flat = task.get("flatInput") or {}
    storage = task.get("storage") or {}
    cache = {}
    for where, ref in flat.items():
        if not (isinstance(ref, str) and ref.startswith("$$")):
            continue
        link = storage.get(ref[2:])
        if link is None:
            raise StorageError("input link '%s' (at input.%s) is not in the task's storage" % (ref, where))
        # HKube batches may send a list of links: a list of values.
        if isinstance(link, list):
            value = [_read_link(one, read, cache) for one in link]
        else:
            value = _read_link(link, read, cache)
        try:
            set_path(items, where, value)
        except (Missing, TypeError, ValueError):
            raise StorageError("flatInput names input.%s, which the input does not have" % where) from None
    return items


def metadata(node_name, result, save_paths):
    """HKube's ``storing`` metadata: for each save path that exists in
    ``{node_name: result}``, its type, and its length for a list."""
    meta = {}
    for path in save_paths or ():
        try:
            value = get_path({node_name: result}, path)
        except Missing:
            continue
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            meta[path] = {"type": "array", "size": len(value)}
        elif isinstance(value, dict):
            meta[path] = {"type": "object"}
        else:
            meta[path] = {"type": type(value).__name__}
    return meta
