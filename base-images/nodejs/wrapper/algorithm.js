// Loading the user's algorithm: a CommonJS module (module.exports = {start, ...})
// or an ES module (.mjs, or require() failing with ERR_REQUIRE_ESM) loaded with
// import(). start/init/stop/exit may be exported directly or on a default export.
// Never throws: a load problem is returned as { error } so the wrapper can still
// connect and report it on every initialize.
'use strict';

const fs = require('fs');
const path = require('path');
const { pathToFileURL } = require('url');

const HOOKS = ['start', 'init', 'stop', 'exit'];

/** Load the entry point (relative to dir): resolves to { algorithm, file } or { error, details, file }. */
async function load(entryPoint, dir = process.cwd()) {
  const file = path.resolve(dir, entryPoint);
  if (!fs.existsSync(file)) {
    return failure(file, `cannot find the algorithm entry point ${file} (ALGORITHM_ENTRY_POINT=${entryPoint})`);
  }
  let mod;
  try {
    mod = await importModule(file);
  } catch (err) {
    const what = err && err.name ? `${err.name}: ${err.message}` : String(err);
    const at = err && typeof err.stack === 'string' && /^(\/.*?|[A-Za-z]:\\.*?):(\d+)\n/.exec(err.stack); // "file:line" of a SyntaxError
    const where = at ? ` (${path.relative(dir, at[1]) || at[1]} line ${at[2]})` : '';
    return failure(file, `cannot load the algorithm entry point ${file}: ${what}${where}`, err && err.stack);
  }
  const algorithm = pickHooks(mod);
  if (!algorithm) {
    const found = mod && (typeof mod === 'object' || typeof mod === 'function') ? Object.keys(mod) : [];
    return failure(file, `the algorithm entry point ${file} does not export a start(args, api) function` +
      ` (exports found: ${found.length ? found.join(', ') : 'none'})`);
  }
  return { algorithm, file };
}

async function importModule(file) {
  if (file.endsWith('.mjs')) return import(pathToFileURL(file).href);
  try {
    return require(file);
  } catch (err) {
    if (err && err.code === 'ERR_REQUIRE_ESM') return import(pathToFileURL(file).href);
    throw err;
  }
}

/** The object holding start (and maybe init/stop/exit), bound so `this` still works. */
function pickHooks(mod) {
  const candidates = [mod, mod && mod.default, mod && mod.default && mod.default.default];
  const owner = candidates.find((c) => c && typeof c.start === 'function');
  if (!owner) return null;
  const hooks = {};
  for (const name of HOOKS) {
    if (typeof owner[name] === 'function') hooks[name] = owner[name].bind(owner);
  }
  return hooks;
}

function failure(file, message, details) {
  return { file, error: message, details: details || message };
}

module.exports = { load };
