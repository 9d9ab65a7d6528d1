'use strict';
// npx telly-autoinst: --dry-run lists exactly what the hook counts; the consent commands edit the
// files the Python client reads.

const test = require('node:test');
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { CLI, REGISTER, REPO, tmpdir, cleanEnv, node, reports, demoApp, runPython, writeTree } = require('./support');

/** Errors of a JSON document against config/dry-run.schema.json, by Python's jsonschema (the real schema). */
function schemaErrors(text) {
  return JSON.parse(runPython(`
import json, sys
from pathlib import Path
from jsonschema import Draft202012Validator
schema = json.loads(Path(${JSON.stringify(path.join(REPO, 'config', 'dry-run.schema.json'))}).read_text())
print(json.dumps([e.message for e in Draft202012Validator(schema).iter_errors(json.loads(sys.stdin.read()))]))`,
  { input: text }));
}

test('--dry-run --json: the documented, versioned format (config/dry-run.schema.json), every key the hook would count', () => {
  const app = demoApp();
  const env = cleanEnv(tmpdir('home'));
  const done = node([CLI, '--dry-run', '--json'], { cwd: app, env });
  assert.strictEqual(done.status, 0, done.stderr);
  assert.deepStrictEqual(schemaErrors(done.stdout), []);
  const plan = JSON.parse(done.stdout);
  assert.deepStrictEqual([plan.format, plan.format_version, plan.node, plan.ok, plan.errors],
    ['telly-dry-run', 1, process.versions.node, true, []]);
  assert.strictEqual(plan.client_version, require('../package.json').version);
  assert.deepStrictEqual(plan.distributions.map((d) => [d.distribution, d.version, d.project_id, d.packages, d.engine]), [
    ['demo-cjs', '1.2.3', 'demo-cjs-project', ['demo-cjs'], 'cjs'],
    ['demo-esm', '2.0.0', 'demo-esm-project', ['demo-esm'], 'esm'],
    ['demo-fn', '0.1.0', 'demo-fn-project', ['demo-fn'], 'cjs'],
  ]);
  const esm = plan.distributions[1];
  assert.deepStrictEqual(esm.keys, ['demo-esm.Shape', 'demo-esm.Shape.area', 'demo-esm.default', 'demo-esm.hello',
    'demo-esm.inc', 'demo-esm.twice', 'demo-esm/sub.subfn']);
  assert.deepStrictEqual(esm.modules, ['demo-esm', 'demo-esm/sub']);
  assert.ok(esm.keys.every((key) => esm.engines[key] === 'esm'));
  assert.deepStrictEqual(plan.distributions[2].keys, ['demo-fn.default', 'demo-fn.loud']);
  // Every key counted at run time is one the dry run listed.
  writeTree(app, { 'app.js': "const d = require('demo-cjs'); d.add(1, 1); new d.Counter().bump(); d.Counter.make(); d.who();\n" });
  const out = path.join(app, 'out');
  node(['--require', REGISTER, 'app.js'], { cwd: app, env: Object.assign({}, env, { TELLY_STORAGE_TYPE: 'file', TELLY_LOCAL_STORAGE_PATH: out }) });
  const counted = Object.keys(reports(out)[0].stats);
  assert.ok(counted.length >= 4);
  for (const key of counted) assert.ok(plan.distributions[0].keys.includes(key), key);
  const text = node([CLI, '--dry-run'], { cwd: app, env }).stdout;
  assert.match(text, /demo-cjs 1\.2\.3 {2}\(project demo-cjs-project\)\n {2}settings from: demo-cjs \(package.json "telly"\)/);
  assert.match(text, /\n {2}would count 8 name\(s\):\n {4}demo-cjs\.Counter\n/);
});

test('the collector registers an npm package\'s keys and version from the Node client\'s --dry-run --json', () => {
  const home = tmpdir('home');
  const db = `sqlite:///${path.join(home, 'c.sqlite3')}`;
  const collector = (...args) => runPython(`import sys
from telly_autoinst.cli import main
sys.exit(main(["collector", *sys.argv[1:]]))`.replace('sys.argv[1:]', JSON.stringify(args)), { env: cleanEnv(home) });
  const projectId = JSON.parse(collector('project', 'create', 'demo', '--json', '--db', db)).project_id;
  const app = demoApp({ 'node_modules/demo-fn/package.json': { name: 'demo-fn', version: '0.1.0', telly: { project_id: projectId,
    exclude: ['demo-fn.skip*'] } } });
  const listing = path.join(home, 'keys.json');
  fs.writeFileSync(listing, node([CLI, '--dry-run', '--json'], { cwd: app, env: cleanEnv(home) }).stdout);
  assert.match(collector('project', 'register-keys', '--project', projectId, listing, '--db', db), /2 new feature key\(s\) and 1 new version\(s\)/);
  assert.deepStrictEqual(JSON.parse(collector('project', 'keys', '--project', projectId, '--json', '--db', db)),
    { feature_keys: ['demo-fn.default', 'demo-fn.loud'], versions: ['0.1.0'] });
});

