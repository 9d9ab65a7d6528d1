'use strict';
// Whether this program can import a watched ES module at all, decided before Node loads its
// entry point, and whether it can do so before any CommonJS code of its runs: the loader hooks
// (module.register starts a second V8 isolate on a thread of its own, which triples the CPU time
// of a `node -e 0`) are only registered when and once they can matter. The require hook needs no
// such decision: it costs one Map lookup per module.
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
const MAIN_MAX = 16 << 20; // an entry point larger than this is read by Node alone, with the hooks in place

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

// Node flags that load ES modules before the entry point, or run the entry point as one.
const ESM_FLAGS = /--(?:experimental-)?loader\b|--experimental-default-type[= ]module|--input-type[= ]module/;
const EVAL_FLAGS = new Set(['-e', '--eval', '-p', '--print']);

/**
 * Whether CommonJS ``source`` may import an ES module, checked before Node compiles it: an
 * ``import(`` anywhere, or a line that starts with an ``import`` or ``export`` statement (Node runs a
 * typeless .js file that has one as an ES module). The same words in a comment or a string only
 * register the hooks sooner. One search for the letters the two words end with ("port": a "p" is
 * rarer than the "i" and "e" they start with) rather than a regular expression, which took
 * milliseconds on a large bundle, or a search for each word (three times as slow).
 */
function mayImport(source) {
  if (typeof source !== 'string') return false;
  for (let port = source.indexOf('port'); port >= 0; port = source.indexOf('port', port + 4)) {
    const at = port - 2;
    const first = source.charCodeAt(at);
    const second = source.charCodeAt(at + 1);
    const isImport = first === 105 && second === 109; // "im"
    if (!isImport && !(first === 101 && second === 120)) continue; // "ex"
    let next = port + 4;
    if (partOfName(source.charCodeAt(at - 1)) || partOfName(source.charCodeAt(next))) continue;
    while (blank(source.charCodeAt(next)) || newline(source.charCodeAt(next))) next += 1;
    if (isImport && source.charCodeAt(next) === 40 /* ( */) return true;
    let start = at - 1;
    while (blank(source.charCodeAt(start))) start -= 1;
    if (start < 0 || newline(source.charCodeAt(start))) return true;
  }
  return false;
}

/** A character code that joins the word to a name (a letter, a digit, _ or $) or makes it a property (.). */
function partOfName(code) {
  return (code >= 97 && code <= 122) || (code >= 65 && code <= 90) || (code >= 48 && code <= 57)
    || code === 95 || code === 36 || code === 46 || code > 127;
}

function blank(code) {
  return code === 32 || code === 9;
}

function newline(code) {
  return code === 10 || code === 13;
}

/**
 * Whether the loader hooks must be in place before the entry point runs: Node loads an ES module
 * first (another --import than this client's register, a --loader), the entry point is one (.mjs,
 * .mts, .js in a "type": "module" scope, --input-type=module), its own source or the code of -e or
 * -p may import, or the program cannot be read ahead (the REPL, a script on stdin). Otherwise the
 * entry point is CommonJS that does not import, and the hooks wait for the first source Node
 * compiles that may (``mayImport``).
 */
function hooksNeededAtStart() {
  const flags = `${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS || ''}`;
  if (ESM_FLAGS.test(flags)) return true;
  for (const [, value] of flags.matchAll(/--import[= ](\S+)/g)) if (!value.includes('telly-autoinst/register')) return true;
  const at = process.execArgv.findIndex((arg) => EVAL_FLAGS.has(arg));
  if (at >= 0) return at + 1 >= process.execArgv.length || mayImport(process.execArgv[at + 1]);
  const main = process.argv[1];
  if (!main) return true;
  if (main.endsWith('.cjs') || main.endsWith('.cts')) return false;
  if (/\.(?:mjs|mts|ts)$/.test(main)) return true;
  let file;
  try {
    file = fs.realpathSync(require.resolve(main)); // node app: Node finds app.js as require does
  } catch (_) {
    return true; // not found as CommonJS: Node says what it is
  }
  if (!file.endsWith('.js') && !file.endsWith('.cjs')) return true;
  if (file.endsWith('.js') && packages.moduleFormat(file, { root: path.parse(file).root }) === 'esm') return true;
  // The entry point itself is read here rather than as Node compiles it: with an --import (this
  // client's own, as NODE_OPTIONS loads it), Node runs the entry point through its ES module loader,
  // which tells an ES module .js by its syntax without compiling it as CommonJS first.
  try {
    return mayImport(readText(file, MAIN_MAX));
  } catch (_) {
    return true;
  }
}

module.exports = { needsLoaderHooks, hooksNeededAtStart, mayImport };
