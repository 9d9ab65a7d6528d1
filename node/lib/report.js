'use strict';
// Turns one project's counts into a report (config/report.schema.json, schema_version 1, the
// same wire as the Python client) and its exact bytes, from what the counting process captured
// (``pipeline.capture``: its counts, how it was started, its settings' answers): this module adds
// what any process of this user on this machine can read (platform facts, dependency versions,
// Level II hashes). By default the detached sender does that, off the program's exit path.

const facts = require('./facts');
const packages = require('./packages');

const SCHEMA_VERSION = 1;
const CLIENT_NAME = 'telly-autoinst-node';
const VERSION = require('../package.json').version;

const isText = (value) => typeof value === 'string';
const isCount = (value) => Number.isSafeInteger(value) && value > 0;

/**
 * The report object from ``pipeline.capture``'s data: Level I facts, the counts, and Level II hashes when
 * allowed. A captured value read back from the spool is data: one of the wrong shape is a
 * TypeError (the sender records the entry as lost), never a report of another shape.
 */
function fromCaptured(captured) {
  const c = captured;
  if (!c || typeof c !== 'object' || !/^[0-9a-f]{32}$/.test(c.report_id) || !isText(c.project_id)
    || !isText(c.created_at) || !isText(c.trigger) || !isText(c.engine) || !isText(c.salt_type)
    || !c.interpreter || typeof c.interpreter !== 'object' || !c.stats || typeof c.stats !== 'object'
    || !Object.values(c.stats).every(isCount) || ![c.name, c.version, c.root].every((v) => v === null || isText(v))) {
    throw new TypeError('a captured report of another shape');
  }
  const pkg = c.root ? packages.info(c.root, true) : null;
  const level2 = c.level2 === true ? require('./identity').level2Hashes(c.project_id, c.salt_type) : null;
  const extra = c.level2 === true && c.level2_plaintext === true
    ? { level2_plaintext: require('./identity').level2Plaintext() } : {};
  return {
    schema_version: SCHEMA_VERSION,
    report_id: c.report_id,
    project_id: c.project_id,
    created_at: c.created_at,
    trigger: c.trigger,
    exit_signal: Number.isSafeInteger(c.exit_signal) ? c.exit_signal : null,
    client: { name: CLIENT_NAME, version: VERSION, engine: c.engine },
    interpreter: Object.assign({}, c.interpreter),
    platform: Object.assign({}, facts.platformFacts()),
    package: { name: (c.name || 'unknown').slice(0, 128), version: c.version ? c.version.slice(0, 64) : null },
    packages: pkg ? packages.dependencyVersions(pkg) : {},
    stats: Object.assign({}, c.stats),
    level2,
    ...extra,
  };
}


function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    const out = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys(value[key]);
    return out;
  }
  return value;
}

/**
 * The exact bytes sent and shown by TELLY_SHOW_ME, identical to the Python client's
 * json.dumps(report, indent=2, sort_keys=True, ensure_ascii=True) + "\n": sorted keys (by code
 * unit, which equals Python's order for the ASCII keys of a report), and every character outside
 * printable ASCII escaped as \uXXXX.
 */
function encode(report) {
  const text = JSON.stringify(sortKeys(report), null, 2)
    .replace(/[\u007f-\uffff]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return Buffer.from(`${text}\n`, 'ascii');
}

module.exports = { fromCaptured, encode, VERSION };