test('--dry-run: what an entry point exports but is not counted is listed with the reason; a dual package\'s keys are cjs+esm', () => {
  const app = demoApp({
    'node_modules/odd/package.json': { name: 'odd', version: '1.0.0', telly: { project_id: 'odd-project' },
      exports: { '.': { import: './index.mjs', require: './index.js' } } },
    'node_modules/odd/index.js': `
class Frozen { f() { return 1; } }
Object.defineProperty(Frozen.prototype, 'g', { value() { return 2; }, writable: false, configurable: false });
module.exports = { keys: Object.keys, Frozen, h() { return 3; } };
`,
    'node_modules/odd/index.mjs': 'export function h() { return 3; }\n',
  });
  const done = node([CLI, '--dry-run', '--json'], { cwd: app, env: cleanEnv(tmpdir('home')) });
  assert.strictEqual(done.status, 0, done.stderr);
  assert.deepStrictEqual(schemaErrors(done.stdout), []);
  const odd = JSON.parse(done.stdout).distributions.find((d) => d.distribution === 'odd');
  assert.deepStrictEqual([odd.engine, odd.keys, odd.engines],
    ['cjs+esm', ['odd.Frozen', 'odd.Frozen.f', 'odd.h'], { 'odd.Frozen': 'cjs', 'odd.Frozen.f': 'cjs', 'odd.h': 'cjs+esm' }]);
  assert.deepStrictEqual(odd.not_counted.map((n) => n.key), ['odd.Frozen.g', 'odd.keys']);
  assert.match(odd.not_counted[1].why, /native/);
  const text = node([CLI, '--dry-run'], { cwd: app, env: cleanEnv(tmpdir('home')) }).stdout;
  assert.match(text, /\n {4}odd\.Frozen {2}\(engine: cjs\)\n {4}odd\.Frozen\.f {2}\(engine: cjs\)\n {4}odd\.h\n/);
  assert.match(text, /\n {2}2 name\(s\) not counted, because:\n {4}odd\.Frozen\.g: /);
});

test('--dry-run exits 1 naming the package and key of a malformed "telly" field, or a forced package that is missing, on stderr', () => {
  const app = demoApp({ 'node_modules/bad/package.json': { name: 'bad', telly: { project_id: 'p', region: 'mars' } } });
  const env = cleanEnv(tmpdir('home'), { TELLY_AUTOINST_PACKAGES: 'nowhere' });
  for (const json of [false, true]) {
    const done = node([CLI, '--dry-run', ...(json ? ['--json'] : [])], { cwd: app, env });
    assert.strictEqual(done.status, 1);
    assert.match(done.stderr, /^telly-autoinst: error: bad \(package.json "telly"\): region: expected one of "us", "eu", got "mars"$/m);
    assert.match(done.stderr, /^telly-autoinst: error: forced package\(s\) not found: nowhere/m);
    assert.doesNotMatch(done.stdout, /error: /);
    if (json) {
      assert.deepStrictEqual(schemaErrors(done.stdout), []);
      assert.strictEqual(JSON.parse(done.stdout).errors.length, 2);
    }
  }
});

test('--dry-run in the checkout of an opted-in package that is not installed says so and exits 1', () => {
  const checkout = writeTree(tmpdir('checkout'), {
    'package.json': { name: 'my-lib', version: '0.1.0', main: 'dist/index.js', telly: { project_id: 'my-lib-project' } },
    'src/index.ts': 'export const f = () => 1;\n',
  });
  const env = cleanEnv(tmpdir('home'));
  const unbuilt = node([CLI, '--dry-run'], { cwd: path.join(checkout, 'src'), env });
  assert.strictEqual(unbuilt.status, 1, unbuilt.stdout);
  assert.match(unbuilt.stderr, /telly-autoinst: error: .*package\.json opts my-lib in, but it is not installed here: no entry point file exists/);
  assert.doesNotMatch(unbuilt.stdout, /No watched packages/);
  // Built, but its dependencies not installed (no `npm install` yet).
  writeTree(checkout, { 'dist/index.js': "exports.f = () => require('left-pad')(1, 2);\nrequire('left-pad');\n" });
  const bare = node([CLI, '--dry-run', '--json'], { cwd: checkout, env });
  assert.strictEqual(bare.status, 1);
  assert.deepStrictEqual(schemaErrors(bare.stdout), []);
  assert.match(JSON.parse(bare.stdout).errors[0], /opts my-lib in, but it is not installed here: .*left-pad.*npm install/);
  // Installed: listed, exit 0.
  writeTree(checkout, { 'node_modules/left-pad/package.json': { name: 'left-pad', version: '1.0.0' },
    'node_modules/left-pad/index.js': 'module.exports = (a) => String(a);\n' });
  const ok = node([CLI, '--dry-run', '--json'], { cwd: checkout, env });
  assert.strictEqual(ok.status, 0, ok.stderr);
  assert.deepStrictEqual(JSON.parse(ok.stdout).distributions.map((d) => [d.distribution, d.keys]), [['my-lib', ['my-lib.f']]]);
});

