'use strict';
// Which package a loaded file belongs to, whether that package opted in (its package.json "telly"
// field, or TELLY_AUTOINST_PACKAGES), and which of its files are public entry points.
//
// Only entry points are instrumented: the "exports" map's subpaths (every condition: a dual
// package's require and import files both count as the same subpath) or, without an "exports"
// map, "main". Files the package only uses internally are never wrapped, so an internal hot path
// pays nothing. Everything is cached per directory: a module load costs one Map lookup here.

const fs = require('fs');
const path = require('path');
const { debug } = require('./_env');
const { readText } = require('./_files');

const SEP = path.sep;
const NM = `${SEP}node_modules${SEP}`;

// A package.json is read only if it is a regular file of at most this size: anyone may create a
// node_modules in a shared directory above the working directory, and a FIFO or a link to
// /dev/zero named package.json there must not hang or grow the program.
const MANIFEST_MAX = 4 << 20;

const rootOfDir = new Map(); // directory -> package root or null
const infoOfRoot = new Map(); // package root -> {root, name, version, json, entries} or null

/** The text of a package.json, or null (missing, not a regular file, too large). */
function readManifest(file) {
  try {
    return readText(file, MANIFEST_MAX);
  } catch (err) {
    if (err.code !== 'ENOENT' && err.code !== 'ENOTDIR') debug(`not reading ${file}`, err);
    return null;
  }
}

function readJson(file) {
  const text = readManifest(file);
  try {
    return text === null ? null : JSON.parse(text);
  } catch (_) {
    return null;
  }
}

function hasNamedManifest(dir) {
  const json = readJson(path.join(dir, 'package.json'));
  return json !== null && typeof json.name === 'string' && json.name !== '';
}

/**
 * The root directory of the package that holds ``dir``. Inside node_modules it comes from the
 * path itself (node_modules/name or node_modules/@scope/name); elsewhere it is the nearest
 * directory whose package.json has a name (a nameless package.json, such as {"type": "module"}
 * in a dual package's esm/ folder, only sets the module type).
 */
function rootOf(dir) {
  if (rootOfDir.has(dir)) return rootOfDir.get(dir);
  let root = null;
  const at = dir.lastIndexOf(NM);
  if (at >= 0) {
    const rest = dir.slice(at + NM.length).split(SEP);
    const take = rest[0].startsWith('@') ? 2 : 1;
    if (rest.length >= take && rest[take - 1]) root = dir.slice(0, at + NM.length) + rest.slice(0, take).join(SEP);
  } else if (hasNamedManifest(dir)) {
    root = dir;
  } else {
    const parent = path.dirname(dir);
    root = parent === dir ? null : rootOf(parent);
  }
  rootOfDir.set(dir, root);
  return root;
}

function leaves(target, out) {
  if (typeof target === 'string') out.push(target);
  else if (Array.isArray(target)) target.forEach((t) => leaves(t, out));
  else if (target && typeof target === 'object') Object.values(target).forEach((t) => leaves(t, out));
  return out;
}

function realFile(file) {
  try {
    const real = fs.realpathSync(file);
    return fs.statSync(real).isFile() ? real : null;
  } catch (_) {
    return null;
  }
}

/** The main file as require() would find it: main, main + .js/.cjs/.mjs/.json, main/index.js. */
function mainFile(root, main) {
  const base = path.resolve(root, main || 'index.js');
  for (const candidate of [base, `${base}.js`, `${base}.cjs`, `${base}.mjs`, path.join(base, 'index.js')]) {
    const real = realFile(candidate);
    if (real) return real;
  }
  return null;
}

/** Map of real file path -> subpath name ("pkg", "pkg/sub") for every public entry point. */
function entries(root, json) {
  const name = json.name;
  const found = new Map();
  let exportsField = json.exports;
  if (exportsField !== undefined && exportsField !== null) {
    if (typeof exportsField === 'string' || Array.isArray(exportsField)
        || !Object.keys(exportsField).some((k) => k.startsWith('.'))) {
      exportsField = { '.': exportsField };
    }
    for (const [subpath, target] of Object.entries(exportsField)) {
      // Pattern subpaths ("./*") name no fixed file; those files are not counted.
      if (subpath.includes('*') || subpath.endsWith('/') || subpath === './package.json') continue;
      const label = subpath === '.' ? name : `${name}${subpath.slice(1)}`;
      for (const leaf of leaves(target, [])) {
        if (!leaf.startsWith('./')) continue;
        const real = realFile(path.resolve(root, leaf));
        if (real && !found.has(real) && /\.[cm]?js$/.test(real)) found.set(real, label.replace(/\.[cm]?js$/, ''));
      }
    }
  } else {
    const main = mainFile(root, typeof json.main === 'string' ? json.main : null);
    if (main && /\.[cm]?js$/.test(main)) found.set(main, name);
  }
  return found;
}

