'use strict';
// --dry-run: every watched package visible from here, where its settings came from, every key that
// would be counted and what would not (and why). It scans afresh and loads each public entry point
// without any hook (nothing is counted or sent), then lists the selection the wrappers use at run
// time. Its JSON is the format both clients print (config/dry-run.schema.json).

const fs = require('fs');
const path = require('path');
const { pathToFileURL } = require('url');
const packages = require('./packages');
const settings = require('./settings');
const discovery = require('./discovery');
const selection = require('./selection');
const { killSwitch } = require('./_env');
const { VERSION } = require('./report');

/** Package roots visible from ``dir``: its own package, then every node_modules up to the root. */
function candidates(dir) {
  const roots = [];
  const own = packages.rootOf(dir);
  if (own !== null && !own.includes(`${path.sep}node_modules${path.sep}`)) roots.push(own);
  for (let at = dir; ; at = path.dirname(at)) {
    if (path.basename(at) !== 'node_modules') roots.push(...packages.listNodeModules(path.join(at, 'node_modules')));
    if (path.dirname(at) === at) break;
  }
  const seen = new Set();
  return roots.filter((root) => {
    let real;
    try {
      real = fs.realpathSync(root);
    } catch (_) {
      return false;
    }
    if (seen.has(real)) return false;
    seen.add(real);
    return true;
  });
}

// The JSON format's name and version, shared with the Python client (config/dry-run.schema.json,
// docs/reference/dry-run-json.md): the version is bumped when a field changes meaning or goes away.
const FORMAT = 'telly-dry-run';
const FORMAT_VERSION = 1;

// Errors loading an entry point that mean the package is not installed here: a file it names, or
// a module it needs, is missing.
const MISSING = new Set(['MODULE_NOT_FOUND', 'ERR_MODULE_NOT_FOUND']);

async function keysOfEntry(file, format, label, project, skipped) {
  if (format === 'esm') return selection.esmKeys(await import(pathToFileURL(file).href), label, project, skipped);
  return selection.cjsKeys(require(file), label, project, skipped);
}

/** cjs, esm or cjs+esm, as a report's client.engine: the module systems of a set of formats. */
function engineName(formats) {
  return formats.has('cjs') && formats.has('esm') ? 'cjs+esm' : formats.has('esm') ? 'esm' : 'cjs';
}

/**
 * The dry-run entry of one watched package: the documented fields (distribution, keys, engines,
 * not_counted...) and the Node client's own (entries, level2, level2_plaintext). ``missing`` gets
 * why the package cannot be loaded for want of a file or a module.
 */
async function distributionOf(pkg, project, processSettings, missing) {
  const problems = [];
  const engines = new Map(); // key -> Set of formats
  const skipped = new Map(); // key -> why
  const entries = [];
  let realRoot = pkg.root; // a package installed as a link has its files under the link's target
  try {
    realRoot = fs.realpathSync(pkg.root);
  } catch (_) { /* removed meanwhile */ }
  for (const [file, label] of pkg.entries) {
    const format = packages.moduleFormat(file, pkg);
    entries.push({ subpath: label, file: path.relative(realRoot, file), format });
    try {
      for (const key of await keysOfEntry(file, format, label, project, skipped)) {
        if (!engines.has(key)) engines.set(key, new Set());
        engines.get(key).add(format);
      }
    } catch (err) {
      problems.push(`${label} (${path.relative(realRoot, file)}): cannot be loaded: ${err.name}: ${err.message}`);
      if (MISSING.has(err.code)) missing.push(err.message.split('\n')[0]);
    }
  }
  if (!pkg.entries.size) {
    problems.push('no entry point found: add "exports" or "main" to package.json');
    missing.push('no entry point file exists (the files "exports" or "main" name are not there: not built yet?)');
  }
  const keys = [...engines.keys()].sort();
  const formats = new Set(entries.map((e) => e.format));
  if (!formats.size) formats.add(pkg.json.type === 'module' ? 'esm' : 'cjs'); // how Node would load its files
  for (const key of keys) skipped.delete(key); // counted through another entry point
  return {
    distribution: pkg.name, version: pkg.version, project_id: project.project_id, packages: [pkg.name],
    source: project.source, engine: engineName(formats), engine_note: null, mode: project.mode,
    endpoint: discovery.collectorUrl(project, processSettings),
    modules: [...new Set(entries.map((e) => e.subpath))], problems, keys,
    engines: Object.fromEntries(keys.map((key) => [key, engineName(engines.get(key))])),
    not_counted: [...skipped.keys()].sort().map((key) => ({ key, why: skipped.get(key) })),
    entries, level2: project.level2, level2_plaintext: project.level2_plaintext,
  };
}

