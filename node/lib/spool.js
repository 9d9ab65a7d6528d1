'use strict';
// The on-disk queue of reports waiting for a sender: the same directory and file format as the
// Python client's spool (telly_autoinst/spool.py), so either client's sender can drain it.
// One file per report: a JSON header line ({"url", "project_id", "attempts", "not_before"}), then
// the report bytes exactly as built. Names start with the zero-padded creation time in ns, so
// sorting names sorts oldest first. The caps (files, bytes, age; oldest dropped first) and the
// names are the shared contract's.
// A host queues its counts, not yet a report: a Python host as ``*.counts`` entries (see spool.py),
// which only the Python sender builds and drains; a Node host as ``*.node-counts`` entries (one
// JSON object: {"url", "project_id", "optin", "captured"}, ``pipeline.capture``'s data), which only
// the Node sender reads, turning each into the ``*.report`` of the same name stem before it sends.

const fs = require('fs');
const path = require('path');
const { cacheDir, debug } = require('./_env');
const { readRegular, secureDir, writeAtomic } = require('./_files');
const {
  FILE_REPORT_SUFFIX: SUFFIX, FILE_COUNTS_SUFFIX, FILE_SPOOL_LOCK, FILE_NODE_SPOOL_LOCK, FILE_SPOOL_STAMP, LOCK_STALE_SUFFIX,
  FILE_NODE_SPOOL_STAMP, FILE_NODE_COUNTS_SUFFIX: COUNTS, FILE_SPOOL_DIR,
  FILE_LOSS_LOG: LOSS_LOG, SPOOL_MAX_FILES: MAX_FILES, SPOOL_MAX_BYTES: MAX_BYTES, SPOOL_MAX_AGE_SEC: MAX_AGE_SEC,
} = require('./_contract');

/** TELLY_SPOOL_DIR, else "spool" under the shared cache directory; null without a home. */
function defaultDir(spoolDir = null) {
  if (spoolDir) return spoolDir;
  const base = cacheDir();
  return base === null ? null : path.join(base, FILE_SPOOL_DIR);
}

// Wall-clock nanoseconds, as Python's time.time_ns(): the wall clock read once, then advanced by
// the monotonic clock, so that two reports queued within one millisecond keep their order.
const WALL_AT_LOAD = BigInt(Date.now()) * 1000000n;
const MONO_AT_LOAD = process.hrtime.bigint();

function nowNs() {
  return WALL_AT_LOAD + (process.hrtime.bigint() - MONO_AT_LOAD);
}

/** The header line exactly as Python's json.dumps writes it, so the two clients' files look alike. */
function headerBytes(header) {
  return Buffer.from(`{${Object.entries(header).map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(', ')}}\n`);
}

/** A new entry's name without its suffix: the creation time (sorting names sorts oldest first), then the report id. */
function newStem(reportId) {
  return `${nowNs().toString().padStart(20, '0')}-${reportId}`;
}

function secured(directory) {
  const refused = secureDir(directory);
  if (refused !== null) throw Object.assign(new Error(refused), { code: 'EREFUSED' });
}

/**
 * Store one report for the sender; returns the entry's name. The caps are the senders' to enforce
 * (each does as it takes the spool). ``optin``: the project sends only to users listed in
 * ~/.telly_optin, which either client's sender checks again before sending (the header's "optin":
 * true). ``stem``: the name without its suffix, for a report built from a counts entry.
 */
function enqueue(directory, url, projectId, body, reportId, optin = false, stem = null) {
  secured(directory);
  const name = `${stem || newStem(reportId)}${SUFFIX}`;
  const header = { url, project_id: projectId, attempts: 0, not_before: 0 };
  if (optin) header.optin = true;
  writeAtomic(path.join(directory, name), Buffer.concat([headerBytes(header), body]));
  return name;
}

// What either client writes into a spool directory besides its entries (for purge): both hosts'
// counts entries, the losses log, both senders' locks and start stamps, and temporary
// and set-aside lock files.
const SENDER_LOCK = FILE_NODE_SPOOL_LOCK;
const SENDER_STAMP = FILE_NODE_SPOOL_STAMP;
const OWNED_SUFFIXES = [SUFFIX, FILE_COUNTS_SUFFIX, COUNTS, '.tmp', LOCK_STALE_SUFFIX];
const OWNED_NAMES = [LOSS_LOG, FILE_SPOOL_LOCK, FILE_SPOOL_STAMP, SENDER_LOCK, SENDER_STAMP];

