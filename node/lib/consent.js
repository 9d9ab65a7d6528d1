'use strict';
// Who agreed to what: kill switches, the per-project opt-in/opt-out lists, CI, and the first-run
// notice. The same files and the same order as telly_autoinst/consent.py, first match wins:
//   1. a kill switch (TELLY_DISABLE, DO_NOT_TRACK, ~/.telly_disable): off, silently;
//   2. the project is in ~/.telly_optout: off;
//   3. opt-in mode (TELLY_OPTIN, or the project's "mode": "optin"): on only if in ~/.telly_optin;
//   4. a CI run and the project's send_from_ci = false: off;
//   5. opt-out mode on a TTY: on only once the first-run notice was shown (and recorded in
//      ~/.telly_notices, shared with the Python client) for this user and project.
// The lists hold one project id per line, compared without regard to case. Every edit takes the
// lists' lock with the protocol both clients keep (_files.js tryLock), so edits from both lose nothing.
// File names, notice text and lock limits are the shared contract's (_contract.js).

const fs = require('fs');
const path = require('path');
const { homeDir, killSwitch, debug } = require('./_env');
const { ciVendor } = require('./facts');
const { readText, writeAtomic, withLock } = require('./_files');
const {
  FILE_OPTIN: OPTIN_FILE, FILE_OPTOUT: OPTOUT_FILE, FILE_NOTICES: NOTICES_FILE, FILE_DISABLE: DISABLE_FILE,
  FILE_LISTS_LOCK, FILE_LEGACY, LISTS_MAX_BYTES: LIST_MAX, LOCK_LISTS_STALE_AFTER_SEC, LOCK_LISTS_WAIT_SEC,
  LOCK_LISTS_WAIT_HOST_SEC,
  NOTICE_FIRST_RUN, RUNTIMES,
} = require('./_contract');

/** The contract's first-run notice with the Node client's words: it names the package and its project id. */
function firstRunNotice(name, projectId) {
  const values = Object.assign({ name: name || projectId, project_id: projectId }, RUNTIMES.node);
  return NOTICE_FIRST_RUN.replace(/\{(\w+)\}/g, (_, key) => values[key]);
}

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

/** Add and remove ids in one list file under the lock (waiting up to waitSec for it); true if the file changed. */
function edit(name, add = [], remove = [], waitSec = LOCK_LISTS_WAIT_SEC) {
  const home = homeDir();
  if (home === null) throw new Error('no home directory: cannot record the choice');
  const limits = { waitMs: waitSec * 1000, staleAfterMs: LOCK_LISTS_STALE_AFTER_SEC * 1000 };
  return withLock(path.join(home, FILE_LISTS_LOCK), () => {
    const current = readIds(name);
    const removing = new Set(remove.map(fold));
    const updated = current.filter((entry) => !removing.has(fold(entry)));
    for (const id of add) if (!updated.some((entry) => fold(entry) === fold(id))) updated.push(id);
    if (updated.length === current.length && updated.every((e, i) => e === current[i])) return false;
    writeAtomic(path.join(home, name), updated.map((e) => `${e}\n`).join(''), true);
    return true;
  }, limits);
}

function interactive() {
  try {
    // Most programs not run by hand write stderr to a pipe or a file, which one fstat tells
    // apart on POSIX (a terminal is a character device): process.stderr is a stream Node builds
    // on first use, which cost 2 to 4 ms of a watched program's first load when the program itself
    // never wrote to stderr. Windows consoles are asked the long way.
    if (process.platform !== 'win32' && !fs.fstatSync(2).isCharacterDevice()) return false;
    return Boolean(process.stderr && process.stderr.isTTY);
  } catch (_) {
    return false;
  }
}

/** Show the first-run notice once per user and project; true once it has been shown and recorded. */
function notice(project) {
  const projectId = project.project_id;
  if (listed(NOTICES_FILE, projectId)) return true;
  try {
    // Record first: if it cannot be recorded it would be shown on every run, so stay quiet and send nothing.
    edit(NOTICES_FILE, [projectId], [], LOCK_LISTS_WAIT_HOST_SEC);
  } catch (_) {
    return false;
  }
  try {
    fs.writeSync(2, firstRunNotice(project.name, projectId));
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
  if (notice(project)) return verdict(true, 'opt-out mode, notice shown');
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
  decide, refusalAtSend, edit, readIds, listed, file, firstRunNotice, OPTIN_FILE, OPTOUT_FILE, NOTICES_FILE,
  DISABLE_FILE, FILE_LISTS_LOCK, FILE_LEGACY,
};
