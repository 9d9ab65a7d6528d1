'use strict';
// Hostile files where the client reads and writes its own: a FIFO or a link to /dev/zero in place
// of a package.json, the salt, a consent list, the user config or a spool entry must not hang or
// grow a program; what the client creates is 0700/0600 whatever the umask; directories of its own
// that are too open are tightened, and one owned by another user is refused.

const test = require('node:test');
const assert = require('assert');
const childProcess = require('child_process');
const fs = require('fs');
const path = require('path');
const { REGISTER, CLI, NODE_DIR, tmpdir, cleanEnv, reports, demoApp, writeTree } = require('./support');

const POSIX = process.platform !== 'win32';
const ROOT = POSIX && process.getuid() === 0;
// A hang shows as a timeout: far longer than any of these runs takes, far shorter than forever.
const HANG = 30000;

/** Run node; a hang is killed with SIGKILL (a process stuck opening a FIFO may be deaf to SIGTERM). */
function node(args, { cwd, env, timeout }) {
  return childProcess.spawnSync(process.execPath, args, { cwd, env, timeout, killSignal: 'SIGKILL', encoding: 'utf8' });
}

function mkfifo(file) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  childProcess.execFileSync('mkfifo', [file]);
}

function mode(file) {
  return (fs.statSync(file).mode & 0o777).toString(8);
}

function finished(run) {
  assert.strictEqual(run.signal, null, `ended by ${run.signal}: it hung (killed after ${HANG} ms) or ran out of memory`);
  assert.strictEqual(run.status, 0, run.stderr);
}

const PROGRAM = "const d = require('demo-cjs'); d.add(1, 2);\n";

function setup(files = {}) {
  const app = demoApp(Object.assign({ 'app.js': PROGRAM }, files));
  const home = tmpdir('home');
  const out = path.join(app, 'out');
  return { app, home, out, env: cleanEnv(home, { TELLY_STORAGE_TYPE: 'file', TELLY_LOCAL_STORAGE_PATH: out }) };
}

test('a FIFO or a link to /dev/zero named package.json in a visible node_modules hangs nothing', { skip: !POSIX }, () => {
  // Anyone may create a node_modules in a shared directory above someone's working directory.
  const shared = tmpdir('shared');
  const app = demoApp({ 'app.js': PROGRAM }, path.join(shared, 'work', 'app'));
  mkfifo(path.join(shared, 'node_modules', 'fifo-pkg', 'package.json'));
  fs.mkdirSync(path.join(shared, 'node_modules', 'zero-pkg'), { recursive: true });
  fs.symlinkSync('/dev/zero', path.join(shared, 'node_modules', 'zero-pkg', 'package.json'));
  const out = path.join(app, 'out');
  const env = cleanEnv(tmpdir('home'), { TELLY_STORAGE_TYPE: 'file', TELLY_LOCAL_STORAGE_PATH: out });
  finished(node(['--require', REGISTER, 'app.js'], { cwd: app, env, timeout: HANG }));
  assert.deepStrictEqual(reports(out).map((r) => r.stats), [{ 'demo-cjs.add': 1 }]);
  const dry = node([CLI, '--dry-run', '--json'], { cwd: app, env, timeout: HANG });
  finished(dry);
  assert.deepStrictEqual(JSON.parse(dry.stdout).distributions.map((d) => d.distribution), ['demo-cjs', 'demo-esm', 'demo-fn']);
});

test('a FIFO at ~/.telly_salt, ~/.telly_optout, ~/.telly_optin, ~/.telly_notices or the user config hangs nothing',
  { skip: !POSIX }, () => {
    for (const planted of ['.telly_salt', '.telly_optout', '.telly_optin', '.telly_notices', '.config/telly_autoinst/config.toml']) {
      const { app, home, out, env } = setup();
      mkfifo(path.join(home, planted));
      finished(node(['--require', REGISTER, 'app.js'], { cwd: app, env, timeout: HANG }));
      const [report] = reports(out);
      assert.deepStrictEqual(report.stats, { 'demo-cjs.add': 1 }, planted);
      assert.match(report.level2.user, /^[0-9a-f]{64}$/, `${planted}: Level II falls back to the machine id salt`);
      // status answers (a FIFO as the user config is an error it names), and does not hang.
      const status = node([CLI, 'status', '--json'], { cwd: app, env, timeout: HANG });
      assert.strictEqual(status.signal, null, `status hung on ${planted}`);
    }
  });

