'use strict';
// The detached process that drains the spool: bounded retries with backoff, Retry-After honoured,
// one Node sender per spool at a time (a lock file; telly_autoinst/sender.py's rules).
//
// It is started as a plain `node lib/sender.js DIR TIMEOUT DEADLINE` in the filesystem root, with
// no NODE_OPTIONS or NODE_PATH (so no preload of ours or the host's, and nothing of the host's
// working directory, runs in it), detached into its own process group, stdio ignored and unref'd:
// the host's exit never waits for it and a Ctrl-C in the host's terminal never reaches it.
// One wall-clock deadline bounds the whole run (every pass, request and wait); a timer ends the
// process one second after it, whatever is pending, so a slow or hostile endpoint can never keep
// it alive, or the spool locked, for longer. Its lock is judged stale only after that.
//
// The Python sender locks the spool with flock(), which Node cannot take. When both clients'
// senders drain one spool at the same moment, a report can be posted twice; the collector stores
// a report_id once, so the only cost is a duplicate request.

const fs = require('fs');
const path = require('path');
const childProcess = require('child_process');
const spool = require('./spool');
const { tryLock, secureDir } = require('./_files');
const { debug } = require('./_env');

const {
  RETRY_ATTEMPTS_PER_RUN: ATTEMPTS_PER_RUN, RETRY_MAX_ATTEMPTS: MAX_ATTEMPTS, RETRY_BACKOFF_BASE_SEC: BACKOFF_BASE_SEC,
  RETRY_MAX_WAIT_SEC: MAX_WAIT_SEC, RETRY_MAX_NOT_BEFORE_SEC: MAX_NOT_BEFORE_SEC, RETRY_RUN_DEADLINE_SEC: RUN_DEADLINE_SEC,
  RETRY_REQUEST_TIMEOUT_SEC: REQUEST_TIMEOUT_SEC, LOCK_SPOOL_STALE_AFTER_SEC,
} = require('./_contract');

// The retry policy is the shared contract's. The lock's stale limit too: longer than any sender
// can live (its deadline, then the backstop timer), so only a lock whose owner died or was
// suspended past its deadline is ever taken over.
const LOCK_STALE_MS = LOCK_SPOOL_STALE_AFTER_SEC * 1000;

const sleep = (sec) => new Promise((resolve) => setTimeout(resolve, sec * 1000));

function remove(directory, name) {
  try {
    fs.unlinkSync(path.join(directory, name));
  } catch (_) { /* drained by the other client's sender meanwhile */ }
}

/** Try one report up to ATTEMPTS_PER_RUN times; true when it left the spool. */
async function attempt(directory, name, header, body, timeout, deadline, wait = sleep) {
  const { post, recordLoss } = require('./transport');
  for (let i = 0; i < ATTEMPTS_PER_RUN; i++) {
    const result = await post(header.url, body, timeout, deadline);
    header.attempts = (header.attempts || 0) + 1;
    if (result.delivered) {
      remove(directory, name);
      return true;
    }
    if (!result.retry || header.attempts >= MAX_ATTEMPTS) {
      remove(directory, name);
      recordLoss(result.retry ? `gave-up:${result.reason}` : result.reason, header.project_id || null, directory);
      return true;
    }
    // Exponential backoff with jitter, so the senders of many users do not retry in step.
    const pause = result.retryAfter !== null ? result.retryAfter : BACKOFF_BASE_SEC * 2 ** i * (0.5 + Math.random());
    if (pause > MAX_WAIT_SEC || Date.now() / 1000 + pause > deadline || i === ATTEMPTS_PER_RUN - 1) {
      header.not_before = Date.now() / 1000 + Math.min(pause, MAX_NOT_BEFORE_SEC);
      if (fs.existsSync(path.join(directory, name))) spool.rewrite(directory, name, header, body);
      return false;
    }
    await wait(pause);
  }
  return false;
}

/**
 * Turn each queued counts entry (a host's exit, see transport.handOff) into the report it stands
 * for, under the same name stem, then remove it: the report is built here, with the facts any
 * process of this user on this machine can read, so the program's exit never pays for them. An
 * entry that cannot be read or built is removed and recorded as lost.
 */
