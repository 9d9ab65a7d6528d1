'use strict';
// The wire: a Node report satisfies config/report.schema.json (with the Python side's jsonschema
// too) and its bytes are exactly what the Python client's encoder makes of the same report.

const test = require('node:test');
const assert = require('assert');
const schema = require('../lib/schema');
const report = require('../lib/report');
const { capture } = require('../lib/pipeline');

const build = (project, stats, options) => report.fromCaptured(capture(project, stats, options));
const { runPython } = require('./support');

const PROJECT = { project_id: 'us-abc', name: '@scope/pkg', version: '1.0.0', level2: true, root: null };

test('a report is schema v1 by our validator and by jsonschema, and encodes byte for byte like Python', () => {
  const r = build(PROJECT, { 'b.x': 2, '@scope/pkg.f': 1, zero: 0 }, { trigger: 'signal', exitSignal: 15, engine: 'cjs+esm' });
  assert.strictEqual(schema.validate(schema.load('report.schema.json'), r), null);
  assert.deepStrictEqual(r.stats, { '@scope/pkg.f': 1, 'b.x': 2 });
  assert.strictEqual(r.client.name, 'telly-autoinst-node');
  assert.strictEqual(r.interpreter.implementation, 'node');
  r.platform.cpu_model = 'Caf\u00e9 \u2603 CPU\u007f "quoted" \\ \n'; // escapes must match too
  const bytes = report.encode(r);
  const out = runPython(`
import json, sys, jsonschema
from telly_autoinst.report import encode
from tests.support.schema import REPORT_SCHEMA
raw = sys.stdin.buffer.read()
doc = json.loads(raw)
jsonschema.validate(doc, REPORT_SCHEMA)
print("same" if encode(doc) == raw else "different")
`, { input: bytes });
  assert.strictEqual(out.trim(), 'same');
});

test('the schema validator refuses what the schema refuses', () => {
  const s = schema.load('report.schema.json');
  const good = build(PROJECT, { k: 1 }, { trigger: 'exit' });
  const bad = [
    ['client', { name: 'other', version: '1', engine: 'cjs' }],
    ['trigger', 'explode'],
    ['stats', { k: 0 }],
    ['level2', { user: 'x', home: null, machine: null, host: null }],
    ['report_id', 'A'.repeat(32)],
    ['extra', 1],
  ];
  for (const [key, value] of bad) {
    const doc = Object.assign({}, good, { [key]: value });
    assert.notStrictEqual(schema.validate(s, doc), null, key);
  }
  const telly = schema.load('telly.schema.json');
  assert.strictEqual(schema.validate(telly, { project_id: 'p', endpoints: { us: 'https://x.example' }, mode: 'optin' }), null);
  assert.match(schema.validate(telly, { project_id: 'p', endpoint: 'not a url' }), /endpoint/);
  assert.match(schema.validate(telly, { project_id: 'bad id' }), /project_id/);
  assert.match(schema.validate(telly, { include: ['*'] }), /project_id/);
  assert.match(schema.validate(telly, { project_id: 'p', level2: 'yes' }), /level2: expected boolean/);
});
