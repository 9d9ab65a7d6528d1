'use strict';
// The npm package as users get it: `npm pack` (which copies the schemas in), installed into an
// app with npm, activated by name (`--require telly-autoinst/register`, `--import ...`), and the
// CLI through `npx telly-autoinst`.

const test = require('node:test');
const assert = require('assert');
const childProcess = require('child_process');
const fs = require('fs');
const path = require('path');
const { NODE_DIR, tmpdir, cleanEnv, node, reports, demoApp } = require('./support');

test('npm pack, npm install, then activation by package name and npx telly-autoinst', { timeout: 300000 }, () => {
  // From a copy of node/ with config/ beside it (where prepack reads the schemas): prepack and
  // postpack write and remove schemas/ in the tree they pack, which the client run from the
  // checkout reads while it exists, as the tests running alongside may be doing.
  const source = tmpdir('pack-source');
  const skip = new Set(['node_modules', 'schemas', 'test', 'benchmarks'].map((d) => path.join(NODE_DIR, d)));
  fs.cpSync(NODE_DIR, path.join(source, 'node'), { recursive: true, filter: (src) => !skip.has(src) });
  fs.cpSync(path.join(NODE_DIR, '..', 'config'), path.join(source, 'config'), { recursive: true });
  const dest = tmpdir('pack');
  const packed = childProcess.spawnSync('npm', ['pack', '--pack-destination', dest, '--loglevel=error'],
    { cwd: path.join(source, 'node'), encoding: 'utf8' });
  assert.strictEqual(packed.status, 0, packed.stderr);
  const tarball = path.join(dest, fs.readdirSync(dest).find((n) => n.endsWith('.tgz')));
  const app = tmpdir('app');
  fs.writeFileSync(path.join(app, 'package.json'), '{"name": "some-app", "private": true}\n');
  const installed = childProcess.spawnSync('npm', ['install', '--no-audit', '--no-fund', '--no-save', '--offline', tarball],
    { cwd: app, encoding: 'utf8' });
  assert.strictEqual(installed.status, 0, installed.stderr);
  // The opted-in packages after npm install, which would prune them as extraneous.
  demoApp({ 'app.mjs': "import { hello } from 'demo-esm';\nimport d from 'demo-cjs';\nhello('x'); d.add(1, 2);\n" }, app);
  const pkgDir = path.join(app, 'node_modules', 'telly-autoinst');
  assert.ok(fs.existsSync(path.join(pkgDir, 'schemas', 'telly.schema.json')), 'the schema ships in the package');
  assert.ok(!fs.existsSync(path.join(pkgDir, 'test')), 'the tests do not');
  const home = tmpdir('home');
  const out = path.join(app, 'out');
  const env = cleanEnv(home, { TELLY_STORAGE_TYPE: 'file', TELLY_LOCAL_STORAGE_PATH: out });
  const run = node(['--import', 'telly-autoinst/register', 'app.mjs'], { cwd: app, env });
  assert.strictEqual(run.status, 0, run.stderr);
  assert.deepStrictEqual(reports(out).map((r) => Object.keys(r.stats)), [['demo-cjs.add'], ['demo-esm.hello']]);
  const npx = childProcess.spawnSync('npx', ['--offline', 'telly-autoinst', '--dry-run', '--json'], { cwd: app, env, encoding: 'utf8' });
  assert.strictEqual(npx.status, 0, npx.stderr);
  assert.deepStrictEqual(JSON.parse(npx.stdout).distributions.map((d) => d.distribution), ['demo-cjs', 'demo-esm', 'demo-fn']);
});
