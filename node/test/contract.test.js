'use strict';
// The shared contract in the Node client: the shared user config's Python-only keys are accepted
// and ignored, force_packages keeps npm names only, and the consent lists' lock is the protocol
// both clients keep (an O_EXCL file that only its owner removes).

const test = require('node:test');
const assert = require('assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const childProcess = require('child_process');
const settings = require('../lib/settings');
const { tryLock } = require('../lib/_files');
const consent = require('../lib/consent');
const contract = require('../lib/_contract');
const { tmpdir } = require('./support');

test('Python-only keys of the shared user config do not break the Node client', () => {
  const userConfig = { engine: 'wrapt', force_packages: ['@scope/pkg', '_private_mod', 'wordstats'], debug: true,
    project: { 'p-1': { engine: 'monitoring', mode: 'optin' } } };
  const proc = settings.processSettings({}, userConfig);
  assert.deepStrictEqual([...proc.force_packages], ['@scope/pkg', 'wordstats']);
  assert.strictEqual(proc.debug, true);
  const project = settings.projectSettings({ project_id: 'p-1', packages: ['p'], engine: 'rewrite' }, 'pkg',
    { env: {}, userConfig });
  assert.strictEqual(project.mode, 'optin');
  assert.strictEqual(project.engine, undefined);
});

test('an unknown key is still refused, and a name no client can count too', () => {
  assert.throws(() => settings.processSettings({}, { disable: true }), /unknown key "disable"/);
  assert.throws(() => settings.processSettings({}, { force_packages: ['not a name!'] }), /neither an npm package name/);
});

test('the settings are the contract rows the Node client applies', () => {
  const rows = contract.SETTINGS.filter((row) => row[6].includes('node'));
  assert.deepStrictEqual(settings.SETTINGS.map((s) => [s.name, s.scope, s.env]), rows.map((r) => [r[0], r[1], r[5]]));
});

test('a lock the Python client left behind is taken over once its owner is gone, and only then', () => {
  const dir = tmpdir('lock');
  const file = path.join(dir, 'x.lock');
  const dead = childProcess.spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout;
  fs.writeFileSync(file, `${process.ppid} ${os.hostname()} 0123456789abcdef\n`); // as telly_autoinst/_lockfile.py writes
  assert.strictEqual(tryLock(file, 10000), null);
  fs.writeFileSync(file, `${dead} ${os.hostname()} 0123456789abcdef\n`);
  const release = tryLock(file, 10000);
  assert.ok(release);
  release();
  assert.deepStrictEqual(fs.readdirSync(dir), []);
});

test('the consent lists are edited under the contract\'s lock, and the notice names the package', () => {
  const home = tmpdir('home');
  const before = process.env.HOME;
  process.env.HOME = home;
  try {
    // A live lock of another client: the edit waits, then gives up rather than racing it.
    const lock = path.join(home, contract.FILE_LISTS_LOCK);
    fs.writeFileSync(lock, `${process.ppid} ${os.hostname()} other\n`);
    assert.throws(() => consent.edit(contract.FILE_OPTOUT, ['p-1'], [], 0.2), /held by another process/);
    fs.unlinkSync(lock);
    assert.strictEqual(consent.edit(contract.FILE_OPTOUT, ['p-1']), true);
    assert.ok(!fs.existsSync(lock));
  } finally {
    process.env.HOME = before;
  }
  assert.match(consent.firstRunNotice('tk-stats', 'us-3bc8'), /^telly-autoinst: tk-stats \(project us-3bc8\) collects/);
});

test('status names each package, and an unknown user config key: file, key and the user-config schema', () => {
  const { CLI, cleanEnv, node, demoApp } = require('./support');
  const app = demoApp();
  const home = tmpdir('home');
  const env = cleanEnv(home);
  const config = path.join(home, '.config', 'telly_autoinst', 'config.toml');
  fs.mkdirSync(path.dirname(config), { recursive: true });
  fs.writeFileSync(config, 'disable = true\n');
  const done = node([CLI, 'status'], { cwd: app, env });
  assert.strictEqual(done.status, 0, done.stderr);
  const error = done.stdout.split('\n').find((line) => line.trim().startsWith('error:'));
  assert.ok(error.includes(config) && error.includes('unknown key "disable"') && error.includes('user-config.schema.json'), error);
  const row = done.stdout.split('\n').find((line) => line.startsWith('demo-cjs '));
  assert.match(row, /^demo-cjs +demo-cjs-project +off .*user config is malformed/);
  const data = JSON.parse(node([CLI, 'status', '--json'], { cwd: app, env }).stdout);
  assert.strictEqual(data.user_config, config);
  assert.ok(data.projects.every((p) => !p.on && p.package));
});
