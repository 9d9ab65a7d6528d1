'use strict';
// Level II is the Python client's: the same salt file, key derivation and HMAC, checked against
// values that the Python client computes in this test.

const test = require('node:test');
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { tmpdir, cleanEnv, node, runPython, NODE_DIR } = require('./support');
const identity = require('../lib/identity');

const VECTORS = [
  ['0b0d1f3e-8c2a-4f61-9d0b-2e1c4a5b6c7d', 'us-1f0030fd91bcc0cf9a0fa9a5', { user: 'alice', home: '/home/alice', machine: 'abc123', host: 'laptop' }],
  ['salt', 'eu-x', { user: 'b\u00f6b', home: '/h\u00e9/\u2603', machine: null, host: 'h' }],
  ['x'.repeat(100), 'local:demo', { user: '', home: 'C:\\Users\\z', machine: '1', host: 'a.b.c' }],
];

test('hashes equal the Python client\'s for the same salt, project and values', () => {
  const expected = JSON.parse(runPython(`
import json, sys
from telly_autoinst.identity import _project_key, _hmac_sha256
out = []
for salt, project, values in json.load(sys.stdin):
    key = _project_key(salt, project)
    out.append({k: (_hmac_sha256(key, v.encode("utf-8")).hexdigest() if v is not None else None) for k, v in values.items()})
print(json.dumps(out))
`, { input: JSON.stringify(VECTORS) }));
  VECTORS.forEach(([salt, project, values], i) => {
    assert.deepStrictEqual(identity.hashValues(salt, project, values), expected[i]);
  });
});

test('one user is one user in both clients: the salt file is shared, whichever client writes it', () => {
  for (const first of ['node', 'python']) {
    const home = tmpdir('salt');
    const env = cleanEnv(home, { USER: 'carol', LOGNAME: 'carol' });
    const nodeHashes = () => JSON.parse(node(['-e',
      `process.stdout.write(JSON.stringify(require(${JSON.stringify(path.join(NODE_DIR, 'lib', 'identity.js'))}).level2Hashes('p-1')))`],
    { env }).stdout);
    const pythonHashes = () => JSON.parse(runPython(
      'import json; from telly_autoinst.identity import level2_hashes; print(json.dumps(level2_hashes("p-1")))', { env }));
    const a = first === 'node' ? nodeHashes() : pythonHashes();
    const b = first === 'node' ? pythonHashes() : nodeHashes();
    assert.deepStrictEqual(a, b, `salt first written by ${first}`);
    assert.match(a.user, /^[0-9a-f]{64}$/);
    const salt = path.join(home, '.telly_salt');
    assert.strictEqual(fs.statSync(salt).mode & 0o777, 0o600);
    assert.match(fs.readFileSync(salt, 'utf8'), /^[0-9a-f-]{36}$/);
  }
});

test('two projects see unrelated values for the same user', () => {
  const a = identity.hashValues('s', 'p1', { user: 'u' });
  const b = identity.hashValues('s', 'p2', { user: 'u' });
  assert.notStrictEqual(a.user, b.user);
});
