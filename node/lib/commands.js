'use strict';
// The handlers of the user commands (optin, optout, enable, disable, status, show, purge, notice). Each takes the
// parsed arguments and returns [text, exitCode]; lib/cli.js turns a thrown ConfigError into exit 2.

const fs = require('fs');
const consent = require('./consent');
const settings = require('./settings');
const { killSwitch, cacheDir, userConfigPath } = require('./_env');
const { createExclusive, secureDir } = require('./_files');
const { ciVendor } = require('./facts');
const { VERSION } = require('./report');

/** [text, 0]: the message, or with --json an object of it and ``data`` with sorted keys (as the Python CLI prints). */
function result(message, json, data = {}) {
  if (!json) return [message, 0];
  const all = Object.assign({ message }, data);
  return [JSON.stringify(Object.fromEntries(Object.keys(all).sort().map((k) => [k, all[k]]))), 0];
}

/**
 * The project id ``name`` stands for, or null: a watched package's project id or package name (in
 * any case), or an id already in ~/.telly_optin or ~/.telly_optout (a package uninstalled since).
 */
async function resolve(name) {
  const wanted = name.toLowerCase();
  const known = await knownProjects();
  for (const [id, found] of known) {
    if (id.toLowerCase() === wanted || (found && found.distribution && found.distribution.toLowerCase() === wanted)) return id;
  }
  return null;
}

/** Record a choice for the project ``name`` stands for; a name that stands for none is refused (exit 2). */
async function editLists(addTo, removeFrom, name, json, verb) {
  const projectId = await resolve(name);
  if (projectId === null) {
    throw new settings.ConfigError(`${JSON.stringify(name)} is neither the project id nor the package name of a watched `
      + 'package, nor a project in your lists; nothing was recorded (`npx telly-autoinst status` lists packages and '
      + 'their project ids)');
  }
  const message = projectId.toLowerCase() === name.toLowerCase() ? `${verb}: ${projectId}`
    : `${verb}: ${name} (project ${projectId})`;
  try {
    consent.edit(addTo, [projectId]);
    consent.edit(removeFrom, [], [projectId]);
  } catch (err) {
    throw new settings.ConfigError(`cannot write to your home directory (${err.message}); set HOME to a writable directory`);
  }
  return result(message, json, { project_id: projectId });
}

function optin({ project_id: name, json }) {
  return editLists(consent.OPTIN_FILE, consent.OPTOUT_FILE, name, json, 'opted in');
}

function optout({ project_id: name, json }) {
  return editLists(consent.OPTOUT_FILE, consent.OPTIN_FILE, name, json, 'opted out');
}

function disable({ json }) {
  const file = consent.file(consent.DISABLE_FILE);
  try {
    if (file === null) throw new Error('no home directory');
    // Its existence is the switch: an existing file (or link) is left as it is, a new one is 0600.
    fs.closeSync(createExclusive(file));
  } catch (err) {
    if (err.code !== 'EEXIST') throw new settings.ConfigError(`cannot create ~/.telly_disable (${err.message}); set TELLY_DISABLE=1 instead`);
  }
  return result('telly-autoinst disabled for every project (~/.telly_disable)', json);
}

function enable({ json }) {
  const file = consent.file(consent.DISABLE_FILE);
  try {
    if (file !== null) fs.rmSync(file, { force: true });
  } catch (err) {
    throw new settings.ConfigError(`cannot remove ~/.telly_disable (${err.message})`);
  }
  const still = killSwitch();
  let message = 'telly-autoinst enabled (~/.telly_disable removed)';
  if (still) message += `; still disabled by ${still} in your environment`;
  return result(message, json, { still_disabled_by: still });
}

/** Projects to list: watched packages visible from here plus those named in the lists (settings or null). */
async function knownProjects(userConfig = null) {
  const found = new Map();
  try {
    const { plan } = require('./dryrun');
    const listing = await plan(process.cwd(), { userConfig });
    for (const d of listing.distributions) found.set(d.project_id, d);
  } catch (_) { /* a malformed field is reported by --dry-run; the rest is still listed */ }
  for (const name of [consent.OPTIN_FILE, consent.OPTOUT_FILE]) {
    for (const id of consent.readIds(name)) if (!found.has(id)) found.set(id, null);
  }
  return found;
}

