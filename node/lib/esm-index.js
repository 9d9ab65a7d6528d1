'use strict';
// Whether this program can import a watched ES module at all, decided before Node loads its
// entry point, so that the loader hooks (module.register starts a second V8 isolate on a thread
// of its own, which doubles the CPU time of a `node -e 0`) are only registered when they can
// matter. The require hook needs no such decision: it costs one Map lookup per module.
//
// The answer comes from the node_modules directories visible from the entry script's directory
// and from the working directory (each one and every ancestor's, with scoped and nested
// packages). It is cached per set of directories in the shared cache directory and rebuilt when
// one of them changed (npm and pnpm move package directories in and out, which changes the mtime
// of the directory that holds them), when the package.json of a package installed as a link
// changed, or when TELLY_AUTOINST_PACKAGES changed.

const fs = require('fs');
const path = require('path');
const packages = require('./packages');
const { cacheDir, debug, noCache } = require('./_env');
const { readText, writeAtomic, secureDir, keyHash } = require('./_files');

const VERSION = 1;
const NM = `${path.sep}node_modules${path.sep}`;
const INDEX_MAX = 4 << 20;

function nodeModulesDirs(starts) {
  const dirs = [];
  for (const start of starts) {
    for (let at = start; ; at = path.dirname(at)) {
      if (path.basename(at) !== 'node_modules') {
        const dir = path.join(at, 'node_modules');
        if (!dirs.includes(dir) && fs.existsSync(dir)) dirs.push(dir);
      }
      if (path.dirname(at) === at) break;
    }
  }
  return dirs;
}

function mtime(p) {
  try {
    return fs.statSync(p).mtimeMs;
  } catch (_) {
    return null;
  }
}

/**
 * Every path whose mtime tells that packages came or went, or changed: node_modules, scopes,
 * nested node_modules, and the package.json of each package installed as a link (npm link,
 * workspaces), whose author edits it in place, out of sight of the node_modules directory.
 */
function watchedDirs(roots) {
  const out = [];
  const visit = (dir, depth) => {
    out.push(dir);
    let names = [];
    try {
      names = fs.readdirSync(dir);
    } catch (_) {
      return;
    }
    for (const name of names) {
      if (name.startsWith('@')) out.push(path.join(dir, name));
    }
    if (depth > 3) return;
    for (const root of packages.listNodeModules(dir)) {
      try {
        // pnpm links every package into its store, inside node_modules: those change only with
        // the directories above, so only links out of node_modules are watched one by one.
        if (fs.lstatSync(root).isSymbolicLink() && !fs.realpathSync(root).includes(NM)) out.push(path.join(root, 'package.json'));
      } catch (_) { /* removed meanwhile */ }
      const nested = path.join(root, 'node_modules');
      if (fs.existsSync(nested)) visit(nested, depth + 1);
    }
  };
  roots.forEach((dir) => visit(dir, 0));
  return out;
}

/** Scan: is there a watched package (opted in or forced) with an ES module entry point? */
function scan(dirs) {
  for (const dir of dirs) {
    if (!path.basename(dir).startsWith('node_modules')) continue;
    for (const root of packages.listNodeModules(dir)) {
      const pkg = packages.info(root);
      if (pkg === null) continue; // neither opted in nor forced: decided on the raw text
      for (const file of pkg.entries.keys()) if (packages.moduleFormat(file, pkg) === 'esm') return true;
    }
  }
  return false;
}

/** True when the ES module loader hooks are worth registering for this program. */
function needsLoaderHooks(forced) {
  const starts = [process.cwd()];
  if (process.argv[1]) {
    try {
      starts.unshift(path.dirname(fs.realpathSync(process.argv[1])));
    } catch (_) { /* a script that does not exist: node will say so */ }
  }
  const roots = nodeModulesDirs(starts);
  if (!roots.length) return false;
  const key = JSON.stringify([VERSION, roots, forced]);
  let base = noCache() ? null : cacheDir();
  // A cache directory another user owns could answer for this one: scanned on every start instead.
  if (base !== null && secureDir(base) !== null) base = null;
  const file = base && path.join(base, `node-index-${keyHash(key)}.json`);
  if (file) {
    try {
      const cached = JSON.parse(readText(file, INDEX_MAX, { nofollow: true }));
      if (cached.key === key && Object.entries(cached.mtimes).every(([dir, m]) => mtime(dir) === m)) return cached.esm;
    } catch (_) { /* missing or stale: rebuilt below */ }
  }
  const dirs = watchedDirs(roots);
  const esm = scan(dirs);
  if (file) {
    try {
      const mtimes = Object.fromEntries(dirs.map((d) => [d, mtime(d)]));
      writeAtomic(file, JSON.stringify({ key, esm, mtimes }));
    } catch (err) {
      debug('the ES module index cannot be cached', err); // a read-only home: scanned on every start
    }
  }
  return esm;
}

module.exports = { needsLoaderHooks };
