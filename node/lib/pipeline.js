'use strict';
// Flush: one report per package with counts (two packages that share a project id get one each),
// consent checked again, shown if asked, handed to the transport. Synchronous from start to end,
// so it can run inside process.on('exit').

const fs = require('fs');
const counters = require('./counters');
const control = require('./control');
const discovery = require('./discovery');
const { debug } = require('./_env');
const { uuid4Hex } = require('./_files');

let interpreter = null; // captured at activation, while process.argv is still the program's
let flushing = false;

function activate() {
  interpreter = require('./facts').interpreter();
}

function createdAt(now = new Date()) {
  return `${now.toISOString().slice(0, 19)}Z`;
}

/**
 * What the report of one project's ``stats`` needs from this process, as plain JSON data: what
 * only the counting process knows (its counts, how it was started, its settings' answers).
 * ``report.fromCaptured`` adds the rest, by default in the detached sender (the exit queues this
 * in the spool). ``engine`` is which module systems loaded the package here: cjs, esm or cjs+esm.
 */
function capture(project, stats, { trigger, exitSignal = null, saltType = 'random_uuid4', engine = 'cjs',
  interpreter: started = interpreter || require('./facts').interpreter(), plaintextAccepted = false } = {}) {
  const counts = {};
  for (const key of Object.keys(stats).sort()) if (stats[key] > 0) counts[key] = Math.trunc(stats[key]);
  return {
    report_id: uuid4Hex(),
    project_id: project.project_id,
    created_at: createdAt(),
    trigger,
    exit_signal: exitSignal,
    engine,
    interpreter: Object.assign({}, started),
    name: project.name || null,
    version: project.version || null,
    root: project.root || null,
    level2: Boolean(project.level2),
    salt_type: saltType,
    // Plaintext Level II beside the hashes only when the author (level2_plaintext) and the user
    // (TELLY_LEVEL2_PLAINTEXT) agreed; absent otherwise, so every other report is unchanged.
    level2_plaintext: Boolean(project.level2 && project.level2_plaintext && plaintextAccepted),
    stats: counts,
  };
}

/** TELLY_SHOW_ME: the exact bytes that are sent, on stderr (stdout belongs to the program). */
function show(body) {
  try {
    fs.writeSync(2, body);
  } catch (_) { /* stderr closed */ }
}

/**
 * Send (or hand off) every project's counts now; returns how many reports were handed over.
 * Never throws: a failure is recorded as a loss and, with TELLY_DEBUG=1, printed to stderr.
 */
function flush(trigger = 'manual', exitSignal = null) {
  if (flushing) return 0; // a signal landing inside our own flush: the flush in progress covers it
  flushing = true;
  try {
    return flushAll(trigger, exitSignal);
  } catch (err) {
    debug('flush failed', err);
    return 0;
  } finally {
    flushing = false;
  }
}

function flushAll(trigger, exitSignal) {
  const { decide } = require('./consent');
  const { makeTransport, handOff, recordLoss } = require('./transport');
  const spool = require('./spool');
  const processSettings = discovery.processSettings();
  // The default (http_async, not SHOW_ME): the detached sender builds the report from what this
  // process captured, off the program's exit path; file and http storage, and SHOW_ME, build it here.
  const hand = processSettings.storage_type === 'http_async' && !processSettings.show_me;
  let transport = null;
  let handed = 0;
  for (const project of counters.pending()) {
    const projectId = project.project_id;
    const stats = counters.take(project);
    // Consent withdrawn during the run (optout, ~/.telly_disable): the counts are dropped, and
    // no "opted out" event is ever sent.
    if (!decide(project, processSettings, { showNotice: false }).send) continue;
    const captured = capture(project, stats, { trigger, exitSignal, saltType: processSettings.salt_type,
      plaintextAccepted: processSettings.accept_level2_plaintext,
      engine: control.engineOf(project) });
    const url = discovery.collectorUrl(project, processSettings);
    const optin = processSettings.optin_only || project.mode === 'optin';
    let result = null;
    let reason;
    try {
      if (hand) {
        result = handOff(spool.defaultDir(processSettings.spool_dir), url, projectId, captured, optin,
          processSettings.http_timeout);
      } else {
        const { fromCaptured, encode } = require('./report'); // built here: not on the default path
        const body = encode(fromCaptured(captured));
        if (processSettings.show_me) show(body);
        if (transport === null) transport = makeTransport(processSettings);
        result = transport.deliver(url, projectId, body, captured.report_id, optin);
      }
      reason = result.reason;
    } catch (err) { // the transport boundary: a bug there must not lose the other projects' reports
      reason = `transport-error:${err.name}`;
    }
    if (result && result.delivered) handed++;
    else if (result && result.retry && (trigger === 'manual' || trigger === 'timer')) counters.giveBack(project, stats);
    else recordLoss(reason, projectId, spool.defaultDir(processSettings.spool_dir), processSettings.debug);
  }
  return handed;
}

module.exports = { activate, flush, capture };
