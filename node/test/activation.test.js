'use strict';
// Real Node processes with the hook: CommonJS through --require, ES modules through --import,
// either one through NODE_OPTIONS, worker threads, child processes, signals, TELLY_SHOW_ME, and the
// switches that turn everything off.

const test = require('node:test');
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { NODE_DIR, CLI, REGISTER, REGISTER_MJS, tmpdir, cleanEnv, node, reports, demoApp, writeTree } = require('./support');

function setup(files) {
  const app = demoApp(files);
  const home = tmpdir('home');
  const out = path.join(app, 'out');
  const env = cleanEnv(home, { TELLY_STORAGE_TYPE: 'file', TELLY_LOCAL_STORAGE_PATH: out });
  return { app, home, out, env };
}

const CJS_PROGRAM = `
const d = require('demo-cjs');
const greet = require('demo-fn');
console.log(d.add(1, 2), d.add(3, 4), greet('x'), greet.loud('y'), greet.skipMe());
const c = new d.Counter(); c.bump(); c.bump(); d.Counter.make();
console.log(c instanceof d.Counter, d.add.name, d.add.length, d.VALUE, d.who.call({ tag: 't' }));
d.later(2).then((v) => console.log('later', v));
console.log([...d.gen()].join(','));
try { d.boom(); } catch (e) { console.log(e instanceof TypeError, e.message); }
require('plain-dep').f();
`;

test('CommonJS: exports, classes and methods of opted-in packages are counted; the program is unchanged', () => {
  const { app, out, env } = setup({ 'app.js': CJS_PROGRAM });
  const plain = node(['app.js'], { cwd: app, env });
  const hooked = node(['--require', REGISTER, 'app.js'], { cwd: app, env });
  assert.strictEqual(hooked.status, 0, hooked.stderr);
  assert.strictEqual(hooked.stdout, plain.stdout);
  assert.strictEqual(hooked.stderr, '');
  const [cjs, fn] = reports(out);
  assert.strictEqual(cjs.project_id, 'demo-cjs-project');
  assert.deepStrictEqual(cjs.stats, { 'demo-cjs.Counter': 1, 'demo-cjs.Counter.bump': 2, 'demo-cjs.Counter.make': 1,
    'demo-cjs.add': 2, 'demo-cjs.boom': 1, 'demo-cjs.gen': 1, 'demo-cjs.later': 1, 'demo-cjs.who': 1 });
  assert.deepStrictEqual(cjs.package, { name: 'demo-cjs', version: '1.2.3' });
  assert.deepStrictEqual(cjs.packages, { 'plain-dep': '1.4.0' });
  assert.deepStrictEqual([cjs.client.engine, cjs.trigger, cjs.exit_signal, cjs.interpreter.mode], ['cjs', 'exit', null, 'script']);
  assert.match(cjs.level2.user, /^[0-9a-f]{64}$/);
  // greet.loud calls greet through the package's own binding: not an importer's call, not counted.
  assert.deepStrictEqual(fn.stats, { 'demo-fn.default': 1, 'demo-fn.loud': 1 });
});

test("the require hook passes the client's own files by: it never looks for their package", () => {
  // The client loads most of itself after the hook is in place (the loader check at start, the
  // pipeline at the first watched load, consent and the spool at exit): finding the package of
  // each of those files cost a walk up the tree and a read of the client's own package.json.
  const { app, out, env } = setup({ 'app.js': "require('demo-cjs').add(1, 2);\n" });
  const spy = path.join(app, 'spy.js');
  fs.writeFileSync(spy, `const fs = require('fs'); const open = fs.openSync; const seen = [];
fs.openSync = function (file) { seen.push(String(file)); return open.apply(this, arguments); };
process.on('exit', () => process.stderr.write(JSON.stringify(seen)));\n`);
  const run = node(['--require', spy, '--require', REGISTER, 'app.js'], { cwd: app, env });
  assert.strictEqual(run.status, 0, run.stderr);
  const opened = JSON.parse(run.stderr);
  assert.ok(opened.some((f) => f.endsWith(path.join('demo-cjs', 'package.json'))), 'the spy saw the watched package read');
  assert.deepStrictEqual(opened.filter((f) => f.startsWith(NODE_DIR + path.sep)), []);
  assert.deepStrictEqual(Object.keys(reports(out)[0].stats), ['demo-cjs.add']);
});