test('optout, optin, disable and enable edit the files the Python client reads', () => {
  const home = tmpdir('home');
  const env = cleanEnv(home);
  const app = demoApp();
  const run = (...args) => node([CLI, ...args], { cwd: app, env });
  assert.strictEqual(run('optout', 'demo-cjs').stdout, 'opted out: demo-cjs (project demo-cjs-project)\n');
  const decide = () => runPython(`
from telly_autoinst.consent import decide
from telly_autoinst.settings import ProjectSettings, SETTINGS, process_settings
values = {s.name: s.default for s in SETTINGS if s.scope == "project"}
values["project_id"] = "DEMO-CJS-project"
print(decide(ProjectSettings(source="t", **values), process_settings()).reason)`, { env }).trim();
  assert.strictEqual(decide(), 'opted out (~/.telly_optout)');
  assert.strictEqual(JSON.parse(run('optin', 'DEMO-CJS-PROJECT', '--json').stdout).project_id, 'demo-cjs-project');
  assert.strictEqual(fs.readFileSync(path.join(home, '.telly_optout'), 'utf8'), '');
  assert.strictEqual(fs.readFileSync(path.join(home, '.telly_optin'), 'utf8'), 'demo-cjs-project\n');
  // A name that stands for no project is refused: a typo must not look like an opt-out.
  const typo = run('optout', 'demo-cjx');
  assert.strictEqual(typo.status, 2);
  assert.match(typo.stderr, /"demo-cjx" is neither the project id nor the package name/);
  assert.strictEqual(fs.readFileSync(path.join(home, '.telly_optout'), 'utf8'), '');
  run('disable');
  assert.match(decide(), /disabled by ~\/.telly_disable/);
  assert.match(run('status').stdout, /kill switch: {2}~\/.telly_disable/);
  run('enable');
  assert.ok(!fs.existsSync(path.join(home, '.telly_disable')));
  assert.strictEqual(run('bogus').status, 2);
  assert.strictEqual(run('optin').status, 2);
});

test('show prints each project\'s envelope and the queued reports, without sending', () => {
  const app = demoApp({ 'app.js': "require('demo-cjs').add(1, 1);\n" });
  const home = tmpdir('home');
  const env = cleanEnv(home, { TELLY_HTTP_SERVER: 'http://127.0.0.1:9' });
  // A report queued for a collector that is down (port 9): it stays in the spool.
  node(['--require', REGISTER, 'app.js'], { cwd: app, env: Object.assign({}, env, { TELLY_STORAGE_TYPE: 'http', TELLY_HTTP_TIMEOUT: '1' }) });
  const shown = JSON.parse(node([CLI, 'show', '--json'], { cwd: app, env }).stdout);
  assert.deepStrictEqual(shown.projects.map((p) => [p.project_id, p.would_send, p.report.stats]),
    [['demo-cjs-project', true, {}], ['demo-esm-project', true, {}], ['demo-fn-project', true, {}]]);
  assert.strictEqual(shown.projects[0].report.client.name, 'telly-autoinst-node');
  assert.deepStrictEqual(shown.queued.map((q) => [q.url, q.report.stats]), [['http://127.0.0.1:9/api/v1/reports', { 'demo-cjs.add': 1 }]]);
  const status = JSON.parse(node([CLI, 'status', '--json'], { cwd: app, env }).stdout);
  assert.deepStrictEqual(status.projects.map((p) => [p.project_id, p.on]),
    [['demo-cjs-project', true], ['demo-esm-project', true], ['demo-fn-project', true]]);
});

test('show: two packages that share a project id get an envelope each, under its own name and version', () => {
  const shared = { project_id: 'shared-project' };
  const app = writeTree(tmpdir('app'), {
    'node_modules/share-a/package.json': { name: 'share-a', version: '1.0.0', telly: shared },
    'node_modules/share-a/index.js': 'exports.alpha = () => 1;\n',
    'node_modules/share-b/package.json': { name: 'share-b', version: '2.0.0', telly: shared },
    'node_modules/share-b/index.js': 'exports.beta = () => 2;\n',
  });
  const shown = JSON.parse(node([CLI, 'show', '--json'], { cwd: app, env: cleanEnv(tmpdir('home')) }).stdout);
  assert.deepStrictEqual(shown.projects.map((p) => [p.project_id, p.report.package]), [
    ['shared-project', { name: 'share-a', version: '1.0.0' }],
    ['shared-project', { name: 'share-b', version: '2.0.0' }],
  ]);
});

