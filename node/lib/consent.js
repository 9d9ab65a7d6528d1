'use strict';
// Who agreed to what: kill switches, the per-project opt-in/opt-out lists, CI, and the first-run
// notice. The same files and the same order as telly_autoinst/consent.py, first match wins:
//   1. a kill switch (TELLY_DISABLE, DO_NOT_TRACK, ~/.telly_disable): off, silently;
//   2. the project is in ~/.telly_optout: off;
//   3. opt-in mode (TELLY_OPTIN, or the project's "mode": "optin"): on only if in ~/.telly_optin;
//   4. a CI run and the project's send_from_ci = false: off;
//   5. opt-out mode on a TTY: on only once the first-run notice was shown (and recorded in
//      ~/.telly_notices, shared with the Python client) for this user and project.
// The lists hold one project id per line, compared without regard to case.

const fs = require('fs');
const path = require('path');
const { homeDir, killSwitch, debug } = require('./_env');
const { ciVendor } = require('./facts');
const { readText, writeAtomic, withLock } = require('./_files');

const OPTIN_FILE = '.telly_optin';
const OPTOUT_FILE = '.telly_optout';
const NOTICES_FILE = '.telly_notices';
const DISABLE_FILE = '.telly_disable';
// The Python client flocks .telly_consent.lock; Node cannot flock, so it has a lock of its own.
// Edits from both clients at the same instant can lose one of them; neither can tear a file.
const LOCK_FILE = '.telly_consent.node.lock';
const PYTHON_LOCK_FILE = '.telly_consent.lock'; // for purge: the Python client's lock of the same lists
const LIST_MAX = 1 << 20;

const NOTICE = (projectId) =>
  `telly-autoinst: ${projectId} collects anonymous usage statistics (call counts, Node and OS\n`
  + 'versions; hashed ids). Nothing else, never argument values. To see what is sent: TELLY_SHOW_ME=1.\n'
  + `Opt out: npx telly-autoinst optout ${projectId}  (or everything: npx telly-autoinst disable)\n`;

function file(name) {
  const home = homeDir();
  return home === null ? null : path.join(home, name);
}

/** The ids in one list file; a missing or unreadable file is an empty list. */
function readIds(name) {
  const where = file(name);
  if (where === null) return [];
  let text;
  try {
    // Never blocks (a FIFO there is not a regular file) and never reads past the cap.
    text = readText(where, LIST_MAX, { owned: true });
  } catch (err) {
    if (err.code !== 'ENOENT' && err.code !== 'ENOTDIR') debug(`reading ${where} (treated as an empty list)`, err);
    return [];
  }
  return text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
}

const fold = (id) => id.toLowerCase();

function listed(name, projectId) {
  const wanted = fold(projectId);
  return readIds(name).some((entry) => fold(entry) === wanted);
}

/** Add and remove ids in one list file under the lock; returns true if the file changed. */
function edit(name, add = [], remove = []) {
  const home = homeDir();
  if (home === null) throw new Error('no home directory: cannot record the choice');
  return withLock(path.join(home, LOCK_FILE), () => {
    const current = readIds(name);
    const removing = new Set(remove.map(fold));
    const updated = current.filter((entry) => !removing.has(fold(entry)));
    for (const id of add) if (!updated.some((entry) => fold(entry) === fold(id))) updated.push(id);
    if (updated.length === current.length && updated.every((e, i) => e === current[i])) return false;
    writeAtomic(path.join(home, name), updated.map((e) => `${e}\n`).join(''), true);
    return true;
  });
}

function interactive() {
  try {
    return Boolean(process.stderr && process.stderr.isTTY);
  } catch (_) {
    return false;
  }
}

/** Show the first-run notice once per user and project; true once it has been shown and recorded. */
function notice(projectId) {
  if (listed(NOTICES_FILE, projectId)) return true;
  try {
    // Record first: if it cannot be recorded it would be shown on every run, so stay quiet and send nothing.
    edit(NOTICES_FILE, [projectId]);
  } catch (_) {
    return false;
  }
  try {
    fs.writeSync(2, NOTICE(projectId));
  } catch (_) { /* stderr closed */ }
  return true;
}

/** {send, reason} for one project in this process (see the order above). */
function decide(project, processSettings, { env = process.env, showNotice = true } = {}) {
  const verdict = (send, reason) => ({ send, reason });
  const sw = killSwitch(env);
  if (sw) return verdict(false, `disabled by ${sw}`);
  const id = project.project_id;
  if (listed(OPTOUT_FILE, id)) return verdict(false, 'opted out (~/.telly_optout)');
  if (processSettings.optin_only || project.mode === 'optin') {
    const why = processSettings.optin_only ? 'TELLY_OPTIN' : 'the project\'s mode = "optin"';
    if (!listed(OPTIN_FILE, id)) return verdict(false, `opt-in mode (${why}) and not opted in`);
    return verdict(true, 'opted in (~/.telly_optin)');
  }
  const [isCi, vendor] = ciVendor(env);
  if (isCi && !project.send_from_ci) return verdict(false, `CI run (${vendor || 'generic'}) and send_from_ci = false`);
  if (isCi || !interactive()) return verdict(true, 'opt-out mode, not opted out');
  if (!showNotice) {
    if (listed(NOTICES_FILE, id)) return verdict(true, 'opt-out mode, notice shown');
    return verdict(false, 'opt-out mode, first-run notice not shown yet');
  }
  if (notice(id)) return verdict(true, 'opt-out mode, notice shown');
  return verdict(false, 'opt-out mode, first-run notice cannot be recorded (home not writable)');
}

/**
 * Why a report queued earlier must not leave now, or null when it may: the sender asks for each
 * queued report, because the user may have said no since (a kill switch, ~/.telly_optout, or for
 * opt-in projects a missing ~/.telly_optin entry). The Python sender asks the same.
 */
function refusalAtSend(projectId, optinRequired, processSettings, env = process.env) {
  const sw = killSwitch(env);
  if (sw) return `disabled by ${sw}`;
  if (!projectId) return null;
  if (listed(OPTOUT_FILE, projectId)) return 'opted out (~/.telly_optout)';
  if ((optinRequired || (processSettings && processSettings.optin_only)) && !listed(OPTIN_FILE, projectId)) {
    return 'opt-in mode and not opted in (~/.telly_optin)';
  }
  return null;
}

module.exports = {
  decide, refusalAtSend, edit, readIds, listed, file, NOTICE, OPTIN_FILE, OPTOUT_FILE, NOTICES_FILE, DISABLE_FILE, LOCK_FILE,
  PYTHON_LOCK_FILE,
};