test('ES modules through --import (and NODE_OPTIONS): named, default, star and subpath exports; live bindings stay live', () => {
  const { app, out, env } = setup({ 'app.mjs': `
import main, { hello, Shape, counter, inc, twice } from 'demo-esm';
import * as ns from 'demo-esm';
import { subfn } from 'demo-esm/sub';
import { add } from 'demo-cjs';
console.log(hello('x'), main(), new Shape().area(), twice(4), subfn(), add(1, 1));
inc(); inc(); console.log('counter', counter, ns.counter, Object.keys(ns).join(','));
const again = await import('demo-esm');
console.log(again.hello === hello, new Shape() instanceof again.Shape);
` });
  const plain = node(['app.mjs'], { cwd: app, env });
  for (const run of [['--import', REGISTER_MJS, 'app.mjs'], ['app.mjs']]) {
    fs.rmSync(out, { recursive: true, force: true });
    const runEnv = run.length === 1 ? Object.assign({}, env, { NODE_OPTIONS: `--import=${REGISTER_MJS}` }) : env;
    const hooked = node(run, { cwd: app, env: runEnv });
    assert.strictEqual(hooked.status, 0, hooked.stderr);
    assert.strictEqual(hooked.stdout, plain.stdout);
    const [cjs, esm] = reports(out);
    assert.deepStrictEqual(cjs.stats, { 'demo-cjs.add': 1 });
    assert.strictEqual(cjs.client.engine, 'cjs');
    assert.deepStrictEqual(esm.stats, { 'demo-esm.Shape': 2, 'demo-esm.Shape.area': 1, 'demo-esm.default': 1,
      'demo-esm.hello': 1, 'demo-esm.inc': 2, 'demo-esm.twice': 1, 'demo-esm/sub.subfn': 1 });
    assert.strictEqual(esm.client.engine, 'esm');
  }
});

test('NODE_OPTIONS=--require counts in the program, its worker threads and its forked children, each reporting its own', () => {
  const { app, out, env } = setup({
    'app.js': `
const { Worker } = require('worker_threads');
const { fork } = require('child_process');
require('demo-cjs').add(1, 1);
const w = new Worker("require('demo-cjs').add(2, 2); require('demo-cjs').add(3, 3);", { eval: true });
w.on('exit', () => fork(require('path').join(__dirname, 'child.js')).on('exit', (code) => console.log('child', code)));
`,
    'child.js': "require('demo-cjs').add(4, 4); require('demo-cjs').add(5, 5); require('demo-cjs').add(6, 6);\n",
  });
  const hooked = node(['app.js'], { cwd: app, env: Object.assign({}, env, { NODE_OPTIONS: `--require ${REGISTER}` }) });
  assert.strictEqual(hooked.stdout, 'child 0\n', hooked.stderr);
  const counts = reports(out).map((r) => r.stats['demo-cjs.add']).sort();
  assert.deepStrictEqual(counts, [1, 2, 3]);
});

test('SIGTERM, SIGINT and SIGHUP: the report leaves, and the process still dies of the signal', () => {
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
    const { app, out, env } = setup({ 'app.js': `
require('demo-cjs').add(1, 1);
process.kill(process.pid, '${signal}');
setTimeout(() => console.log('not reached'), 5000);
` });
    const hooked = node(['--require', REGISTER, 'app.js'], { cwd: app, env });
    assert.strictEqual(hooked.signal, signal);
    assert.strictEqual(hooked.stdout, '');
    const [r] = reports(out);
    assert.deepStrictEqual([r.trigger, r.exit_signal, r.stats], ['signal', require('os').constants.signals[signal], { 'demo-cjs.add': 1 }]);
  }
});

test('a host that handles the signal itself keeps doing so, and its exit code stands', () => {
  const { app, out, env } = setup({ 'app.js': `
require('demo-cjs').add(1, 1);
process.on('SIGTERM', () => { console.log('graceful', process.listenerCount('SIGTERM')); require('demo-cjs').add(2, 2); process.exit(7); });
process.kill(process.pid, 'SIGTERM');
setTimeout(() => {}, 5000);
` });
  const hooked = node(['--require', REGISTER, 'app.js'], { cwd: app, env });
  assert.deepStrictEqual([hooked.status, hooked.stdout], [7, 'graceful 1\n']);
  const got = reports(out).map((r) => [r.trigger, r.stats['demo-cjs.add']]).sort();
  assert.deepStrictEqual(got, [['exit', 1], ['signal', 1]]);
});

