// Storage v3 in a task's data: links in, metadata out.
//   in:  initialize data has input with "$$<key>" strings where stored data goes,
//        flatInput {"0": "$$ref0", "2.deep": "$$ref1"} (where each sits: a dot path of list
//        indexes and object keys) and storage {"ref0": {storageInfo: {path, size}, path: "big"}}
//        (path, optional: a dot path inside the stored value). resolveInput reads each object
//        once and puts the values in place.
//   out: metadata({[nodeName]: result}) at each of info.savePaths, so the server can batch over
//        a stored list without reading it: {"make.items": {type: "array", size: 3}}.
'use strict';

const MISSING = Symbol('missing');

const isContainer = (v) => v !== null && typeof v === 'object' && !Buffer.isBuffer(v);

/** The value at dot path p ("a.0.b") inside value, or MISSING. */
function getPath(value, p) {
  if (p === undefined || p === null || p === '') return value;
  let at = value;
  for (const seg of String(p).split('.')) {
    if (!isContainer(at) || !Object.prototype.hasOwnProperty.call(at, seg)) return MISSING;
    at = at[seg];
  }
  return at;
}

/** Put value at dot path p inside root (its parents must exist). */
function setPath(root, p, value) {
  const segs = String(p).split('.');
  const last = segs.pop();
  const parent = segs.length ? getPath(root, segs.join('.')) : root;
  if (!isContainer(parent)) throw new Error(`flatInput '${p}' does not point into the input`);
  parent[last] = value;
}

/** Resolve every link of task (mutates task.input); read(path) resolves with a stored value. */
async function resolveInput(task, read) {
  const flat = task.flatInput;
  if (!isContainer(flat) || Object.keys(flat).length === 0) return task.input;
  const storage = isContainer(task.storage) ? task.storage : {};
  const objects = new Map(); // path -> promise of its value: each object read once
  const load = (link, key) => {
    const stored = link && link.storageInfo && link.storageInfo.path;
    if (typeof stored !== 'string') throw new Error(`storage '${key}' has no storageInfo.path`);
    if (!objects.has(stored)) objects.set(stored, read(stored));
    return objects.get(stored).then((value) => {
      const found = getPath(value, link.path);
      if (found === MISSING) throw new Error(`stored input '${stored}' has no '${link.path}'`);
      return found;
    });
  };
  const pending = Object.entries(flat).map(async ([at, ref]) => {
    if (typeof ref !== 'string' || !ref.startsWith('$$')) return;
    const key = ref.slice(2);
    const link = storage[key];
    if (link === undefined) throw new Error(`input '${at}' is ${ref} but storage has no '${key}'`);
    // HKube may send a list of links (a batch request): a list of their values.
    const value = Array.isArray(link) ? await Promise.all(link.map((l) => load(l, key))) : await load(link, key);
    setPath(task.input, at, value);
  });
  await Promise.all(pending);
  return task.input;
}

/** HKube's metadata of an output: what lies at each save path of {[nodeName]: value}. */
function metadata(nodeName, value, savePaths) {
  const out = {};
  const root = { [nodeName]: value };
  for (const p of Array.isArray(savePaths) ? savePaths : []) {
    const found = getPath(root, p);
    if (found === MISSING || found === undefined) continue;
    out[p] = Array.isArray(found) ? { type: 'array', size: found.length } : { type: typeof found };
  }
  return out;
}

module.exports = { resolveInput, metadata, getPath, setPath, MISSING };
