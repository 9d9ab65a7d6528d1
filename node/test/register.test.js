'use strict';
// NODE_OPTIONS as docs/node.md gives it: it activates the client where telly-autoinst can be
// resolved, and cannot make any node fail where it cannot (outside the project, after uninstall).

const test = require('node:test');
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { NODE_DIR, REPO, tmpdir, cleanEnv, node, reports, demoApp } = require('./support');

/** The value of NODE_OPTIONS the documentation tells users to export. */
function documented() {
  const text = fs.readFileSync(path.join(REPO, 'docs', 'node.md'), 'utf8');
  const match = /^export NODE_OPTIONS="(.*)"$/m.exec(text);
  assert.ok(match, 'docs/node.md shows `export NODE_OPTIONS="..."`');
  return match[1];
}

test('the documented NODE_OPTIONS leaves node working where telly-autoinst cannot be resolved', () => {
  const options = documented();
  const nowhere = tmpdir('nowhere');
  const env = cleanEnv(tmpdir('home'), { NODE_OPTIONS: options });
  for (const args of [['-e', 'console.log(1 + 1)'], ['-p', '"ok"']]) {
    const run = node(args, { cwd: nowhere, env });
    assert.strictEqual(run.status, 0, run.stderr);
    assert.strictEqual(run.stderr, '');
  }
  // What the documentation warns against: the plain --require form stops node from starting there.
  const plain = node(['-e', '0'], { cwd: nowhere, env: cleanEnv(tmpdir('home'), { NODE_OPTIONS: '--require telly-autoinst/register' }) });
  assert.notStrictEqual(plain.status, 0);
  assert.match(plain.stderr, /Cannot find module 'telly-autoinst\/register'/);
});

test('the documented NODE_OPTIONS counts CommonJS and ES module packages where telly-autoinst is installed', () => {
  const app = demoApp({
    'app.js': "require('demo-cjs').add(1, 2);\n",
    'app.mjs': "import { hello } from 'demo-esm';\nhello('x');\n",
  });
  fs.symlinkSync(NODE_DIR, path.join(app, 'node_modules', 'telly-autoinst'), 'dir'); // as npm link leaves it
  const out = path.join(app, 'out');
  const env = cleanEnv(tmpdir('home'), { NODE_OPTIONS: documented(), TELLY_STORAGE_TYPE: 'file', TELLY_LOCAL_STORAGE_PATH: out });
  for (const script of ['app.js', 'app.mjs']) {
    const run = node([script], { cwd: app, env });
    assert.strictEqual(run.status, 0, run.stderr);
    assert.strictEqual(run.stderr, '');
  }
  assert.deepStrictEqual(reports(out).map((r) => r.stats), [{ 'demo-cjs.add': 1 }, { 'demo-esm.hello': 1 }]);
});

test('the documented NODE_OPTIONS counts an ES module package imported by a typeless .js and by import() in CommonJS', () => {
  // With an --import, Node runs the entry point with its ES module loader, which tells an ES module
  // .js without "type" by its syntax and never compiles it as CommonJS: the client reads it first.
  const app = demoApp({
    'by-syntax.js': "import { hello } from 'demo-esm';\nconsole.log(hello('x'));\n",
    'by-import.js': "require('./later.js');\n",
    'later.js': "import('demo-esm').then((m) => console.log(m.hello('y')));\n",
  });
  fs.symlinkSync(NODE_DIR, path.join(app, 'node_modules', 'telly-autoinst'), 'dir');
  const out = path.join(app, 'out');
  const env = cleanEnv(tmpdir('home'), { TELLY_STORAGE_TYPE: 'file', TELLY_LOCAL_STORAGE_PATH: out });
  for (const script of ['by-syntax.js', 'by-import.js']) {
    fs.rmSync(out, { recursive: true, force: true });
    const plain = node([script], { cwd: app, env });
    const run = node([script], { cwd: app, env: Object.assign({ NODE_OPTIONS: documented() }, env) });
    assert.strictEqual(run.status, 0, run.stderr);
    assert.deepStrictEqual([run.stdout, run.stderr], [plain.stdout, plain.stderr]);
    assert.deepStrictEqual(reports(out).map((r) => r.stats), [{ 'demo-esm.hello': 1 }], script);
  }
});
