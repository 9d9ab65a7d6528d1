'use strict';
// Turns one project's counts into a report (config/report.schema.json, schema_version 1, the
// same wire as the Python client) and its exact bytes.

const crypto = require('crypto');
const facts = require('./facts');
const packages = require('./packages');

const SCHEMA_VERSION = 1;
const CLIENT_NAME = 'telly-autoinst-node';
const VERSION = require('../package.json').version;

function createdAt(now = new Date()) {
  return `${now.toISOString().slice(0, 19)}Z`;
}

/**
 * The report object for one project: Level I facts, its counts, and Level II hashes when allowed.
 * ``engine`` is which module systems loaded the package here: cjs, esm or cjs+esm.
 */
function build(project, stats, { trigger, exitSignal = null, saltType = 'random_uuid4', engine = 'cjs',
  interpreter = facts.interpreter(), plaintextAccepted = false } = {}) {
  let dependencies = {};
  let pkg = null;
  if (project.root) pkg = packages.info(project.root, true);
  if (pkg) dependencies = packages.dependencyVersions(pkg);
  const level2 = project.level2 ? require('./identity').level2Hashes(project.project_id, saltType) : null;
  // Plaintext Level II beside the hashes only when the author (level2_plaintext) and the user
  // (TELLY_LEVEL2_PLAINTEXT) agreed; absent otherwise, so every other report is unchanged.
  const extra = project.level2 && project.level2_plaintext && plaintextAccepted
    ? { level2_plaintext: require('./identity').level2Plaintext() } : {};
  const counts = {};
  for (const key of Object.keys(stats).sort()) if (stats[key] > 0) counts[key] = Math.trunc(stats[key]);
  return {
    schema_version: SCHEMA_VERSION,
    report_id: crypto.randomUUID().replace(/-/g, ''),
    project_id: project.project_id,
    created_at: createdAt(),
    trigger,
    exit_signal: exitSignal,
    client: { name: CLIENT_NAME, version: VERSION, engine },
    interpreter: Object.assign({}, interpreter),
    platform: Object.assign({}, facts.platformFacts()),
    package: { name: (project.name || 'unknown').slice(0, 128), version: project.version ? project.version.slice(0, 64) : null },
    packages: dependencies,
    stats: counts,
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

module.exports = { build, encode, VERSION };