test('TELLY_SHOW_ME prints exactly the bytes that are sent', () => {
  const { app, out, env } = setup({ 'app.js': "require('demo-cjs').add(1, 1);\n" });
  const hooked = node(['--require', REGISTER, 'app.js'], { cwd: app, env: Object.assign({}, env, { TELLY_SHOW_ME: '1' }) });
  const [file] = fs.readdirSync(out);
  assert.strictEqual(hooked.stderr, fs.readFileSync(path.join(out, file), 'utf8'));
});

test('kill switches, the opt-out list, opt-in mode and send_from_ci turn counting off', () => {
  const cases = [
    [{ TELLY_DISABLE: '1' }, null, 0],
    [{ DO_NOT_TRACK: '1' }, null, 0],
    [{ DO_NOT_TRACK: '' }, null, 0],
    [{}, (home) => fs.writeFileSync(path.join(home, '.telly_disable'), ''), 0],
    [{}, (home) => fs.writeFileSync(path.join(home, '.telly_optout'), 'DEMO-CJS-PROJECT\n'), 0],
    [{ TELLY_OPTIN: '1' }, null, 0],
    [{ TELLY_OPTIN: '1' }, (home) => fs.writeFileSync(path.join(home, '.telly_optin'), 'demo-cjs-project\n'), 1],
    [{ CI: 'true', TELLY_SEND_FROM_CI: '0' }, null, 0],
    [{ CI: 'true' }, null, 1],
    [{ DO_NOT_TRACK: '0' }, null, 1],
  ];
  for (const [extra, prepare, expected] of cases) {
    const { app, home, out, env } = setup({ 'app.js': "console.log(require('demo-cjs').add(1, 1));\n" });
    if (prepare) prepare(home);
    const hooked = node(['--require', REGISTER, 'app.js'], { cwd: app, env: Object.assign({}, env, extra) });
    assert.strictEqual(hooked.stdout, '2\n');
    assert.strictEqual(reports(out).length, expected, JSON.stringify(extra));
  }
});

test('TELLY_AUTOINST_PACKAGES counts a package that did not opt in, as local:NAME', () => {
  const { app, out, env } = setup({ 'app.js': "require('plain-dep').f(); require('plain-dep').f();\n" });
  node(['--require', REGISTER, 'app.js'], { cwd: app, env: Object.assign({}, env, { TELLY_AUTOINST_PACKAGES: 'plain-dep' }) });
  const [r] = reports(out);
  assert.deepStrictEqual([r.project_id, r.stats], ['local:plain-dep', { 'plain-dep.f': 2 }]);
  // --dry-run says where its settings come from in the words the Python client uses (the contract's).
  const text = node([CLI, '--dry-run'], { cwd: app, env: Object.assign({}, env, { TELLY_AUTOINST_PACKAGES: 'plain-dep' }) }).stdout;
  assert.ok(text.includes(`settings from: ${require('../lib/_contract').FORCED_SOURCE}\n`), text);
});

test('a malformed "telly" field is ignored at run time and reported by --dry-run', () => {
  const { app, out, env } = setup({ 'app.js': "console.log(require('bad-telly').f());\n" });
  writeTree(app, {
    'node_modules/bad-telly/package.json': { name: 'bad-telly', version: '1.0.0', telly: { project_id: 'p', mode: 'sometimes' } },
    'node_modules/bad-telly/index.js': 'exports.f = () => 42;\n',
  });
  const hooked = node(['--require', REGISTER, 'app.js'], { cwd: app, env });
  assert.deepStrictEqual([hooked.stdout, hooked.stderr, reports(out).length], ['42\n', '', 0]);
});

