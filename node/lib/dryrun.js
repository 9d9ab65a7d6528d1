'use strict';
// --dry-run: every watched package visible from here, where its settings came from, and every
// key that would be counted. It scans afresh and loads each public entry point without any hook
// (nothing is counted or sent), then lists the selection the wrappers use at run time.

const fs = require('fs');
const path = require('path');
const { pathToFileURL } = require('url');
const packages = require('./packages');
const settings = require('./settings');
const selection = require('./selection');
const { killSwitch } = require('./_env');

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

async function keysOfEntry(file, label, pkg, project) {
  if (packages.moduleFormat(file, pkg) === 'esm') return selection.esmKeys(await import(pathToFileURL(file).href), label, project);
  return selection.cjsKeys(require(file), label, project);
}

/** The dry-run result as data: {ok, kill_switch, errors, packages: [...]}. */
async function plan(cwd = process.cwd(), { userConfig: given = null } = {}) {
  const errors = [];
  let userConfig;
  let processSettings;
  try {
    userConfig = given || settings.readUserConfig();
    processSettings = settings.processSettings(process.env, userConfig);
  } catch (err) {
    return { ok: false, kill_switch: killSwitch(), errors: [err.message], packages: [] };
  }
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
      project = require('./discovery').resolveProject(pkg, { userConfig, process: processSettings });
    } catch (err) {
      errors.push(err.message);
      continue;
    }
    const problems = [];
    const keys = [];
    const entries = [];
    let realRoot = pkg.root; // a package installed as a link has its files under the link's target
    try {
      realRoot = fs.realpathSync(pkg.root);
    } catch (_) { /* removed meanwhile */ }
    for (const [file, label] of pkg.entries) {
      entries.push({ subpath: label, file: path.relative(realRoot, file), format: packages.moduleFormat(file, pkg) });
      try {
        keys.push(...await keysOfEntry(file, label, pkg, project));
      } catch (err) {
        problems.push(`${label} (${path.relative(realRoot, file)}): cannot be loaded: ${err.name}: ${err.message}`);
      }
    }
    if (!pkg.entries.size) problems.push('no entry point found: add "exports" or "main" to package.json');
    found.push({
      package: pkg.name, version: pkg.version, project_id: project.project_id, source: project.source,
      mode: project.mode, level2: project.level2, level2_plaintext: project.level2_plaintext, endpoint: settings.collectorUrl(project, processSettings),
      entries, problems, keys: [...new Set(keys)].sort(),
    });
  }
  const missing = processSettings.force_packages.filter((n) => !names.has(n));
  if (missing.length) {
    errors.push(`forced package(s) not found: ${missing.join(', ')}; check TELLY_AUTOINST_PACKAGES or `
      + 'force_packages in the user config (package names, comma-separated)');
  }
  found.sort((a, b) => (a.package < b.package ? -1 : 1));
  return { ok: errors.length === 0, kill_switch: killSwitch(), errors, packages: found };
}

function text(result) {
  const lines = [];
  if (result.kill_switch) lines.push(`note: ${result.kill_switch} is set, so nothing is counted in this environment.`);
  if (!result.packages.length) lines.push('No watched packages.');
  for (const p of result.packages) {
    lines.push(`${p.package}  (project ${p.project_id})`);
    lines.push(`  settings from: ${p.source}`);
    lines.push(`  endpoint: ${p.endpoint || '(none: reports stay local)'}`);
    lines.push(`  entry points: ${p.entries.map((e) => `${e.subpath} = ${e.file} (${e.format})`).join(', ') || '(none)'}`);
    for (const problem of p.problems) lines.push(`  warning: ${problem}`);
    lines.push(`  would count ${p.keys.length} name(s):`);
    for (const key of p.keys) lines.push(`    ${key}`);
  }
  for (const error of result.errors) lines.push(`error: ${error}`);
  return lines.join('\n');
}

/** Handler for `npx telly-autoinst --dry-run [--json]`; exit 1 when a config is broken. */
async function cliDryRun({ json = false } = {}) {
  const result = await plan();
  return [json ? JSON.stringify(result, null, 2) : text(result), result.ok ? 0 : 1];
}

module.exports = { plan, candidates, cliDryRun };
