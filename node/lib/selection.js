'use strict';
// Which exports of an entry point are counted, and under which keys. Shared by the wrappers and
// by --dry-run, so the listing is exactly what would be counted.
//
// Keys: "<entry>.<export>" for a function, "<entry>.<Class>" for constructing a class,
// "<entry>.<Class>.<method>" for its prototype and static methods, where <entry> is the package
// name or "name/sub" for a subpath export. A CommonJS module.exports that is itself a function is
// the export "default", as ESM sees it. Names starting with "_" are private, as in Python.

const fnToString = Function.prototype.toString;
const SKIP_STATICS = new Set(['prototype', 'length', 'name', 'caller', 'arguments']);

/** fnmatch.fnmatchcase's translation of a glob pattern: *, ?, [seq], [!seq]; case-sensitive. */
function globToRegExp(pattern) {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '*') out += '[\\s\\S]*';
    else if (ch === '?') out += '[\\s\\S]';
    else if (ch === '[') {
      let j = i + 1;
      if (pattern[j] === '!') j++;
      if (pattern[j] === ']') j++;
      while (j < pattern.length && pattern[j] !== ']') j++;
      if (j >= pattern.length) out += '\\[';
      else {
        let body = pattern.slice(i + 1, j).replace(/\\/g, '\\\\');
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        else if (body.startsWith('^')) body = `\\${body}`;
        out += `[${body}]`;
        i = j;
      }
    } else out += ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^(?:${out})$`);
}

const compiled = new Map();
function matches(key, patterns) {
  return patterns.some((p) => {
    if (!compiled.has(p)) compiled.set(p, globToRegExp(p));
    return compiled.get(p).test(key);
  });
}

/** Whether the project's include/exclude patterns let ``key`` be counted. */
function wanted(key, project) {
  return matches(key, project.include) && !matches(key, project.exclude);
}

/**
 * A function of the engine's or the host's, not the package's: a built-in (a package such as
 * es-object-atoms exports the global Object itself), a bound function, or a host function. Never
 * counted: wrapping one would replace an intrinsic that other code compares by identity, and
 * counting a class's methods in place would rewrite Object.prototype for the whole process.
 */
function isNative(fn) {
  try {
    return /\{\s*\[native code\]\s*\}\s*$/.test(fnToString.call(fn));
  } catch (_) {
    return true; // a revoked proxy or an exotic host object: leave it alone
  }
}

function isPublic(name) {
  return typeof name === 'string' && !name.startsWith('_');
}

/** An ES class, or an ES5 constructor whose prototype carries methods of its own. */
function isClass(fn) {
  if (typeof fn !== 'function') return false;
  let source = '';
  try {
    source = fnToString.call(fn);
  } catch (_) { /* a revoked proxy or host object */ }
  if (/^class[\s{]/.test(source)) return true;
  const proto = Object.prototype.hasOwnProperty.call(fn, 'prototype') ? fn.prototype : null;
  if (!proto || typeof proto !== 'object') return false;
  return Object.getOwnPropertyNames(proto).some((n) => n !== 'constructor' && methodOf(proto, n));
}

/** The function of a plain, replaceable method property, or null (getters and frozen slots are left alone). */
function methodOf(owner, name) {
  if (!isPublic(name) || name === 'constructor') return null;
  const desc = Object.getOwnPropertyDescriptor(owner, name);
  if (!desc || !('value' in desc) || typeof desc.value !== 'function') return null;
  if (!desc.writable || !desc.configurable) return null;
  return desc.value;
}

// Why --dry-run lists a published function under "not counted" (the checks above say why not).
const WHY_NATIVE = 'a native function (built-in, bound or host): replacing it would change an intrinsic other code '
  + 'compares by identity';
const WHY_FROZEN = 'a method slot that is not writable or not configurable: it cannot be replaced by a counting one';

/** The reason a public method slot holding a function is not counted, or null when it is counted. */
function methodSkipped(owner, name) {
  const desc = Object.getOwnPropertyDescriptor(owner, name);
  if (!isPublic(name) || name === 'constructor' || !desc || !('value' in desc) || typeof desc.value !== 'function') return null;
  if (methodOf(owner, name) === null) return WHY_FROZEN;
  return isNative(desc.value) ? WHY_NATIVE : null;
}

/**
 * [{owner, name, key}] of a class's own prototype and static methods, filtered by the project;
 * ``skipped`` (a Map, for --dry-run) gets key -> why for the wanted ones that cannot be counted.
 */
function methods(cls, classKey, project, skipped = null) {
  const found = [];
  const proto = cls.prototype;
  const owners = proto && typeof proto === 'object' ? [proto, cls] : [cls];
  for (const owner of owners) {
    for (const name of Object.getOwnPropertyNames(owner)) {
      if (owner === cls && SKIP_STATICS.has(name)) continue;
      const fn = methodOf(owner, name);
      const key = `${classKey}.${name}`;
      if (fn && !isNative(fn) && !(owner === cls && isClass(fn))) found.push({ owner, name, key });
      else if (skipped !== null && wanted(key, project)) {
        const why = methodSkipped(owner, name);
        if (why !== null) skipped.set(key, why);
      }
    }
  }
  return found.filter((m) => wanted(m.key, project));
}

/**
 * The keys that exporting ``value`` under ``name`` would count: [] for a non-function, the
 * function's key, or a class's construction key followed by its methods' keys. ``skipped`` (a
 * Map, for --dry-run) gets key -> why for a wanted function that is published but not counted.
 */
function keysOf(value, name, prefix, project, skipped = null) {
  if (typeof value !== 'function' || !isPublic(name)) return [];
  const key = `${prefix}.${name}`;
  if (isNative(value)) {
    if (skipped !== null && wanted(key, project)) skipped.set(key, WHY_NATIVE);
    return [];
  }
  const keys = wanted(key, project) ? [key] : [];
  if (isClass(value)) keys.push(...methods(value, key, project, skipped).map((m) => m.key));
  return keys;
}

/** Every key a CommonJS module.exports value would count, for --dry-run (``skipped``: see keysOf). */
function cjsKeys(exportsValue, prefix, project, skipped = null) {
  const keys = [];
  if (typeof exportsValue === 'function') keys.push(...keysOf(exportsValue, 'default', prefix, project, skipped));
  if (typeof exportsValue === 'function' && isNative(exportsValue)) return keys;
  if (exportsValue && (typeof exportsValue === 'object' || (typeof exportsValue === 'function' && !isClass(exportsValue)))) {
    for (const name of Object.keys(exportsValue)) {
      let value;
      try {
        value = exportsValue[name];
      } catch (_) {
        continue;
      }
      keys.push(...keysOf(value, name, prefix, project, skipped));
    }
  }
  return keys;
}

/** Every key an ES module namespace would count, for --dry-run (``skipped``: see keysOf). */
function esmKeys(namespace, prefix, project, skipped = null) {
  const keys = [];
  for (const name of Object.keys(namespace)) {
    try {
      keys.push(...keysOf(namespace[name], name, prefix, project, skipped));
    } catch (_) { /* a binding still in its temporal dead zone */ }
  }
  return keys;
}

module.exports = { globToRegExp, wanted, isPublic, isNative, isClass, methods, keysOf, cjsKeys, esmKeys };