test('the first-run notice is printed once, on a terminal only (recorded in ~/.telly_notices)', () => {
  const { app, home, env } = setup({ 'app.js': "require('demo-cjs').add(1, 1);\n" });
  // Without a terminal (these pipes, or /dev/null: a character device, not a terminal) no notice,
  // and nothing recorded.
  node(['--require', REGISTER, 'app.js'], { cwd: app, env });
  const devNull = fs.openSync('/dev/null', 'w');
  try {
    require('child_process').spawnSync(process.execPath, ['--require', REGISTER, 'app.js'],
      { cwd: app, env, stdio: ['ignore', 'ignore', devNull] });
  } finally {
    fs.closeSync(devNull);
  }
  assert.ok(!fs.existsSync(path.join(home, '.telly_notices')));
  // `script` gives the child a terminal where the machine has it.
  const script = require('child_process').spawnSync('script', ['-qec',
    `${process.execPath} --require ${REGISTER} app.js`, '/dev/null'], { cwd: app, env, encoding: 'utf8' });
  if (script.error) return; // no util-linux script(1) here
  assert.match(script.stdout, /demo-cjs \(project demo-cjs-project\) collects anonymous usage statistics/);
  assert.match(fs.readFileSync(path.join(home, '.telly_notices'), 'utf8'), /demo-cjs-project/);
  const again = require('child_process').spawnSync('script', ['-qec',
    `${process.execPath} --require ${REGISTER} app.js`, '/dev/null'], { cwd: app, env, encoding: 'utf8' });
  assert.doesNotMatch(again.stdout, /collects anonymous/);
});

test('the loader hooks follow the installed packages: an ES module package installed later is counted at once', () => {
  const app = tmpdir('app');
  writeTree(app, {
    'node_modules/only-cjs/package.json': { name: 'only-cjs', version: '1.0.0', telly: { project_id: 'only-cjs', endpoint: 'http://127.0.0.1:9' } },
    'node_modules/only-cjs/index.js': 'exports.f = () => 1;\n',
    'app.mjs': "import { f } from 'only-cjs'; f();\nif (process.env.LATER) { const { g } = await import('later-esm'); g(); }\n",
  });
  const home = tmpdir('home');
  const out = path.join(app, 'out');
  const env = cleanEnv(home, { TELLY_STORAGE_TYPE: 'file', TELLY_LOCAL_STORAGE_PATH: out });
  node(['--import', REGISTER_MJS, 'app.mjs'], { cwd: app, env });
  assert.deepStrictEqual(reports(out).map((r) => r.stats), [{ 'only-cjs.f': 1 }]);
  const [index] = fs.readdirSync(path.join(home, '.cache', 'telly_autoinst')).filter((n) => n.startsWith('node-index-'));
  assert.strictEqual(JSON.parse(fs.readFileSync(path.join(home, '.cache', 'telly_autoinst', index), 'utf8')).esm, false);
  fs.rmSync(out, { recursive: true });
  writeTree(app, {
    'node_modules/later-esm/package.json': { name: 'later-esm', version: '1.0.0', type: 'module', exports: './index.js',
      telly: { project_id: 'later-esm', endpoint: 'http://127.0.0.1:9' } },
    'node_modules/later-esm/index.js': 'export function g() { return 2; }\n',
  });
  const run = node(['--import', REGISTER_MJS, 'app.mjs'], { cwd: app, env: Object.assign({}, env, { LATER: '1' }) });
  assert.strictEqual(run.status, 0, run.stderr);
  assert.deepStrictEqual(reports(out).map((r) => [r.project_id, r.stats]),
    [['later-esm', { 'later-esm.g': 1 }], ['only-cjs', { 'only-cjs.f': 1 }]]);
});

test('TELLY_NO_CACHE: the loader check neither reads nor writes its cache, and an ES module package is still counted', () => {
  const app = tmpdir('app');
  writeTree(app, {
    'node_modules/esm-pkg/package.json': { name: 'esm-pkg', version: '1.0.0', type: 'module', exports: './index.js',
      telly: { project_id: 'esm-pkg', endpoint: 'http://127.0.0.1:9' } },
    'node_modules/esm-pkg/index.js': 'export function g() { return 2; }\n',
    'app.mjs': "import { g } from 'esm-pkg'; g();\n",
  });
  const home = tmpdir('home');
  const out = path.join(app, 'out');
  const env = cleanEnv(home, { TELLY_STORAGE_TYPE: 'file', TELLY_LOCAL_STORAGE_PATH: out, TELLY_NO_CACHE: '1' });
  const run = node(['--import', REGISTER_MJS, 'app.mjs'], { cwd: app, env });
  assert.strictEqual(run.status, 0, run.stderr);
  assert.deepStrictEqual(reports(out).map((r) => r.stats), [{ 'esm-pkg.g': 1 }]);
  const cache = path.join(home, '.cache', 'telly_autoinst');
  assert.deepStrictEqual(fs.existsSync(cache) ? fs.readdirSync(cache).filter((n) => n.startsWith('node-index-')) : [], []);
});

