'use strict';
// Whether a package is watched, and its settings: a valid "telly" field in its package.json, or
// its name in TELLY_AUTOINST_PACKAGES / force_packages (project id "local:NAME"). Used by the
// require hook and the loader thread alike; a malformed field means "not watched" at run time
// (--dry-run reports it), exactly as the Python client treats a malformed [tool.telly].

const settings = require('./settings');
const { FORCED_SOURCE } = require('./_contract');
const { debug } = require('./_env');

let context = null; // {userConfig, process} read once per thread
const projects = new Map(); // package root -> settings or null

function readContext() {
  if (context === null) {
    let userConfig = {};
    try {
      userConfig = settings.readUserConfig();
    } catch (err) {
      debug('the user config file is not readable; using defaults', err);
    }
    let processSettings;
    try {
      processSettings = settings.processSettings(process.env, userConfig);
    } catch (err) {
      debug('a process setting is malformed; nothing is counted', err);
      processSettings = null;
    }
    context = { userConfig, process: processSettings };
    if (processSettings) require('./packages').setForced(processSettings.force_packages);
  }
  return context;
}

/** "local:NAME" for a forced package; a scoped name's "@" and "/" become "" and "." (project ids allow neither). */
function forcedProjectId(name) {
  return `local:${name.replace(/^@/, '').replace(/\//g, '.')}`;
}

/** The project settings of a package ({root, name, json, ...} from packages.js), or throw ConfigError. */
function resolveProject(pkg, ctx = readContext()) {
  const table = pkg.json.telly;
  const source = `${pkg.name} (package.json "telly")`;
  const options = { name: pkg.name, version: pkg.version, root: pkg.root, userConfig: ctx.userConfig };
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
  if (ctx.process !== null) {
    try {
      project = resolveProject(pkg, ctx);
    } catch (err) {
      debug(`${pkg.name}: its telly settings are malformed, so it is not counted`, err);
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

module.exports = { projectOf, resolveProject, processSettings, prepare, forcedProjectId };
