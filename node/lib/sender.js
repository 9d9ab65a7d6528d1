'use strict';
// The detached process that drains the spool: bounded retries with backoff, Retry-After honoured,
// one Node sender per spool at a time (a pid lock file; telly_autoinst/sender.py's rules).
//
// It is started as a plain `node lib/sender.js DIR TIMEOUT` with NODE_OPTIONS removed (so no hook
// of ours or the host's runs in it), detached into its own process group, stdio ignored and
// unref'd: the host's exit never waits for it and a Ctrl-C in the host's terminal never reaches it.
//
// The Python sender locks the spool with flock(), which Node cannot take. When both clients'
// senders drain one spool at the same moment, a report can be posted twice; the collector stores
// a report_id once, so the only cost is a duplicate request.

const fs = require('fs');
const path = require('path');
const childProcess = require('child_process');
const spool = require('./spool');
const { tryLock } = require('./_files');

const LOCK_NAME = '.sender-node.lock';
const ATTEMPTS_PER_RUN = 3;
const MAX_ATTEMPTS = 12;
const BACKOFF_BASE_SEC = 0.5;
const MAX_WAIT_SEC = 30;
const RUN_DEADLINE_SEC = 120;
const REQUEST_TIMEOUT_SEC = 3;

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
    const result = await post(header.url, body, timeout);
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
      header.not_before = Date.now() / 1000 + Math.min(pause, 24 * 3600);
      if (fs.existsSync(path.join(directory, name))) spool.rewrite(directory, name, header, body);
      return false;
    }
    await wait(pause);
  }
  return false;
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

/** Send every due report, oldest first; resolves to [sentOrDropped, left], or [0, -1] when another Node sender runs. */
async function drain(directory, { timeout = REQUEST_TIMEOUT_SEC, deadlineSec = RUN_DEADLINE_SEC, wait = sleep } = {}) {
  const { recordLoss } = require('./transport');
  if (!fs.existsSync(directory)) return [0, 0];
  const release = tryLock(path.join(directory, LOCK_NAME), (RUN_DEADLINE_SEC + 60) * 1000);
  if (!release) return [0, -1];
  let done = 0;
  const deadline = Date.now() / 1000 + deadlineSec;
  try {
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
  return [done, spool.entries(directory).length];
}

/** The environment for our child processes: no NODE_OPTIONS, so no preload (ours or the host's) runs there. */
function childEnv() {
  const env = Object.assign({}, process.env);
  delete env.NODE_OPTIONS;
  return env;
}

let child = null;

/** Start a detached sender for ``directory`` unless one of ours is already draining it. */
function spawnDetached(directory, timeout = REQUEST_TIMEOUT_SEC) {
  if (child !== null && child.exitCode === null && child.signalCode === null) return null;
  const lock = path.join(directory, LOCK_NAME);
  if (fs.existsSync(lock)) {
    const release = tryLock(lock, (RUN_DEADLINE_SEC + 60) * 1000);
    if (!release) return null; // a live sender holds it; it looks for new reports before it leaves
    release();
  }
  child = childProcess.spawn(process.execPath, [__filename, directory, String(timeout)], {
    detached: true, stdio: 'ignore', cwd: directory, env: childEnv(), windowsHide: true,
  });
  child.on('error', () => {}); // a failed spawn leaves the report queued for the next run
  child.unref();
  return child;
}

/** Post one report from a child process, bounded by the timeout; returns an outcome. */
function postSync(url, body, timeout) {
  const { outcome } = require('./transport');
  const done = childProcess.spawnSync(process.execPath, [__filename, '--post', url, String(timeout)], {
    input: body, env: childEnv(), timeout: Math.round(timeout * 1000) + 2000, windowsHide: true,
  });
  try {
    return JSON.parse(String(done.stdout));
  } catch (_) {
    return outcome(false, { retry: true, reason: done.error && done.error.code === 'ETIMEDOUT' ? 'timeout' : 'post-failed' });
  }
}

function queuedSince(directory, startedNs) {
  return spool.entries(directory).some((name) => {
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
    for (let i = 0; i < 10; i++) {
      const started = BigInt(Date.now()) * 1000000n;
      const [, left] = await drain(argv[0], { timeout });
      // A process that queued a report while this sender held the lock did not start another
      // sender (see spawnDetached): pick its report up before leaving.
      if (left <= 0 || !queuedSince(argv[0], started)) break;
    }
  } catch (_) { /* a sender never reports its own failures anywhere but losses.log */ }
}

if (require.main === module) main(process.argv.slice(2)).then(() => process.exit(0));

module.exports = { drain, spawnDetached, postSync };