test('a salt, a consent list or a user config that leads to a device is not read', { skip: !POSIX }, () => {
  const { app, home, out, env } = setup();
  for (const name of ['.telly_salt', '.telly_optout']) fs.symlinkSync('/dev/zero', path.join(home, name));
  fs.mkdirSync(path.join(home, '.config', 'telly_autoinst'), { recursive: true });
  fs.symlinkSync('/dev/zero', path.join(home, '.config', 'telly_autoinst', 'config.toml'));
  finished(node(['--require', REGISTER, 'app.js'], { cwd: app, env, timeout: HANG }));
  assert.deepStrictEqual(reports(out).map((r) => r.stats), [{ 'demo-cjs.add': 1 }]);
});

test('a FIFO, a link or an oversized file among spool entries is dropped, never read or followed', { skip: !POSIX }, () => {
  const spoolDir = tmpdir('spool');
  fs.chmodSync(spoolDir, 0o700);
  const victim = path.join(tmpdir('victim'), 'keep.txt');
  fs.writeFileSync(victim, 'precious\n');
  const now = (BigInt(Date.now()) * 1000000n).toString().padStart(20, '0');
  mkfifo(path.join(spoolDir, `${now}-fifo.report`));
  fs.symlinkSync(victim, path.join(spoolDir, `${now}-link.report`));
  fs.writeFileSync(path.join(spoolDir, `${now}-huge.report`), Buffer.alloc((8 << 20) + 1, 0x20));
  const env = cleanEnv(tmpdir('home'));
  const run = node(['-e', `require(${JSON.stringify(path.join(NODE_DIR, 'lib', 'sender.js'))}).drain(process.argv[1])
    .then((r) => console.log(JSON.stringify(r)))`, spoolDir], { env, timeout: HANG });
  finished(run);
  assert.deepStrictEqual(JSON.parse(run.stdout), [0, 0]);
  assert.deepStrictEqual(fs.readdirSync(spoolDir).filter((n) => n.endsWith('.report')), []);
  assert.strictEqual(fs.readFileSync(victim, 'utf8'), 'precious\n');
  assert.match(fs.readFileSync(path.join(spoolDir, 'losses.log'), 'utf8'), /spool-corrupt/);
});

test('what the client creates is 0700 (directories) and 0600 (files) under umask 022', { skip: !POSIX }, () => {
  const { app, home, env } = setup();
  const cache = path.join(home, '.cache', 'telly_autoinst');
  const spoolEnv = Object.assign({}, env, { TELLY_STORAGE_TYPE: 'http_async', TELLY_HTTP_SERVER: 'http://127.0.0.1:9' });
  // umask 022 as in most shells; the ES module index, the salt and a queued report get written.
  const sh = (args, runEnv) => childProcess.spawnSync('/bin/sh', ['-c', 'umask 022; exec "$@"', 'sh', process.execPath, ...args],
    { cwd: app, env: runEnv, encoding: 'utf8', timeout: HANG, killSignal: 'SIGKILL' });
  finished(sh(['--require', REGISTER, 'app.js'], spoolEnv));
  for (const command of [['optin', 'demo-cjs'], ['optout', 'demo-cjs-project'], ['disable']]) finished(sh([CLI, ...command], env));
  assert.strictEqual(mode(cache), '700');
  assert.strictEqual(mode(path.join(cache, 'spool')), '700');
  const files = [path.join(home, '.telly_salt'), path.join(home, '.telly_optin'), path.join(home, '.telly_optout'),
    path.join(home, '.telly_disable')];
  files.push(...fs.readdirSync(cache).filter((n) => n.startsWith('node-index-')).map((n) => path.join(cache, n)));
  files.push(...fs.readdirSync(path.join(cache, 'spool')).filter((n) => !n.startsWith('.sender'))
    .map((n) => path.join(cache, 'spool', n)));
  assert.ok(files.length >= 6, files.join(' '));
  for (const file of files) assert.strictEqual(mode(file), '600', file);
});

