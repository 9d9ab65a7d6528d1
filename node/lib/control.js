'use strict';
// What happens to a watched package once one of its entry points has loaded: its project, the
// consent decision (once per project and thread), and which module systems loaded it. Also the
// runtime object the ES module facades find on globalThis.

const { fileURLToPath } = require('url');
const packages = require('./packages');
const discovery = require('./discovery');
const { reportKey } = require('./counters');
const { debug } = require('./_env');

const RUNTIME = Symbol.for('telly-autoinst');
const allowed = new Map(); // project id -> boolean
const engines = new Map(); // counters.reportKey(package) -> Set of 'cjs' | 'esm'
let onFirstProject = null;

/** The project of ``pkg`` if it is watched and may be counted here, else null; shows the notice when due. */
function projectFor(pkg, engine) {
  const project = discovery.projectOf(pkg);
  if (project === null) return null;
  const id = project.project_id;
  if (!allowed.has(id)) {
    let decision = false;
    try {
      decision = require('./consent').decide(project, discovery.processSettings()).send;
    } catch (err) {
      debug(`consent for ${id} could not be decided; not counting`, err);
    }
    allowed.set(id, decision);
    if (decision) {
      if (onFirstProject !== null) {
        const first = onFirstProject;
        onFirstProject = null;
        first();
      }
    }
  }
  if (!allowed.get(id)) return null;
  const key = reportKey(project);
  if (!engines.has(key)) engines.set(key, new Set());
  engines.get(key).add(engine);
  return project;
}

/** The require hook's step after a module ran: its module.exports, counted if it is a watched entry point. */
function cjsLoaded(module, filename) {
  const pkg = packages.packageOfFile(filename);
  if (pkg === null) return;
  const label = pkg.entries.get(filename);
  if (label === undefined) return;
  const project = projectFor(pkg, 'cjs');
  if (project !== null) module.exports = require('./wrap').cjsExports(module.exports, label, project);
}

/** For a facade (lib/hooks.mjs): a function (name, value) -> what importers get, for one entry URL. */
function esm(url) {
  try {
    const file = fileURLToPath(url);
    const pkg = packages.packageOfFile(file);
    const label = pkg && pkg.entries.get(file);
    const project = label && projectFor(pkg, 'esm');
    if (project) {
      const { exported } = require('./wrap');
      return (name, value) => {
        try {
          return exported(value, name, label, project);
        } catch (err) {
          debug(`not counting ${label}.${name}`, err); // importers get the original, as without us
          return value;
        }
      };
    }
  } catch (err) {
    debug(`not counting ${url}`, err);
  }
  return (name, value) => value;
}

/** Retry a facade's bindings that were in their temporal dead zone (an import cycle), a bounded number of times. */
function retry(fill, attempt = 0) {
  const again = () => {
    try {
      if (fill() && attempt < 20) retry(fill, attempt + 1);
    } catch (err) {
      debug('a facade binding could not be filled', err);
    }
  };
  if (attempt < 10) queueMicrotask(again);
  else setTimeout(again, 10 * attempt).unref();
}

/** The report's client.engine for a package's project settings: which module systems loaded it. */
function engineOf(project) {
  const seen = engines.get(reportKey(project)) || new Set();
  if (seen.has('cjs') && seen.has('esm')) return 'cjs+esm';
  return seen.has('esm') ? 'esm' : 'cjs';
}

/** Install the runtime on globalThis; ``first`` runs once the first project is counted (the triggers). */
function install(first) {
  onFirstProject = first;
  Object.defineProperty(globalThis, RUNTIME, { value: Object.freeze({ esm, retry }), configurable: true });
}

module.exports = { install, projectFor, cjsLoaded, engineOf };