function projectSettingsOf(projectId, found) {
  const table = { project_id: projectId };
  if (found && found.mode) table.mode = found.mode;
  return settings.projectSettings(table, found ? found.source : '~/.telly_optin/optout', { forced: true, name: found && found.distribution });
}

/**
 * [process settings, the user config's error or null]: with a malformed config file, the
 * environment's settings, and the error naming the file, the key and the schema to check.
 */
function processForStatus() {
  try {
    return [settings.processSettings(), null];
  } catch (err) {
    if (!(err instanceof settings.ConfigError)) throw err;
    return [settings.processSettings(process.env, {}), err.message];
  }
}

async function status({ json }) {
  const [processSettings, configError] = processForStatus();
  const [isCi, vendor] = ciVendor();
  const rows = [];
  // A malformed user config: the packages are still listed, with their own settings.
  const known = await knownProjects(configError ? {} : null);
  for (const id of [...known.keys()].sort()) {
    const found = known.get(id);
    const project = projectSettingsOf(id, found);
    let decision = consent.decide(project, processSettings, { showNotice: false });
    // The hook fails closed on a malformed config: nothing is counted until it is fixed.
    if (configError && decision.send) decision = { send: false, reason: 'the user config is malformed (see above): nothing is counted' };
    const level2 = found ? found.level2 : project.level2;
    rows.push({ project_id: id, package: found ? found.distribution : null, on: decision.send, why: decision.reason, level2,
      mode: processSettings.optin_only ? 'optin' : project.mode,
      // Both client-side agreements hold: plain values go out (the collector may still drop them).
      level2_plaintext: Boolean(level2 && found && found.level2_plaintext && processSettings.accept_level2_plaintext) });
  }
  // The directories the client would refuse (another user's), with the reason: reports are lost there.
  const refused = [];
  for (const directory of [cacheDir(), require('./spool').defaultDir(processSettings.spool_dir)]) {
    const reason = directory === null ? null : secureDir(directory, { create: false });
    if (reason !== null && !refused.some((r) => r.reason === reason)) refused.push({ directory, reason });
  }
  const data = { version: VERSION, disabled_by: killSwitch(), optin_only: processSettings.optin_only, ci: isCi,
    ci_vendor: vendor, storage_type: processSettings.storage_type, refused, user_config: userConfigPath(),
    config_error: configError, projects: rows };
  if (json) return [JSON.stringify(data, null, 2), 0];
  const lines = [
    `telly-autoinst ${VERSION} (Node)`,
    `kill switch:  ${data.disabled_by || 'none (TELLY_DISABLE, DO_NOT_TRACK, ~/.telly_disable all unset)'}`,
    `mode:         ${processSettings.optin_only ? 'opt-in for every project (TELLY_OPTIN)' : 'per project'}`,
    `CI:           ${isCi ? `yes, ${vendor || 'generic'}` : 'no'}`,
    `storage:      ${processSettings.storage_type}`,
    ...refused.map((r) => `refused:      ${r.reason}`),
    `user config:  ${data.user_config || '(none: no home directory)'}`,
    ...(configError ? [`  error: ${configError}`, '  nothing is counted until it is fixed'] : []),
    '',
  ];
  if (!rows.length) lines.push('no watched project found');
  else {
    const width = Math.max(7, ...rows.map((r) => (r.package || '-').length));
    const idWidth = Math.max(7, ...rows.map((r) => r.project_id.length));
    lines.push(`${'PACKAGE'.padEnd(width)}  ${'PROJECT'.padEnd(idWidth)}  STATE  LEVEL II  WHY`);
    for (const r of rows) {
      const level2 = r.level2_plaintext ? 'plain' : r.level2 ? 'yes' : 'no';
      lines.push(`${(r.package || '-').padEnd(width)}  ${r.project_id.padEnd(idWidth)}  ${r.on ? 'on ' : 'off'}    `
        + `${level2.padEnd(10)}${r.why}`);
    }
  }
  return [lines.join('\n'), 0];
}

/**
 * What would be sent now, without sending: each watched package's envelope (a report per package,
 * so two packages that share a project id get one each), and the queued reports.
 */
