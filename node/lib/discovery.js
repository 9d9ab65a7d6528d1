'use strict';
// Whether a package is watched, and its settings: a valid "telly" field in its package.json, or
// its name in TELLY_AUTOINST_PACKAGES / force_packages (project id "local:NAME"). Used by the
// require hook and the loader thread alike; a malformed field means "not watched" at run time
// (--dry-run reports it), exactly as the Python client treats a malformed [tool.telly].

const fs = require('fs');
const path = require('path');
const { FORCED_SOURCE, SETTINGS } = require('./_contract');
const { cacheDir, debug, noCache, userConfigPath } = require('./_env');
const { readText, writeAtomic, secureDir, keyHash } = require('./_files');

// The warm state: the settings a start reuses from an earlier one (the process settings, and the
// project settings of each watched package it met), as the client layered them then, kept while
// nothing they were made from has changed (the Python client's warm state, for settings). Layering
// them again means loading settings.js (and, with a config file or a package's "telly" field, the
// TOML parser and the schema) at every start and every first watched load.
//
// The key holds what the settings are made from: every TELLY_* variable and those that place the
// user's files (HOME, USERPROFILE, XDG_CONFIG_HOME), the stamp of the user config file (mtime, size,
// inode and ctime: a file replaced by one of the same size and mtime changes its inode or ctime),
// and the stamps of the client's own files that layer them (another version, or an edited
// checkout, decides afresh). A project's settings are kept under the exact values they were made
// from (the package's "telly" field, or its forced table, and its name, version and root), so an
// edited package.json is another entry, never a stale one. Only settings that were made without an
// error are kept: a malformed or unreadable config or field takes the full path, and says why with
// TELLY_DEBUG, at every run. Consent is not kept: it is decided at every run, from its own files.
//
// The file is the client's own, read as data: from the private cache directory, never through a
// link, and used only when it has the shape of settings. One per environment (the variables of the
// key), so programs run with other TELLY_* variables do not take turns rewriting one file.
// TELLY_NO_CACHE turns it off; purge removes it with the rest of the cache. It lives here rather
// than in a module of its own: Node takes about half a millisecond to load a file, about what the
// warm state saves at a start (docs/decisions/0027-node-warm-settings.md).

const FORMAT = 1;
const MAX_BYTES = 1 << 20;
const MAX_PROJECTS = 64; // programs seen in one environment; the oldest entries go first
// The client's files that decide what settings are made: its version, the contract's defaults,
// the layering and this file (stamped: an upgrade or an edited checkout decides afresh).
const MAKERS = [path.join(__dirname, '..', 'package.json'), path.join(__dirname, '_contract.js'),
  path.join(__dirname, 'settings.js'), __filename];
const PLACES = ['HOME', 'USERPROFILE', 'XDG_CONFIG_HOME'];
const fieldsOf = (scope, extra = []) => JSON.stringify(SETTINGS.filter((row) => row[1] === scope && row[6].includes('node'))
  .map((row) => row[0]).concat(extra).sort());
const PROCESS_FIELDS = fieldsOf('process');
const PROJECT_FIELDS = fieldsOf('project', ['name', 'root', 'source', 'version']);

let warm = null; // {file, key, process, projects: Map(signature -> settings)}, read once per thread

function stamp(file) {
  if (file === null) return '-';
  try {
    const st = fs.statSync(file);
    return `${st.mtimeMs}:${st.size}:${st.ino}:${st.ctimeMs}`;
  } catch (_) {
    return '-';
  }
}

const shaped = (value, fields) => value !== null && typeof value === 'object' && !Array.isArray(value)
  && JSON.stringify(Object.keys(value).sort()) === fields;

function readWarm(file, key) {
  const found = { process: undefined, projects: new Map() };
  let data;
  try {
    data = JSON.parse(readText(file, MAX_BYTES, { nofollow: true }));
  } catch (err) {
    if (err.code !== 'ENOENT') debug(`the warm state ${file} is not usable; deciding afresh`, err);
    return found;
  }
  if (data === null || typeof data !== 'object' || data.key !== key) return found;
  if (shaped(data.process, PROCESS_FIELDS)) found.process = Object.freeze(data.process);
  if (Array.isArray(data.projects)) {
    for (const entry of data.projects) {
      if (Array.isArray(entry) && typeof entry[0] === 'string' && shaped(entry[1], PROJECT_FIELDS)) {
        found.projects.set(entry[0], Object.freeze(entry[1]));
      }
    }
  }
  return found;
}