/**
 * "esm" or "cjs": how Node loads entry point ``file`` (a real path) of ``pkg``. .mjs and .cjs say
 * so; for .js the nearest package.json decides by its "type" (a nameless one may sit in an esm/
 * folder). The walk ends at the package's real root: a package installed as a link (npm link,
 * workspaces, file: dependencies) has its files outside the node_modules path it is listed under.
 */
function moduleFormat(file, pkg) {
  if (file.endsWith('.mjs')) return 'esm';
  if (file.endsWith('.cjs')) return 'cjs';
  let root = pkg.root;
  try {
    root = fs.realpathSync(pkg.root);
  } catch (_) { /* removed meanwhile: the walk stops at the top */ }
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    const json = readJson(path.join(dir, 'package.json'));
    if (json !== null) return json.type === 'module' ? 'esm' : 'cjs';
    if (dir === root || path.dirname(dir) === dir) return 'cjs';
  }
}

let forced = [];

/** Names that count although their package.json has no "telly" field (TELLY_AUTOINST_PACKAGES). */
function setForced(names) {
  forced = names.map((n) => JSON.stringify(n));
  infoOfRoot.clear();
}

/**
 * {root, name, version, json, entries} for a package root, cached; null when unreadable, and
 * null as well for a package that can be neither opted in nor forced (unless ``all``), which is
 * decided on the raw text so that most packages cost one read and no JSON parse.
 */
function info(root, all = false) {
  const cacheKey = all ? `${root}\0all` : root;
  if (infoOfRoot.has(cacheKey)) return infoOfRoot.get(cacheKey);
  let result = null;
  const text = readManifest(path.join(root, 'package.json')); // none: not a package
  const candidate = text !== null && (all || text.includes('"telly"') || forced.some((n) => text.includes(n)));
  let json = null;
  if (candidate) {
    try {
      json = JSON.parse(text);
    } catch (_) { /* malformed: node itself will complain when it matters */ }
  }
  if (json && typeof json.name === 'string') {
    try {
      result = { root, name: json.name, version: typeof json.version === 'string' ? json.version : null, json,
        entries: entries(root, json) };
    } catch (err) {
      debug(`cannot read the entry points of ${root}`, err);
    }
  }
  infoOfRoot.set(cacheKey, result);
  return result;
}

/** The package that holds ``file`` (an absolute, real path), or null. */
function packageOfFile(file) {
  const root = rootOf(path.dirname(file));
  return root === null ? null : info(root);
}

/** Packages under one node_modules directory (name/ and @scope/name/), for --dry-run. */
function listNodeModules(dir) {
  const roots = [];
  let names = [];
  try {
    names = fs.readdirSync(dir);
  } catch (_) {
    return roots;
  }
  for (const entry of names.sort()) {
    if (entry.startsWith('.')) continue;
    if (entry.startsWith('@')) {
      let scoped = [];
      try {
        scoped = fs.readdirSync(path.join(dir, entry));
      } catch (_) { /* unreadable scope: skipped */ }
      for (const sub of scoped.sort()) roots.push(path.join(dir, entry, sub));
    } else {
      roots.push(path.join(dir, entry));
    }
  }
  return roots;
}

/** The package.json dependency names of a package and their installed versions (bounded). */
function dependencyVersions(pkg, limit = 100) {
  const wanted = Object.keys(Object.assign({}, pkg.json.dependencies, pkg.json.optionalDependencies)).sort();
  const versions = {};
  for (const dep of wanted) {
    if (Object.keys(versions).length >= limit) break;
    // Resolution as require() would do it from inside the package: its own node_modules, then each parent's.
    for (let dir = pkg.root; ; dir = path.dirname(dir)) {
      const json = path.basename(dir) === 'node_modules' ? null : readJson(path.join(dir, 'node_modules', dep, 'package.json'));
      if (json && typeof json.version === 'string') {
        versions[dep.slice(0, 128)] = json.version.slice(0, 64);
        break;
      }
      if (path.dirname(dir) === dir) break;
    }
  }
  return versions;
}

module.exports = { packageOfFile, info, rootOf, moduleFormat, listNodeModules, dependencyVersions, setForced };