function buildQueued(directory) {
  const { recordLoss } = require('./transport');
  const { fromCaptured, encode } = require('./report');
  for (const name of spool.countsEntries(directory)) {
    let entry;
    try {
      entry = spool.readCounts(directory, name);
    } catch (err) {
      if (err.code === 'ENOENT') continue; // taken by another Node sender meanwhile
      remove(directory, name);
      recordLoss('spool-corrupt', null, directory);
      continue;
    }
    const projectId = entry && typeof entry.project_id === 'string' ? entry.project_id : null;
    try {
      if (typeof entry.url !== 'string' || projectId === null || entry.captured.project_id !== projectId) {
        throw new TypeError('a counts entry of another shape');
      }
      const body = encode(fromCaptured(entry.captured));
      spool.enqueue(directory, entry.url, projectId, body, entry.captured.report_id, entry.optin === true,
        spool.stemOf(name));
    } catch (err) {
      debug(`building the report of ${name}`, err);
      remove(directory, name);
      recordLoss('spool-corrupt', projectId, directory);
      continue;
    }
    remove(directory, name);
  }
}

let processSettings;

/** Why this queued report must not leave now (consent changed since it was queued), or null. */
function refusal(header) {
  if (processSettings === undefined) {
    const settings = require('./settings');
    try {
      processSettings = settings.processSettings();
    } catch (_) {
      // A broken user config must not make the sender more permissive than the environment alone.
      processSettings = settings.processSettings(process.env, {});
    }
  }
  return require('./consent').refusalAtSend(header.project_id, Boolean(header.optin), processSettings);
}

/**
 * Send every due report, oldest first; resolves to [sentOrDropped, left], or [0, -1] when another
 * Node sender runs. ``deadline`` (seconds since the epoch; default RUN_DEADLINE_SEC from now):
 * nothing starts after it, and no request outlasts it.
 */
async function drain(directory, { timeout = REQUEST_TIMEOUT_SEC, deadline = Date.now() / 1000 + RUN_DEADLINE_SEC,
  wait = sleep } = {}) {
  const { recordLoss } = require('./transport');
  if (!fs.existsSync(directory)) return [0, 0];
  const refused = secureDir(directory);
  if (refused !== null) return [0, 0]; // another user's directory: none of its entries is sent or removed
  const release = tryLock(path.join(directory, spool.SENDER_LOCK), LOCK_STALE_MS);
  if (!release) return [0, -1];
  spool.stampSender(directory); // hosts exiting in the next minute leave their reports to this one
  let done = 0;
  try {
    buildQueued(directory);
    for (const [, projectId, reason] of spool.enforceCaps(directory)) recordLoss(reason, projectId, directory);
    // A down endpoint stays down for every report: stop trying a URL at its first postponement.
    const failed = new Set();
    const up = new Set();
    const postponed = [];
    for (const name of spool.entries(directory)) {
      if (Date.now() / 1000 > deadline) break;
      let header;
      let body;
      try {
        [header, body] = spool.read(directory, name);
      } catch (err) {
        if (err.code === 'ENOENT') continue;
        remove(directory, name);
        recordLoss('spool-corrupt', null, directory);
        continue;
      }
      if (refusal(header) !== null) {
        remove(directory, name);
        recordLoss('opted-out', header.project_id || null, directory);
        continue;
      }
      if (failed.has(header.url)) continue;
      if ((header.not_before || 0) > Date.now() / 1000) {
        postponed.push([name, header, body]);
        continue;
      }
      if (await attempt(directory, name, header, body, timeout, deadline, wait)) {
        done++;
        up.add(header.url);
      } else failed.add(header.url);
    }
    // The endpoint accepted a newer report, so it is back: older ones waiting out a backoff go now.
    for (const [name, header, body] of postponed) {
      if (up.has(header.url) && !failed.has(header.url) && Date.now() / 1000 < deadline) {
        if (await attempt(directory, name, header, body, timeout, deadline, wait)) done++;
        else failed.add(header.url);
      }
    }
  } finally {
    release();
  }
  return [done, spool.entries(directory).length + spool.countsEntries(directory).length];
}

// Variables of the host's Node that make a process load code (a preload, a module search path)
// or write files of their own; none of them reaches our child processes.
const HOST_ONLY = ['NODE_OPTIONS', 'NODE_PATH', 'NODE_REPL_EXTERNAL_MODULE', 'NODE_V8_COVERAGE', 'NODE_COMPILE_CACHE'];