/** Record that a Node sender takes the spool now: the stamp's mtime, which senderRanWithin reads. */
function stampSender(directory) {
  const file = path.join(directory, SENDER_STAMP);
  const { O_WRONLY, O_CREAT, O_NOFOLLOW = 0, O_NONBLOCK = 0 } = fs.constants;
  try {
    const fd = fs.openSync(file, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK, 0o600);
    try {
      const now = new Date();
      fs.futimesSync(fd, now, now);
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    debug(`stamping ${file}`, err); // at worst the next host starts a sender of its own
  }
}

/**
 * Whether a Node sender took the spool less than ``seconds`` ago (one stat of its stamp). A stamp
 * in the future (the clock was set back) counts as old, so it never silences the senders for
 * longer than ``seconds``.
 */
function senderRanWithin(directory, seconds) {
  try {
    const age = Date.now() / 1000 - fs.statSync(path.join(directory, SENDER_STAMP)).mtimeMs / 1000;
    return age >= 0 && age < seconds;
  } catch (_) {
    return false;
  }
}

/** Whether a file name in a spool directory is one the clients write there. */
function owns(name) {
  return OWNED_SUFFIXES.some((suffix) => name.endsWith(suffix)) || OWNED_NAMES.includes(name);
}

/** Names in ``directory`` that end with ``suffix``, oldest first. */
function named(directory, suffix) {
  try {
    return fs.readdirSync(directory).filter((n) => n.endsWith(suffix)).sort();
  } catch (_) {
    return [];
  }
}

/** Names of queued reports, oldest first. */
function entries(directory) {
  return named(directory, SUFFIX);
}

/** [header, body] of one queued report (a regular file within the cap); throws when it is gone or corrupt. */
function read(directory, name) {
  const raw = readRegular(path.join(directory, name), MAX_BYTES, { nofollow: true });
  const at = raw.indexOf(10);
  if (at < 0) throw new SyntaxError('no header line');
  return [JSON.parse(raw.subarray(0, at).toString('utf8')), raw.subarray(at + 1)];
}

/** Store one project's counts (``pipeline.capture``'s data) for the Node sender to build the report from. */
function enqueueCounts(directory, url, projectId, captured, optin = false) {
  secured(directory);
  const name = `${newStem(captured.report_id)}${COUNTS}`;
  writeAtomic(path.join(directory, name), Buffer.from(JSON.stringify({ url, project_id: projectId, optin, captured })));
  return name;
}

/** Names of queued Node counts entries, oldest first. */
function countsEntries(directory) {
  return named(directory, COUNTS);
}

/** One queued counts entry, as stored; throws when it is gone, not a regular file, or not JSON. */
function readCounts(directory, name) {
  return JSON.parse(readRegular(path.join(directory, name), MAX_BYTES, { nofollow: true }).toString('utf8'));
}

/** The report name a counts entry becomes (its stem kept, so the queue keeps its order). */
function stemOf(name) {
  return name.slice(0, -COUNTS.length);
}

/** Replace a queued report's header (attempts, not_before) keeping its body. */
function rewrite(directory, name, header, body) {
  writeAtomic(path.join(directory, name), Buffer.concat([headerBytes(header), body]));
}

function projectOf(directory, name) {
  try {
    return read(directory, name)[0].project_id || null;
  } catch (_) {
    return null;
  }
}

/** Drop the oldest reports until count, bytes and age are within the caps; returns what was dropped. */
function enforceCaps(directory, now = Date.now() / 1000) {
  const dropped = [];
  const sized = [];
  for (const name of entries(directory)) {
    try {
      sized.push([name, fs.lstatSync(path.join(directory, name)).size]);
    } catch (_) { /* taken by a sender meanwhile */ }
  }
  let total = sized.reduce((sum, [, size]) => sum + size, 0);
  let count = sized.length;
  for (const [name, size] of sized) {
    const created = Number(name.split('-', 1)[0]) / 1e9 || 0;
    let reason = null;
    if (now - created > MAX_AGE_SEC) reason = 'spool-too-old';
    else if (count > MAX_FILES) reason = 'spool-full-count';
    else if (total > MAX_BYTES) reason = 'spool-full-bytes';
    if (reason === null) continue;
    const projectId = projectOf(directory, name);
    try {
      fs.unlinkSync(path.join(directory, name));
    } catch (_) {
      continue;
    }
    count -= 1;
    total -= size;
    dropped.push([name, projectId, reason]);
  }
  return dropped;
}

module.exports = {
  LOSS_LOG, SENDER_LOCK, defaultDir, owns, enqueue, enqueueCounts, entries, countsEntries, readCounts, stemOf, read, rewrite,
  enforceCaps, stampSender, senderRanWithin,
};