/** An app with a watched ES module package, and a program that prints the loader's state at exit. */
function esmApp(files) {
  const app = tmpdir('app');
  writeTree(app, Object.assign({
    'node_modules/esm-pkg/package.json': { name: 'esm-pkg', version: '1.0.0', type: 'module', exports: './index.js',
      telly: { project_id: 'esm-pkg', endpoint: 'http://127.0.0.1:9' } },
    'node_modules/esm-pkg/index.js': 'export function g() { return 2; }\n',
    // Node's own record of its internal modules: the loader hooks load this one, in this thread too.
    'hooks-loaded.js': "process.on('exit', () => console.log('hooks loaded:', "
      + "process.moduleLoadList.includes('NativeModule internal/modules/esm/hooks')));\n",
  }, files));
  const home = tmpdir('home');
  const out = path.join(app, 'out');
  return { app, out, env: cleanEnv(home, { TELLY_STORAGE_TYPE: 'file', TELLY_LOCAL_STORAGE_PATH: out, TELLY_DEBUG: '1' }) };
}

test('a CommonJS program that never imports starts no loader thread, though an ES module package is watched', () => {
  const { app, out, env } = esmApp({ 'app.js': "console.log(require('./lib.cjs'));\n", 'lib.cjs': 'module.exports = 1;\n' });
  for (const args of [['app.js'], ['-e', "console.log(require('./lib.cjs'))"]]) {
    const run = node(['--require', './hooks-loaded.js', '--require', REGISTER, ...args], { cwd: app, env });
    assert.strictEqual(run.status, 0, run.stderr);
    assert.strictEqual(run.stdout, '1\nhooks loaded: false\n', args.join(' '));
    assert.match(run.stderr, /ES module loader hooks: deferred/);
    assert.doesNotMatch(run.stderr, /ES module loader hooks: registered/);
  }
  assert.strictEqual(fs.existsSync(out), false);
});

test('the loader hooks are in place before CommonJS code imports: import() in the program, in a dependency and in -e code, '
  + 'and an import statement in a typeless .js', () => {
  const USE = "import('esm-pkg').then((m) => console.log(m.g()));\n";
  const { app, out, env } = esmApp({
    'dynamic.js': USE,
    'via-dependency.js': "require('./dep.js');\n", 'dep.js': USE,
    'statement.js': "import { g } from 'esm-pkg';\nconsole.log(g());\n",
  });
  for (const args of [['dynamic.js'], ['via-dependency.js'], ['statement.js'], ['-e', USE]]) {
    fs.rmSync(out, { recursive: true, force: true });
    const run = node(['--require', REGISTER, ...args], { cwd: app, env });
    assert.strictEqual(run.status, 0, run.stderr);
    assert.strictEqual(run.stdout, '2\n', args.join(' '));
    assert.match(run.stderr, /ES module loader hooks: registered/);
    assert.deepStrictEqual(reports(out).map((r) => r.stats), [{ 'esm-pkg.g': 1 }], args.join(' '));
  }
});

test('an import cycle through a facade: bindings still in their temporal dead zone are filled in afterwards', () => {
  const { app, out, env } = setup({
    'node_modules/cyc/package.json': { name: 'cyc', version: '1.0.0', type: 'module', exports: { '.': './index.js', './sub': './sub.js' },
      telly: { project_id: 'cyc', endpoint: 'http://127.0.0.1:9' } },
    'node_modules/cyc/index.js': "import { helper } from 'cyc-helper';\nexport const value = () => 'v' + helper();\nexport class K { m() { return 1; } }\n",
    'node_modules/cyc/sub.js': "import { value } from './index.js';\nexport function viaSub() { return value(); }\n",
    'node_modules/cyc-helper/package.json': { name: 'cyc-helper', version: '1.0.0', type: 'module', exports: './index.js' },
    'node_modules/cyc-helper/index.js': "import { value, K } from 'cyc';\nexport function helper() { return 'h'; }\n"
      + 'export function later() { return value() + new K().m(); }\n',
    'app.mjs': "import { viaSub } from 'cyc/sub';\nimport { later } from 'cyc-helper';\nawait new Promise((r) => setTimeout(r, 10));\n"
      + 'console.log(viaSub(), later());\n',
  });
  const plain = node(['app.mjs'], { cwd: app, env });
  const hooked = node(['--import', REGISTER_MJS, 'app.mjs'], { cwd: app, env });
  assert.deepStrictEqual([hooked.status, hooked.stdout, hooked.stderr], [0, plain.stdout, '']);
  assert.strictEqual(plain.stdout, 'vh vh1\n');
  const [r] = reports(out);
  assert.deepStrictEqual(r.stats, { 'cyc.K': 1, 'cyc.K.m': 1, 'cyc.value': 1, 'cyc/sub.viaSub': 1 });
});

