'use strict';
// The counting wrappers. Every counted function or class is replaced, where it is exported, by a
// Proxy of itself: a Proxy keeps name, length, prototype, static properties, instanceof,
// `this`, and async and generator behaviour without copying anything, and its traps only
// increment a counter and forward. Errors pass through untouched (no try/catch around the call).
// Methods are counted by replacing the prototype's (and the class's static) method slots with
// such proxies, once per class, so calls through subclasses and the package's own calls count.

const { cell } = require('./counters');
const selection = require('./selection');
const { debug } = require('./_env');

const fnToString = Function.prototype.toString;
const ours = new WeakSet(); // every proxy made here: never wrapped twice
const instrumentedClasses = new WeakSet();
const byOriginal = new WeakMap(); // original function -> Map(key -> proxy): one identity per export

/**
 * `fn.toString()` and `${fn}` on a Proxy would print "function () { [native code] }"; answer with
 * the original's source instead (Function.prototype.toString.call(proxy) still cannot be fixed).
 */
function toStringOf(target) {
  return function toString() {
    return fnToString.call(target);
  };
}

function counting(fn, counter) {
  let ownToString = null;
  const handler = {
    apply(target, thisArg, args) {
      counter.n++;
      return Reflect.apply(target, thisArg, args);
    },
    construct(target, args, newTarget) {
      counter.n++;
      // new P(): the constructor sees its own class as new.target, as without us, so checks such
      // as `new.target === Base` inside the package keep working; subclasses pass themselves.
      return Reflect.construct(target, args, newTarget === proxy ? target : newTarget);
    },
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver === proxy ? target : receiver);
      if (key === 'toString' && value === fnToString) return ownToString || (ownToString = toStringOf(target));
      return value;
    },
  };
  const proxy = new Proxy(fn, handler);
  ours.add(proxy);
  return proxy;
}

/** The counting proxy for ``fn`` under ``key`` (the same proxy every time it is asked for). */
function counted(fn, key, project) {
  if (ours.has(fn)) return fn;
  let byKey = byOriginal.get(fn);
  if (!byKey) byOriginal.set(fn, (byKey = new Map()));
  let proxy = byKey.get(key);
  if (!proxy) byKey.set(key, (proxy = counting(fn, cell(project, key))));
  return proxy;
}

/** Replace a class's method slots with counting proxies, once per class. */
function instrumentClass(cls, classKey, project) {
  if (instrumentedClasses.has(cls)) return;
  instrumentedClasses.add(cls);
  for (const m of selection.methods(cls, classKey, project)) {
    try {
      const desc = Object.getOwnPropertyDescriptor(m.owner, m.name);
      Object.defineProperty(m.owner, m.name, Object.assign({}, desc, { value: counted(desc.value, m.key, project) }));
    } catch (err) {
      debug(`cannot count ${m.key}`, err);
    }
  }
}

/** What an importer should see in place of ``value`` exported as ``name``. */
function exported(value, name, prefix, project) {
  if (typeof value !== 'function' || ours.has(value) || !selection.isPublic(name) || selection.isNative(value)) return value;
  const key = `${prefix}.${name}`;
  if (selection.isClass(value)) instrumentClass(value, key, project);
  return selection.wanted(key, project) ? counted(value, key, project) : value;
}

/**
 * Count the exports of a plain exports object in place: each writable data property and each
 * configurable getter now hands out the counting proxy. Returns false when some function export
 * can only be reached through a slot that cannot be redefined (a non-configurable getter, as
 * TypeScript emits for re-exports), which needs the Proxy of the whole object instead.
 */
function countInPlace(exportsValue, prefix, project) {
  let complete = true;
  for (const key of Object.getOwnPropertyNames(exportsValue)) {
    if (!selection.isPublic(key)) continue;
    const desc = Object.getOwnPropertyDescriptor(exportsValue, key);
    if ('value' in desc) {
      if (typeof desc.value !== 'function') continue;
      if (desc.writable && desc.configurable) {
        Object.defineProperty(exportsValue, key, Object.assign(desc, { value: exported(desc.value, key, prefix, project) }));
      } else if (desc.writable) {
        exportsValue[key] = exported(desc.value, key, prefix, project);
      } // frozen: a Proxy could not report another value either; not counted
    } else if (desc.get && desc.configurable) {
      const getter = desc.get;
      Object.defineProperty(exportsValue, key, Object.assign(desc, {
        get() {
          return exported(Reflect.apply(getter, this, []), key, prefix, project);
        },
      }));
    } else if (desc.get) {
      complete = false;
    }
  }
  return complete;
}

/**
 * A CommonJS module.exports, as its importers will see it. A plain exports object is counted in
 * place (no cost on property reads, and identity, enumeration, stubbing and freezing behave as
 * before); exports only reachable through fixed getters, and a function module.exports (itself
 * counted as "default"), get a Proxy whose reads hand out counting proxies while writes and
 * enumeration reach the real object. A class export is counted like any exported class.
 */
function cjsExports(exportsValue, prefix, project) {
  const isFn = typeof exportsValue === 'function';
  if (!exportsValue || (typeof exportsValue !== 'object' && !isFn) || ours.has(exportsValue)) return exportsValue;
  if (isFn && selection.isNative(exportsValue)) return exportsValue; // module.exports = Object: never touched
  if (isFn && selection.isClass(exportsValue)) return exported(exportsValue, 'default', prefix, project);
  if (!isFn) {
    try {
      if (countInPlace(exportsValue, prefix, project)) return exportsValue;
    } catch (err) {
      debug(`counting ${prefix} through a Proxy instead`, err);
    }
  }
  const seen = new Map(); // name -> [original, what importers get]
  let ownToString = null;
  let proxy = null;
  const handler = {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver === proxy ? target : receiver);
      if (typeof value !== 'function' || typeof key !== 'string') return value;
      if (isFn && key === 'toString' && value === fnToString) return ownToString || (ownToString = toStringOf(target));
      const known = seen.get(key);
      if (known && known[0] === value) return known[1];
      let result = value;
      try {
        const desc = Reflect.getOwnPropertyDescriptor(target, key);
        // A Proxy must report a frozen data property as it is; such an export is not counted.
        const frozen = desc && 'value' in desc && !desc.writable && !desc.configurable;
        if (desc && !frozen) result = exported(value, key, prefix, project);
      } catch (err) {
        debug(`cannot count ${prefix}.${key}`, err);
      }
      seen.set(key, [value, result]);
      return result;
    },
  };
  if (isFn && selection.wanted(`${prefix}.default`, project)) {
    // One Proxy for both roles: calls counted as "default", property reads as named exports.
    const counter = cell(project, `${prefix}.default`);
    handler.apply = (target, thisArg, args) => {
      counter.n++;
      return Reflect.apply(target, thisArg, args);
    };
    handler.construct = (target, args, newTarget) => {
      counter.n++;
      return Reflect.construct(target, args, newTarget === proxy ? target : newTarget);
    };
  }
  proxy = new Proxy(exportsValue, handler);
  ours.add(proxy);
  return proxy;
}

module.exports = { exported, cjsExports };