test('a spool both clients share (TELLY_SPOOL_DIR): either client\'s purge removes both clients\' files there', () => {
  // Each sender's lock and start stamp, a Node lock set aside as stale, and the
  // reports, counts, temporary files and loss log both write.
  const theirs = ['1-a.report', '2-b.counts', '2-c.node-counts', '3.tmp', 'losses.log', '.sender.lock', '.sender.started', '.sender-node.started',
    '.sender-node.lock', '.sender-node.lock.0123456789abcdef.stale'];
  const python = require('./support').python();
  for (const purger of ['python', 'node']) {
    const home = tmpdir('home');
    const spoolDir = path.join(tmpdir('shared-spool'), 'queue');
    fs.mkdirSync(spoolDir, { recursive: true, mode: 0o700 });
    for (const name of [...theirs, 'mine.txt']) fs.writeFileSync(path.join(spoolDir, name), 'x');
    const env = cleanEnv(home, { TELLY_SPOOL_DIR: spoolDir, PYTHONPATH: REPO });
    const done = purger === 'node' ? node([CLI, 'purge'], { cwd: home, env })
      : require('child_process').spawnSync(python, ['-m', 'telly_autoinst', 'purge'], { cwd: home, env, encoding: 'utf8' });
    assert.strictEqual(done.status, 0, `${purger}: ${done.stderr}`);
    assert.deepStrictEqual(fs.readdirSync(spoolDir), ['mine.txt'], purger);
  }
});

test('purge removes every file the client keeps, the spool of TELLY_SPOOL_DIR included, and nothing else', () => {
  const app = demoApp({ 'app.js': "require('demo-cjs').add(1, 2);\n" });
  const home = tmpdir('home');
  const spoolDir = path.join(tmpdir('own-spool'), 'queue');
  fs.mkdirSync(spoolDir, { recursive: true });
  fs.writeFileSync(path.join(spoolDir, 'mine.txt'), 'not the client\'s\n');
  writeTree(home, { '.config/telly_autoinst/config.toml': 'optin_only = false\n' });
  const env = cleanEnv(home, { TELLY_HTTP_SERVER: 'http://127.0.0.1:9', TELLY_SPOOL_DIR: spoolDir });
  // Leave every kind of file: salt, lists, notices, kill switch, ES module index, spooled reports
  // (storage "http" spools what it could not post, and starts no sender that could write on).
  assert.strictEqual(node(['--require', REGISTER, 'app.js'], { cwd: app, env: Object.assign({}, env, { TELLY_STORAGE_TYPE: 'http' }) }).status, 0);
  for (const args of [['optin', 'demo-cjs'], ['optout', 'demo-esm'], ['disable']]) {
    assert.strictEqual(node([CLI, ...args], { cwd: app, env }).status, 0);
  }
  writeTree(home, { '.telly_notices': 'a\n', '.telly_optin.0123abcd.tmp': 'a crash left it\n', '.telly_lists.lock.4567.stale': '1\n' });
  const queued = fs.readdirSync(spoolDir).filter((n) => n.endsWith('.report'));
  assert.strictEqual(queued.length, 1);
  const done = node([CLI, 'purge', '--json'], { cwd: app, env });
  assert.strictEqual(done.status, 0, done.stderr);
  const { removed, failed } = JSON.parse(done.stdout);
  assert.deepStrictEqual(failed, []);
  for (const name of ['.telly_optin', '.telly_optout', '.telly_notices', '.telly_disable', '.telly_salt',
    '.telly_optin.0123abcd.tmp', '.telly_lists.lock.4567.stale']) {
    assert.ok(removed.includes(path.join(home, name)), name);
    assert.ok(!fs.existsSync(path.join(home, name)), name);
  }
  assert.ok(removed.includes(path.join(home, '.cache', 'telly_autoinst')));
  assert.ok(!fs.existsSync(path.join(home, '.cache', 'telly_autoinst')));
  assert.ok(removed.includes(path.join(spoolDir, queued[0])));
  assert.deepStrictEqual(fs.readdirSync(spoolDir), ['mine.txt']);
  assert.ok(fs.existsSync(path.join(home, '.config', 'telly_autoinst', 'config.toml')), 'the user\'s own config stays');
  const again = node([CLI, 'purge'], { cwd: app, env });
  assert.strictEqual(again.status, 0);
  assert.match(again.stdout, /nothing to remove/);
});
