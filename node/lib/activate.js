'use strict';
// What `--require telly-autoinst/register` and `--import telly-autoinst/register` run: kill
// switches first, then the require hook and the ES module loader hooks. Everything else (consent,
// reports, triggers) waits until a watched package's entry point has loaded. Safe to run twice
// (both flags, or NODE_OPTIONS plus a flag).

const Module = require('module');
const path = require('path');
const { killSwitch, debug } = require('./_env');

const DONE = Symbol.for('telly-autoinst.activated');
// The client's own files, loaded lazily after the hooks are in place (the loader check, the
// pipeline at the first watched load, consent, transport and spool at exit): never counted, and
// never what registers the loader hooks. One prefix test instead of finding their package and
// reading its package.json.
const OWN = path.dirname(__dirname) + path.sep;

/**
 * The require hook: it wraps the CommonJS loader of .js and .cjs files, and counts a module's
 * exports right after the module ran, before Node hands module.exports to anyone (require(),
 * and the snapshot that import of a CommonJS module takes), so both see the same counted exports.
 */
function installRequireHook(control) {
  for (const ext of ['.js', '.cjs']) {
    const original = Module._extensions[ext];
    if (typeof original !== 'function') continue;
    Module._extensions[ext] = function tellyAutoinst(module, filename) {
      const result = original.apply(this, arguments);
      try {
        if (module.id !== '.' && !filename.startsWith(OWN)) control.cjsLoaded(module, filename);
      } catch (err) {
        debug(`not counting ${filename}`, err);
      }
      return result;
    };
  }
}

function registerLoaderHooks(why) {
  debug(`ES module loader hooks: registered (${why})`);
  const { pathToFileURL } = require('url');
  Module.register(pathToFileURL(require.resolve('./hooks.mjs')).href);
}

/**
 * The ES module loader hooks, where a watched package has an ES module entry point: at once when
 * the program can import before its CommonJS code runs (an ES module entry point, an entry point or
 * -e code whose source may import), else at the first CommonJS source that may import, checked as
 * Node compiles it and before it runs. A CommonJS program that never imports never starts the
 * loader thread.
 */
function installLoaderHooks(forced) {
  // module.register exists from Node 18.19 / 20.6; older Nodes count CommonJS packages only.
  if (typeof Module.register !== 'function') return;
  const esmIndex = require('./esm-index');
  if (!esmIndex.needsLoaderHooks(forced)) return;
  if (esmIndex.hooksNeededAtStart()) {
    registerLoaderHooks('the program can import before its CommonJS code runs');
    return;
  }
  debug('ES module loader hooks: deferred to the first CommonJS source that may import');
  const compile = Module.prototype._compile;
  let pending = true;
  Module.prototype._compile = function tellyAutoinst(content, filename) {
    if (pending) {
      try {
        if (typeof filename === 'string' && !filename.startsWith(OWN) && esmIndex.mayImport(content)) {
          pending = false;
          // Off the prototype again unless another hook wrapped it since: later modules pass untouched.
          if (Module.prototype._compile === tellyAutoinst) Module.prototype._compile = compile;
          registerLoaderHooks(`${filename} may import`);
        }
      } catch (err) {
        debug('the ES module loader hooks could not be registered', err);
      }
    }
    return compile.apply(this, arguments);
  };
}

function activate() {
  if (globalThis[DONE]) return;
  Object.defineProperty(globalThis, DONE, { value: true });
  try {
    if (killSwitch() !== null) return;
    const discovery = require('./discovery');
    discovery.prepare();
    if (discovery.processSettings() === null) return;
    const control = require('./control');
    control.install(() => {
      const pipeline = require('./pipeline');
      pipeline.activate();
      require('./triggers').install(discovery.processSettings(), pipeline.flush);
    });
    installRequireHook(control);
    installLoaderHooks(discovery.processSettings().force_packages);
  } catch (err) {
    debug('activation failed; nothing is counted', err);
  }
}

module.exports = { activate };