test('TELLY_TIMER reports periodically; TELLY_EXIT_SIGNAL_ONLY traps no signal', () => {
  const { app, out, env } = setup({ 'app.js': `
const d = require('demo-cjs');
d.add(1, 1);
setTimeout(() => { d.add(2, 2); d.add(3, 3); }, 1500);
setTimeout(() => {}, 2500);
` });
  node(['--require', REGISTER, 'app.js'], { cwd: app, env: Object.assign({}, env, { TELLY_TIMER: '1', TELLY_TIMER_INTERVAL_SEC: '1' }) });
  const got = reports(out).map((r) => [r.trigger, r.stats['demo-cjs.add']]);
  assert.ok(got.some(([t]) => t === 'timer'), JSON.stringify(got));
  assert.strictEqual(got.reduce((sum, [, n]) => sum + (n || 0), 0), 3);
  const second = setup({ 'app.js': "require('demo-cjs').add(1, 1);\nprocess.kill(process.pid, 'SIGTERM');\nsetTimeout(() => {}, 5000);\n" });
  const killed = node(['--require', REGISTER, 'app.js'], { cwd: second.app,
    env: Object.assign({}, second.env, { TELLY_EXIT_SIGNAL_ONLY: '1' }) });
  assert.strictEqual(killed.signal, 'SIGTERM');
  assert.deepStrictEqual(reports(second.out), [], 'killed by a signal it did not trap: no report');
});

test('TELLY_STORAGE_TYPE=http posts before the process ends, and spools what the collector did not take', async () => {
  const http = require('http');
  const zlib = require('zlib');
  const received = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      received.push(JSON.parse(zlib.gunzipSync(Buffer.concat(chunks))));
      res.statusCode = received.length === 1 ? 200 : 503;
      res.end('{}');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  try {
    const { app, home, env } = setup({ 'app.js': "require('demo-cjs').add(1, 1);\n" });
    const runEnv = Object.assign({}, env, { TELLY_STORAGE_TYPE: 'http', TELLY_HTTP_SERVER: `http://127.0.0.1:${server.address().port}` });
    const { execFile } = require('child_process');
    const run = () => new Promise((resolve) => execFile(process.execPath, ['--require', REGISTER, 'app.js'], { cwd: app, env: runEnv }, resolve));
    await run();
    assert.deepStrictEqual(received.map((r) => r.stats), [{ 'demo-cjs.add': 1 }]);
    await run();
    assert.strictEqual(received.length, 2);
    const spoolDir = path.join(home, '.cache', 'telly_autoinst', 'spool');
    assert.strictEqual(fs.readdirSync(spoolDir).filter((n) => n.endsWith('.report')).length, 1);
  } finally {
    server.close();
  }
});

test('two packages that share a project id: one report each, under its own name and version, with only its own counts', () => {
  const shared = { project_id: 'shared-project', endpoint: 'http://127.0.0.1:9' };
  const { app, out, env } = setup({
    'node_modules/share-a/package.json': { name: 'share-a', version: '1.0.0', telly: shared },
    'node_modules/share-a/index.js': 'exports.alpha = () => 1;\n',
    'node_modules/share-b/package.json': { name: 'share-b', version: '2.0.0', telly: shared },
    'node_modules/share-b/index.js': 'exports.beta = () => 2;\n',
    'app.js': "const a = require('share-a'); const b = require('share-b'); a.alpha(); b.beta(); b.beta();\n",
  });
  const run = node(['--require', REGISTER, 'app.js'], { cwd: app, env });
  assert.strictEqual(run.status, 0, run.stderr);
  const got = reports(out).map((r) => [r.project_id, r.package, r.stats])
    .sort((x, y) => (x[1].name < y[1].name ? -1 : 1));
  assert.deepStrictEqual(got, [
    ['shared-project', { name: 'share-a', version: '1.0.0' }, { 'share-a.alpha': 1 }],
    ['shared-project', { name: 'share-b', version: '2.0.0' }, { 'share-b.beta': 2 }],
  ]);
});
