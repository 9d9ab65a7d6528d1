'use strict';
// Flush: one report per package with counts (two packages that share a project id get one each),
// consent checked again, shown if asked, handed to the transport. Synchronous from start to end,
// so it can run inside process.on('exit').

const fs = require('fs');
const counters = require('./counters');
const control = require('./control');
const discovery = require('./discovery');
const { debug } = require('./_env');

let interpreter = null; // captured at activation, while process.argv is still the program's
let flushing = false;

function activate() {
  interpreter = require('./facts').interpreter();
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
  const { build, encode } = require('./report');
  const { makeTransport, recordLoss } = require('./transport');
  const spool = require('./spool');
  const processSettings = discovery.processSettings();
  let transport = null;
  let handed = 0;
  for (const project of counters.pending()) {
    const projectId = project.project_id;
    const stats = counters.take(project);
    // Consent withdrawn during the run (optout, ~/.telly_disable): the counts are dropped, and
    // no "opted out" event is ever sent.
    if (!decide(project, processSettings, { showNotice: false }).send) continue;
    const report = build(project, stats, { trigger, exitSignal, saltType: processSettings.salt_type,
      plaintextAccepted: processSettings.accept_level2_plaintext,
      engine: control.engineOf(project), interpreter: interpreter || undefined });
    const body = encode(report);
    if (processSettings.show_me) show(body);
    if (transport === null) transport = makeTransport(processSettings);
    let result = null;
    let reason;
    try {
      result = transport.deliver(require('./settings').collectorUrl(project, processSettings), projectId, body,
        report.report_id, processSettings.optin_only || project.mode === 'optin');
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

module.exports = { activate, flush };
