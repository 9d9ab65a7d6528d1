'use strict';
// Packages installed as a link (npm link, workspaces, file: dependencies): node_modules/NAME is a
// symbolic link to a directory elsewhere, and Node loads the files at their real paths.

const test = require('node:test');
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { REGISTER, REGISTER_MJS, CLI, tmpdir, cleanEnv, node, reports, writeTree } = require('./support');

function linkedApp() {
  // The link's target has a path shorter than the link itself, as a workspace package usually does.
  const elsewhere = writeTree(tmpdir('w'), {
    'esm-linked/package.json': { name: 'esm-linked', version: '1.0.0', type: 'module', exports: './index.js',
      telly: { project_id: 'esm-linked-project', endpoint: 'http://127.0.0.1:9' } },
    'esm-linked/index.js': 'export function hello(name) { return `hello ${name}`; }\n',
    'cjs-linked/package.json': { name: 'cjs-linked', version: '1.0.0', main: 'index.js',
      telly: { project_id: 'cjs-linked-project', endpoint: 'http://127.0.0.1:9' } },
    'cjs-linked/index.js': 'exports.add = (a, b) => a + b;\n',
  });
  const app = path.join(tmpdir('application-with-a-long-name'), 'deeper', 'app');
  writeTree(app, {
    'app.mjs': "import { hello } from 'esm-linked';\nimport { add } from 'cjs-linked';\nhello('x'); hello('y'); add(1, 2);\n",
    'app.js': "require('cjs-linked').add(1, 2);\n",
  });
  fs.mkdirSync(path.join(app, 'node_modules'));
  for (const name of ['esm-linked', 'cjs-linked']) fs.symlinkSync(path.join(elsewhere, name), path.join(app, 'node_modules', name), 'dir');
  const out = path.join(app, 'out');
  return { app, out, env: cleanEnv(tmpdir('home'), { TELLY_STORAGE_TYPE: 'file', TELLY_LOCAL_STORAGE_PATH: out }) };
}

test('a linked package with an ES module entry is counted, and --dry-run labels it esm', () => {
  const { app, out, env } = linkedApp();
  const run = node(['--import', REGISTER_MJS, 'app.mjs'], { cwd: app, env });
  assert.strictEqual(run.status, 0, run.stderr);
  assert.deepStrictEqual(reports(out).map((r) => [r.project_id, r.stats, r.client.engine]), [
    ['cjs-linked-project', { 'cjs-linked.add': 1 }, 'cjs'],
    ['esm-linked-project', { 'esm-linked.hello': 2 }, 'esm'],
  ]);
  const dry = node([CLI, '--dry-run', '--json'], { cwd: app, env });
  assert.strictEqual(dry.status, 0, dry.stderr);
  const entries = Object.fromEntries(JSON.parse(dry.stdout).distributions.map((d) => [d.distribution, d.entries]));
  assert.deepStrictEqual(entries, {
    'cjs-linked': [{ subpath: 'cjs-linked', file: 'index.js', format: 'cjs' }],
    'esm-linked': [{ subpath: 'esm-linked', file: 'index.js', format: 'esm' }],
  });
  const text = node([CLI, '--dry-run'], { cwd: app, env }).stdout;
  assert.match(text, /entry points: esm-linked = index\.js \(esm\)/);
});

test('a linked CommonJS package is counted through --require', () => {
  const { app, out, env } = linkedApp();
  const run = node(['--require', REGISTER, 'app.js'], { cwd: app, env });
  assert.strictEqual(run.status, 0, run.stderr);
  assert.deepStrictEqual(reports(out).map((r) => [r.project_id, r.stats]), [['cjs-linked-project', { 'cjs-linked.add': 1 }]]);
});

test('a linked package that opts in after a first run is counted at once: its edited package.json is watched', () => {
  const { app, out, env } = linkedApp();
  const manifest = path.join(fs.realpathSync(path.join(app, 'node_modules', 'esm-linked')), 'package.json');
  const json = JSON.parse(fs.readFileSync(manifest, 'utf8'));
  const telly = json.telly;
  delete json.telly;
  fs.writeFileSync(manifest, JSON.stringify(json));
  assert.strictEqual(node(['--import', REGISTER_MJS, 'app.mjs'], { cwd: app, env }).status, 0);
  assert.deepStrictEqual(reports(out).map((r) => r.project_id), ['cjs-linked-project']);
  fs.rmSync(out, { recursive: true });
  // The author opts in where the package lives; no node_modules directory changes.
  fs.writeFileSync(manifest, JSON.stringify(Object.assign(json, { telly })));
  const future = new Date(Date.now() + 5000);
  fs.utimesSync(manifest, future, future); // a distinct mtime even on a coarse clock
  assert.strictEqual(node(['--import', REGISTER_MJS, 'app.mjs'], { cwd: app, env }).status, 0);
  assert.deepStrictEqual(reports(out).map((r) => [r.project_id, r.stats]), [
    ['cjs-linked-project', { 'cjs-linked.add': 1 }], ['esm-linked-project', { 'esm-linked.hello': 2 }]]);
});