test('directories of the client that are too open are tightened to 0700 in place', { skip: !POSIX }, () => {
  const { app, home, env } = setup();
  const cache = path.join(home, '.cache', 'telly_autoinst');
  const spoolDir = path.join(cache, 'spool');
  fs.mkdirSync(spoolDir, { recursive: true });
  fs.chmodSync(cache, 0o755);
  fs.chmodSync(spoolDir, 0o777);
  const spoolEnv = Object.assign({}, env, { TELLY_STORAGE_TYPE: 'http_async', TELLY_HTTP_SERVER: 'http://127.0.0.1:9' });
  finished(node(['--require', REGISTER, 'app.js'], { cwd: app, env: spoolEnv, timeout: HANG }));
  assert.strictEqual(mode(cache), '700');
  assert.strictEqual(mode(spoolDir), '700');
});

test('a spool directory owned by another user is refused: nothing is queued, read or removed there', { skip: !ROOT }, () => {
  const { app, env } = setup();
  const spoolDir = path.join(tmpdir('foreign'), 'spool');
  fs.mkdirSync(spoolDir, { mode: 0o755 });
  const planted = path.join(spoolDir, '00000000000000000001-planted.report');
  fs.writeFileSync(planted, '{"url": "http://127.0.0.1:9/api/v1/reports", "project_id": "x", "attempts": 0, "not_before": 0}\n{}\n');
  const nobody = Number(childProcess.execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }));
  fs.chownSync(spoolDir, nobody, nobody);
  fs.chownSync(planted, nobody, nobody);
  const runEnv = Object.assign({}, env, { TELLY_STORAGE_TYPE: 'http_async', TELLY_HTTP_SERVER: 'http://127.0.0.1:9',
    TELLY_SPOOL_DIR: spoolDir, TELLY_DEBUG: '1' });
  const run = node(['--require', REGISTER, 'app.js'], { cwd: app, env: runEnv, timeout: HANG });
  finished(run);
  assert.match(run.stderr, /belongs to uid \d+, not to this user/);
  assert.deepStrictEqual(fs.readdirSync(spoolDir), [path.basename(planted)]);
  assert.strictEqual(mode(spoolDir), '755');
  const drained = node(['-e', `require(${JSON.stringify(path.join(NODE_DIR, 'lib', 'sender.js'))}).drain(process.argv[1])
    .then((r) => console.log(JSON.stringify(r)))`, spoolDir], { env: runEnv, timeout: HANG });
  finished(drained);
  assert.deepStrictEqual(JSON.parse(drained.stdout), [0, 0]);
  assert.ok(fs.existsSync(planted));
  // status names the refused directory and why; show reads nothing from it.
  const status = node([CLI, 'status', '--json'], { cwd: app, env: runEnv, timeout: HANG });
  finished(status);
  assert.deepStrictEqual(JSON.parse(status.stdout).refused.map((r) => r.directory), [spoolDir]);
  assert.match(node([CLI, 'status'], { cwd: app, env: runEnv, timeout: HANG }).stdout,
    new RegExp(`refused: +${spoolDir.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} belongs to uid ${nobody}, not to this user`));
  const show = node([CLI, 'show', '--json'], { cwd: app, env: runEnv, timeout: HANG });
  finished(show);
  assert.deepStrictEqual(JSON.parse(show.stdout).queued, []);
  // Nor does purge touch it: it is no leftover of this user's.
  finished(node([CLI, 'purge'], { cwd: app, env: runEnv, timeout: HANG }));
  assert.ok(fs.existsSync(planted));
});