/**
 * An error when ``pkg`` is the checkout ``cwd`` is in (not an installed copy) and cannot be
 * loaded for want of a file or a module: nothing of it can be listed until it is installed.
 */
function uninstalledCheckout(pkg, missing) {
  if (!missing.length) return null;
  return `${path.join(pkg.root, 'package.json')} opts ${pkg.name} in, but it is not installed here: ${missing[0]}; `
    + `run \`npm install\` (and its build, if it has one) in ${pkg.root}, then --dry-run again`;
}

/** The dry-run result as data, in the documented format: {format, format_version, ok, errors, distributions, ...}. */
async function plan(cwd = process.cwd(), { userConfig: given = null } = {}) {
  const result = { format: FORMAT, format_version: FORMAT_VERSION, client_version: VERSION, node: process.versions.node,
    ok: false, kill_switch: killSwitch(), errors: [], distributions: [] };
  const { errors } = result;
  let userConfig;
  let processSettings;
  try {
    userConfig = given || settings.readUserConfig();
    processSettings = settings.processSettings(process.env, userConfig);
  } catch (err) {
    errors.push(err.message);
    return result;
  }
  const own = packages.rootOf(cwd);
  const found = [];
  const names = new Set();
  for (const root of candidates(cwd)) {
    const pkg = packages.info(root, true);
    if (pkg === null) continue;
    names.add(pkg.name);
    const forced = processSettings.force_packages.includes(pkg.name);
    if (pkg.json.telly === undefined && !forced) continue;
    let project;
    try {
      project = discovery.resolveProject(pkg, { userConfig, process: processSettings });
    } catch (err) {
      errors.push(err.message);
      continue;
    }
    const missing = [];
    found.push(await distributionOf(pkg, project, processSettings, missing));
    if (root === own) {
      const error = uninstalledCheckout(pkg, missing);
      if (error !== null) errors.push(error);
    }
  }
  const missing = processSettings.force_packages.filter((n) => !names.has(n));
  if (missing.length) {
    errors.push(`forced package(s) not found: ${missing.join(', ')}; check TELLY_AUTOINST_PACKAGES or `
      + 'force_packages in the user config (package names, comma-separated)');
  }
  found.sort((a, b) => (a.distribution < b.distribution ? -1 : 1));
  result.distributions = found;
  result.ok = errors.length === 0;
  return result;
}

function text(result) {
  const lines = [];
  if (result.kill_switch) lines.push(`note: ${result.kill_switch} is set, so nothing is counted in this environment.`);
  if (!result.distributions.length && !result.errors.length) lines.push('No watched packages.');
  for (const d of result.distributions) {
    lines.push(`${[d.distribution, d.version].filter(Boolean).join(' ')}  (project ${d.project_id})`);
    lines.push(`  settings from: ${d.source}`);
    lines.push(`  engine: ${d.engine}`);
    lines.push(`  endpoint: ${d.endpoint || '(none: reports stay local)'}`);
    lines.push(`  entry points: ${d.entries.map((e) => `${e.subpath} = ${e.file} (${e.format})`).join(', ') || '(none)'}`);
    for (const problem of d.problems) lines.push(`  warning: ${problem}`);
    lines.push(`  would count ${d.keys.length} name(s):`);
    for (const key of d.keys) lines.push(`    ${key}${d.engines[key] !== d.engine ? `  (engine: ${d.engines[key]})` : ''}`);
    if (d.not_counted.length) {
      lines.push(`  ${d.not_counted.length} name(s) not counted, because:`);
      for (const item of d.not_counted) lines.push(`    ${item.key}: ${item.why}`);
    }
  }
  return lines.join('\n');
}

/** Handler for `npx telly-autoinst --dry-run [--json]`; exit 1 when a problem was found. */
async function cliDryRun({ json = false } = {}) {
  const result = await plan();
  // Errors go to stderr in both forms, so that CI logs show them whatever reads stdout.
  for (const error of result.errors) process.stderr.write(`telly-autoinst: error: ${error}\n`);
  return [json ? JSON.stringify(result, null, 2) : text(result), result.ok ? 0 : 1];
}

module.exports = { plan, candidates, cliDryRun };