// Where our child processes run: no directory of the host's (as the Python sender, which starts in /).
const ROOT_DIR = path.parse(__dirname).root;

/** Options of our child processes: a fixed working directory (``cwd``) and the environment without HOST_ONLY. */
function childOptions(cwd) {
  const env = Object.assign({}, process.env);
  for (const name of HOST_ONLY) delete env[name];
  return { cwd, env, windowsHide: true };
}

let child = null;

/**
 * Start a detached sender for ``directory`` unless one of ours is already draining it. The host
 * asks only when no Node sender took the spool in the last RETRY_SENDER_INTERVAL_SEC (see the
 * spool transport), so that loading this module is not every exit's cost either.
 */
function spawnDetached(directory, timeout = REQUEST_TIMEOUT_SEC) {
  if (child !== null && child.exitCode === null && child.signalCode === null) return null;
  directory = path.resolve(directory); // the sender runs elsewhere: a relative TELLY_SPOOL_DIR must still name it
  const lock = path.join(directory, spool.SENDER_LOCK);
  if (fs.existsSync(lock)) {
    const release = tryLock(lock, LOCK_STALE_MS);
    if (!release) return null; // a live sender holds it; it looks for new reports before it leaves
    release();
  }
  child = childProcess.spawn(process.execPath, [__filename, directory, String(timeout), String(RUN_DEADLINE_SEC)],
    Object.assign(childOptions(ROOT_DIR), { detached: true, stdio: 'ignore' }));
  child.on('error', () => {}); // a failed spawn leaves the report queued for the next run
  child.unref();
  return child;
}

/** Post one report from a child process, bounded by the timeout; returns an outcome. */
function postSync(url, body, timeout) {
  const { outcome } = require('./transport');
  const done = childProcess.spawnSync(process.execPath, [__filename, '--post', url, String(timeout)],
    Object.assign(childOptions(ROOT_DIR), { input: body, timeout: Math.round(timeout * 1000) + 2000 }));
  try {
    return JSON.parse(String(done.stdout));
  } catch (_) {
    return outcome(false, { retry: true, reason: done.error && done.error.code === 'ETIMEDOUT' ? 'timeout' : 'post-failed' });
  }
}

function queuedSince(directory, startedNs) {
  return [...spool.entries(directory), ...spool.countsEntries(directory)].some((name) => {
    try {
      return BigInt(name.split('-', 1)[0]) >= startedNs;
    } catch (_) {
      return false;
    }
  });
}

/** Entry point of the detached process (and of postSync's child); never prints except --post's outcome. */
async function main(argv) {
  try {
    if (argv[0] === '--post') {
      const body = fs.readFileSync(0);
      const result = await require('./transport').post(argv[1], body, Number(argv[2]) || REQUEST_TIMEOUT_SEC);
      process.stdout.write(JSON.stringify(result));
      return;
    }
    if (!argv[0] || require('./_env').killSwitch() !== null) return;
    const timeout = Number(argv[1]) || REQUEST_TIMEOUT_SEC;
    const runSec = Number(argv[2]) || RUN_DEADLINE_SEC;
    const deadline = Date.now() / 1000 + runSec;
    // The backstop: after the cooperative deadline (which leaves the spool tidy), end the process
    // whatever still waits. unref'd, so a run that finishes early exits at once.
    setTimeout(() => process.exit(0), (runSec + 1) * 1000).unref();
    for (let i = 0; i < 10; i++) {
      const started = BigInt(Date.now()) * 1000000n;
      const [, left] = await drain(argv[0], { timeout, deadline });
      // A process that queued a report while this sender held the lock did not start another
      // sender (see spawnDetached): pick its report up before leaving.
      if (left <= 0 || !queuedSince(argv[0], started) || Date.now() / 1000 > deadline) break;
    }
  } catch (err) {
    debug('the sender', err); // its stderr is ignored when detached; run by hand, TELLY_DEBUG shows it
  }
}

if (require.main === module) main(process.argv.slice(2)).then(() => process.exit(0));

module.exports = { drain, spawnDetached, postSync, childOptions };