async function show({ json }) {
  const spool = require('./spool');
  const { fromCaptured } = require('./report');
  const { capture } = require('./pipeline');
  const discovery = require('./discovery');
  const packages = require('./packages');
  const dryrun = require('./dryrun');
  const processSettings = settings.processSettings();
  const envelopes = [];
  const listed = (await dryrun.plan(process.cwd())).distributions
    .sort((a, b) => (a.project_id === b.project_id ? 0 : a.project_id < b.project_id ? -1 : 1)); // stable: by name within an id
  for (const found of listed) {
    const root = dryrun.candidates(process.cwd())
      .map((r) => packages.info(r, true)).find((p) => p && p.name === found.distribution);
    if (!root) continue;
    const project = discovery.resolveProject(root, { userConfig: settings.readUserConfig(), process: processSettings });
    const decision = consent.decide(project, processSettings, { showNotice: false });
    envelopes.push({ project_id: project.project_id, would_send: decision.send, why: decision.reason,
      endpoint: discovery.collectorUrl(project, processSettings), report: fromCaptured(capture(project, {}, { trigger: 'manual',
        saltType: processSettings.salt_type, plaintextAccepted: processSettings.accept_level2_plaintext })) });
  }
  let directory = spool.defaultDir(processSettings.spool_dir);
  if (directory !== null && secureDir(directory, { create: false }) !== null) directory = null; // another user's: not read
  const queued = [];
  for (const name of directory ? spool.entries(directory) : []) {
    try {
      const [header, body] = spool.read(directory, name);
      queued.push({ file: name, url: header.url, attempts: header.attempts || 0, report: JSON.parse(body) });
    } catch (_) { /* taken by a sender meanwhile */ }
  }
  if (json) return [JSON.stringify({ projects: envelopes, queued }, null, 2), 0];
  const lines = [];
  for (const e of envelopes) {
    lines.push(`# ${e.project_id}: ${e.would_send ? 'would send' : 'would NOT send'} (${e.why}) to ${e.endpoint || '(no endpoint)'}`);
    lines.push(JSON.stringify(e.report, null, 2));
  }
  lines.push(`# ${queued.length} report(s) waiting in the spool ${directory || '(none)'}`);
  for (const q of queued) {
    // The header is data from a file: JSON-quoted, so no control character of it reaches the terminal.
    lines.push(`# ${JSON.stringify(q.file)} -> ${JSON.stringify(q.url)} (attempts: ${JSON.stringify(q.attempts)})`);
    lines.push(JSON.stringify(q.report, null, 2));
  }
  return [lines.join('\n'), 0];
}

/** `purge`: remove every file the client keeps for this user; exit 2 when some stayed. */
function purge({ json }) {
  const { leftovers, remove } = require('./purge');
  let spoolDir;
  try {
    spoolDir = settings.processSettings().spool_dir;
  } catch (_) {
    spoolDir = process.env.TELLY_SPOOL_DIR || null; // a broken user config: the environment still says where
  }
  const found = leftovers(spoolDir);
  if (!found.length) return result('nothing to remove: telly-autoinst left no file behind', json, { removed: [] });
  // Say what will go before anything goes, so an interrupted purge still told the user.
  if (!json) process.stdout.write(`${['removing:', ...found.map((f) => `  ${f}`)].join('\n')}\n`);
  const failed = remove(found);
  for (const [file, error] of failed) process.stderr.write(`telly-autoinst: cannot remove ${file}: ${error}\n`);
  const stayed = new Set(failed.map(([file]) => file));
  const removed = found.filter((f) => !stayed.has(f));
  const [text] = result(`removed ${removed.length} of ${found.length}. Now uninstall (npm uninstall telly-autoinst) and `
    + 'take telly-autoinst/register out of NODE_OPTIONS and your scripts (until then it runs with its defaults again: '
    + 'your opt-outs are gone)', json, { removed, failed: [...stayed] });
  return [text, failed.length ? 2 : 0];
}

/** `notice [--package NAME] [--format md|rst|text]`: the README notice of an opted-in package, from its own field. */
function notice({ package: name = null, format = 'md', json = false }) {
  const { select, build, render } = require('./notice');
  const [chosen, project] = select(name);
  const text = render(build(chosen, project), format);
  if (json) return [JSON.stringify({ format, package: chosen, project_id: project.project_id, text }, null, 2), 0];
  return [text.replace(/\n+$/, ''), 0];
}

module.exports = { optin, optout, enable, disable, status, show, purge, notice };