test('losses.log is never written through a link, and one loss is one line whatever its project id holds', { skip: !POSIX }, () => {
  const spoolDir = tmpdir('spool');
  const victim = path.join(tmpdir('victim'), '.bashrc');
  fs.writeFileSync(victim, '# mine\n');
  fs.symlinkSync(victim, path.join(spoolDir, 'losses.log'));
  const { recordLoss } = require('../lib/transport');
  recordLoss('http-400', 'p\nrm -rf ~', spoolDir);
  assert.strictEqual(fs.readFileSync(victim, 'utf8'), '# mine\n');
  fs.unlinkSync(path.join(spoolDir, 'losses.log'));
  recordLoss('http-400', 'p\nrm -rf ~', spoolDir);
  const lines = fs.readFileSync(path.join(spoolDir, 'losses.log'), 'utf8').split('\n').filter(Boolean);
  assert.strictEqual(lines.length, 1);
  assert.match(lines[0], /^\d+ http-400 p\?rm\?-rf\?~$/);
});

test('a consent list of another user is ignored; one that is a link to a file of the user is read', { skip: !ROOT }, () => {
  const { app, home, out, env } = setup();
  const nobody = Number(childProcess.execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }));
  // Opted in to everything by someone else's file: not the user's choice, so opt-in mode sends nothing.
  writeTree(home, { '.telly_optin': 'demo-cjs-project\n', 'dotfiles/optout': 'demo-cjs-project\n' });
  fs.chownSync(path.join(home, '.telly_optin'), nobody, nobody);
  finished(node(['--require', REGISTER, 'app.js'], { cwd: app, env: Object.assign({}, env, { TELLY_OPTIN: '1' }), timeout: HANG }));
  assert.deepStrictEqual(reports(out), []);
  fs.symlinkSync(path.join(home, 'dotfiles', 'optout'), path.join(home, '.telly_optout'));
  finished(node(['--require', REGISTER, 'app.js'], { cwd: app, env, timeout: HANG }));
  assert.deepStrictEqual(reports(out), []);
});

test('show prints a queued report\'s header quoted: no control character of it reaches the terminal', () => {
  const home = tmpdir('home');
  const spoolDir = tmpdir('spool');
  const spool = require('../lib/spool');
  spool.enqueue(spoolDir, 'http://127.0.0.1:9/\u001b[2J\nfake line', 'p', Buffer.from('{}\n'), 'c'.repeat(32));
  const run = node([CLI, 'show'], { cwd: home, env: cleanEnv(home, { TELLY_SPOOL_DIR: spoolDir }), timeout: HANG });
  finished(run);
  assert.ok(!run.stdout.includes('\u001b'));
  assert.ok(!run.stdout.split('\n').some((line) => line.startsWith('fake line')));
  assert.match(run.stdout, /-> "http:\/\/127\.0\.0\.1:9\/\\u001b\[2J\\nfake line"/);
});

test('uuid4Hex: a version 4 UUID of kernel random bytes, as 32 hex digits (the report_id format)', () => {
  const { uuid4Hex } = require('../lib/_files');
  const ids = new Set(Array.from({ length: 200 }, () => uuid4Hex()));
  assert.strictEqual(ids.size, 200);
  for (const id of ids) assert.match(id, /^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$/);
});

test('uuid4Hex without /dev/urandom (a chroot, a sandbox): Node\'s crypto gives the bytes, and TELLY_DEBUG says so', () => {
  const code = `
    const fs = require('fs');
    const open = fs.openSync;
    fs.openSync = function (file) {
      if (file === '/dev/urandom') { const err = new Error('no such device'); err.code = 'ENOENT'; throw err; }
      return open.apply(this, arguments);
    };
    const { uuid4Hex } = require(${JSON.stringify(path.join(NODE_DIR, 'lib', '_files.js'))});
    const ids = [uuid4Hex(), uuid4Hex()];
    process.stdout.write(JSON.stringify({ ids }));
  `;
  const done = childProcess.spawnSync(process.execPath, ['-e', code], {
    env: cleanEnv(tmpdir('home'), { TELLY_DEBUG: '1' }), encoding: 'utf8' });
  assert.strictEqual(done.status, 0, done.stderr);
  const { ids } = JSON.parse(done.stdout);
  for (const id of ids) assert.match(id, /^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$/);
  assert.notStrictEqual(ids[0], ids[1]);
  assert.match(done.stderr, /\/dev\/urandom is not readable; using crypto/);
});
