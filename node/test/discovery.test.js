'use strict';
// The warm state of lib/discovery.js: a start reuses the settings an earlier one layered, and every
// change to what they were made from (a variable, the user config, a package's "telly" field, the
// client itself) takes effect at the next run. Real Node processes, each in a fresh HOME.

const test = require('node:test');
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { NODE_DIR, REGISTER, tmpdir, cleanEnv, node, reports, writeTree } = require('./support');

// The program prints which of the client's files it loaded, after the client's own exit handler.
const PROGRAM = "require('watched').f(); process.on('exit', () => require('fs').writeSync(1, JSON.stringify("
  + `Object.keys(require.cache).filter((f) => f.startsWith(${JSON.stringify(NODE_DIR + path.sep)}))`
  + '.map((f) => f.slice(' + (NODE_DIR.length + 1) + ')))));\n';

function setup(telly = { project_id: 'warm-one', endpoint: 'http://127.0.0.1:9' }) {
  const app = tmpdir('app');
  writeTree(app, {
    'node_modules/watched/package.json': { name: 'watched', version: '1.0.0', telly },
    'node_modules/watched/index.js': 'exports.f = () => 1;\n',
    'app.js': PROGRAM,
  });
  const home = tmpdir('home');
  const out = path.join(app, 'out');
  const env = cleanEnv(home, { TELLY_STORAGE_TYPE: 'file', TELLY_LOCAL_STORAGE_PATH: out });
  const run = (extra = {}) => {
    const done = node(['--require', REGISTER, 'app.js'], { cwd: app, env: Object.assign({}, env, extra) });
    assert.strictEqual(done.status, 0, done.stderr);
    const sent = reports(out);
    fs.rmSync(out, { recursive: true, force: true });
    return { loaded: JSON.parse(done.stdout), sent, stderr: done.stderr };
  };
  const warmFiles = () => {
    const cache = path.join(home, '.cache', 'telly_autoinst');
    return fs.existsSync(cache) ? fs.readdirSync(cache).filter((n) => n.startsWith('node-warm-')).map((n) => path.join(cache, n)) : [];
  };
  return { app, home, run, warmFiles };
}

test('a second run reuses the settings the first layered: settings.js, its parser and the schema stay unloaded', () => {
  const { run, warmFiles } = setup();
  const cold = run();
  assert.ok(cold.loaded.includes('lib/settings.js') && cold.loaded.includes('lib/schema.js'), cold.loaded.join(' '));
  assert.strictEqual(warmFiles().length, 1);
  const warm = run();
  for (const file of ['lib/settings.js', 'lib/schema.js', 'lib/_toml.js']) assert.ok(!warm.loaded.includes(file), `${file} loaded`);
  assert.deepStrictEqual(warm.sent.map((r) => [r.project_id, r.stats]), [['warm-one', { 'watched.f': 1 }]]);
  assert.deepStrictEqual(warm.sent.map((r) => r.level2 !== null), cold.sent.map((r) => r.level2 !== null));
});

test('a changed variable, user config or "telly" field takes effect at the next run', () => {
  const { app, home, run } = setup();
  run();
  run();
  // A variable: Level II off.
  assert.deepStrictEqual(run({ TELLY_INCLUDE_LEVEL2: '0' }).sent.map((r) => r.level2), [null]);
  // The user config: a per-project override, written after two warm runs.
  const config = path.join(home, '.config', 'telly_autoinst', 'config.toml');
  fs.mkdirSync(path.dirname(config), { recursive: true });
  fs.writeFileSync(config, '[project."warm-one"]\nlevel2 = false\n');
  assert.deepStrictEqual(run().sent.map((r) => r.level2), [null]);
  fs.writeFileSync(config, '# no override\n');
  assert.notStrictEqual(run().sent[0].level2, null);
  // The package's own field: another project id.
  const manifest = path.join(app, 'node_modules', 'watched', 'package.json');
  const json = JSON.parse(fs.readFileSync(manifest, 'utf8'));
  json.telly.project_id = 'warm-two';
  fs.writeFileSync(manifest, JSON.stringify(json));
  assert.deepStrictEqual(run().sent.map((r) => r.project_id), ['warm-two']);
  assert.deepStrictEqual(run().sent.map((r) => r.project_id), ['warm-two']);
});

test('settings made with an error are never kept: a malformed config says so at every run, and counts nothing', () => {
  const { home, run, warmFiles } = setup();
  const config = path.join(home, '.config', 'telly_autoinst', 'config.toml');
  fs.mkdirSync(path.dirname(config), { recursive: true });
  fs.writeFileSync(config, 'storage_type = 5\n');
  for (let i = 0; i < 2; i++) {
    const done = run({ TELLY_DEBUG: '1' });
    assert.match(done.stderr, /a process setting is malformed; nothing is counted/);
    assert.deepStrictEqual(done.sent, []);
  }
  assert.deepStrictEqual(warmFiles(), []);
  fs.writeFileSync(config, 'storage_type = "file"\n');
  assert.deepStrictEqual(run().sent.map((r) => r.project_id), ['warm-one']);
});

test('TELLY_NO_CACHE keeps no warm state; a planted link or a file of another shape is not used', () => {
  const { run, warmFiles } = setup();
  const off = run({ TELLY_NO_CACHE: '1' });
  assert.deepStrictEqual(warmFiles(), []);
  assert.ok(off.loaded.includes('lib/settings.js'));
  run();
  const [file] = warmFiles();
  // Another shape: the settings are layered again, and the file is rewritten.
  const kept = JSON.parse(fs.readFileSync(file, 'utf8'));
  fs.writeFileSync(file, JSON.stringify(Object.assign({}, kept, { process: { storage_type: 'http' } })));
  const reshaped = run();
  assert.ok(reshaped.loaded.includes('lib/settings.js'));
  assert.deepStrictEqual(reshaped.sent.map((r) => r.project_id), ['warm-one']);
  // A link in its place is never followed (it could lead anywhere, with any settings).
  const elsewhere = `${file}.elsewhere`;
  fs.renameSync(file, elsewhere);
  fs.symlinkSync(elsewhere, file);
  const linked = run();
  assert.ok(linked.loaded.includes('lib/settings.js'));
  assert.deepStrictEqual(linked.sent.map((r) => r.project_id), ['warm-one']);
});