function warmState() {
  if (warm !== null) return warm;
  const env = process.env;
  const vars = Object.keys(env).filter((name) => name.startsWith('TELLY_') || PLACES.includes(name)).sort()
    .map((name) => [name, env[name]]);
  const key = JSON.stringify([FORMAT, MAKERS.map(stamp), stamp(userConfigPath(env)), vars]);
  let file = null;
  const base = noCache() ? null : cacheDir();
  // A cache directory another user owns could hand this one its settings: not used at all then.
  if (base !== null && secureDir(base) === null) file = path.join(base, `node-warm-${keyHash(JSON.stringify(vars))}.json`);
  warm = Object.assign({ file, key }, file === null ? { process: undefined, projects: new Map() } : readWarm(file, key));
  return warm;
}

function keep() {
  const { file, key, process: processSettings, projects } = warm;
  if (file === null) return;
  try {
    writeAtomic(file, JSON.stringify({ key, process: processSettings, projects: [...projects].slice(-MAX_PROJECTS) }));
  } catch (err) {
    debug('the warm state cannot be kept', err); // a read-only cache: settings are layered at every start
  }
}

// settings.js (and what it loads for a config file or a "telly" field) is loaded only where the
// warm state holds nothing: a start that finds its settings there never loads it.
let context = null; // {process} read once per thread
let userConfig = null; // read once per thread, only when settings are layered afresh
let userConfigUnreadable = false;
const projects = new Map(); // package root -> settings or null

function readUserConfig() {
  if (userConfig === null) {
    try {
      userConfig = require('./settings').readUserConfig();
    } catch (err) {
      debug('the user config file is not readable; using defaults', err);
      userConfig = {};
      userConfigUnreadable = true; // settings made without it are never kept
    }
  }
  return userConfig;
}

function readContext() {
  if (context === null) {
    let processSettings = warmState().process;
    if (processSettings === undefined) {
      try {
        processSettings = require('./settings').processSettings(process.env, readUserConfig());
        if (!userConfigUnreadable) {
          warm.process = processSettings;
          keep();
        }
      } catch (err) {
        debug('a process setting is malformed; nothing is counted', err);
        processSettings = null;
      }
    }
    context = { process: processSettings };
    if (processSettings) require('./packages').setForced(processSettings.force_packages);
  }
  return context;
}

/** "local:NAME" for a forced package; a scoped name's "@" and "/" become "" and "." (project ids allow neither). */
function forcedProjectId(name) {
  return `local:${name.replace(/^@/, '').replace(/\//g, '.')}`;
}

/**
 * The project settings of a package ({root, name, json, ...} from packages.js), or throw ConfigError.
 * ``ctx``: {userConfig, process}, the user's config and the process settings to layer with.
 */
function resolveProject(pkg, ctx) {
  const table = pkg.json.telly;
  const source = `${pkg.name} (package.json "telly")`;
  const options = { name: pkg.name, version: pkg.version, root: pkg.root, userConfig: ctx.userConfig };
  const settings = require('./settings');
  if (table !== undefined) return settings.projectSettings(table, source, options);
  if (ctx.process && ctx.process.force_packages.includes(pkg.name)) {
    return settings.projectSettings({ project_id: forcedProjectId(pkg.name) }, FORCED_SOURCE,
      Object.assign(options, { forced: true }));
  }
  return null;
}

/** The project settings of a watched package, or null (not watched, malformed, or process settings broken). */
function projectOf(pkg) {
  if (projects.has(pkg.root)) return projects.get(pkg.root);
  let project = null;
  const ctx = readContext();
  const table = pkg.json.telly;
  if (ctx.process !== null && (table !== undefined || ctx.process.force_packages.includes(pkg.name))) {
    // What the project's settings are made from, besides the warm state's key.
    const signature = JSON.stringify([pkg.name, pkg.version, pkg.root, table === undefined ? null : table]);
    project = warmState().projects.get(signature);
    if (project === undefined) {
      try {
        project = resolveProject(pkg, { userConfig: readUserConfig(), process: ctx.process });
        if (!userConfigUnreadable) {
          warm.projects.delete(signature); // the newest last: the oldest go first when there are too many
          warm.projects.set(signature, project);
          keep();
        }
      } catch (err) {
        project = null;
        debug(`${pkg.name}: its telly settings are malformed, so it is not counted`, err);
      }
    }
  }
  projects.set(pkg.root, project);
  return project;
}

/** Read the settings now, so forced packages are known before the first module loads. */
function prepare() {
  readContext();
}

/** This thread's process settings (null when one of them is malformed). */
function processSettings() {
  return readContext().process;
}

/** The collector base URL: TELLY_HTTP_SERVER, else `endpoint`, else the region's endpoint. */
function collectorUrl(project, process_) {
  return process_.http_server || project.endpoint || project.endpoints[project.region] || null;
}

module.exports = { projectOf, resolveProject, processSettings, prepare, forcedProjectId, collectorUrl };
