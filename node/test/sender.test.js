'use strict';
// The Node sender against hostile servers and hosts: a wall-clock deadline whatever the server
// does (a body or headers dripped a byte a second), no response body ever read, a lock that only
// its owner releases, and a child process that nothing of the host's directory or Node options
// reaches.

const test = require('node:test');
const assert = require('assert');
const childProcess = require('child_process');
const fs = require('fs');
const net = require('net');
const path = require('path');
const { post } = require('../lib/transport');
const sender = require('../lib/sender');
const spool = require('../lib/spool');
const { tryLock } = require('../lib/_files');
const { NODE_DIR, tmpdir, cleanEnv } = require('./support');

const LINUX = process.platform === 'linux';

/**
 * A server that answers every request by dripping: 'body' sends the status line and headers at
 * once, then one body byte a second forever; 'headers' sends the status line, then one header byte
 * a second forever. Resolves to {url, close, requests}.
 */
function dripServer(what) {
  const sockets = new Set();
  let requests = 0;
  const srv = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    let seen = '';
    socket.on('data', (chunk) => {
      seen += chunk.toString('latin1');
      if (!seen.includes('\r\n\r\n') || socket.dripping) return;
      socket.dripping = true;
      requests += 1;
      socket.write(what === 'body' ? 'HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n' : 'HTTP/1.1 200 OK\r\n');
      const timer = setInterval(() => socket.write('x'), 1000);
      socket.on('close', () => clearInterval(timer));
    });
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${srv.address().port}/api/v1/reports`,
    requests: () => requests,
    close: () => {
      for (const s of sockets) s.destroy();
      srv.close();
    },
  })));
}

/** ``promise``, or 'still running' after ``ms``. */
function within(promise, ms) {
  let timer;
  return Promise.race([promise, new Promise((resolve) => { timer = setTimeout(() => resolve('still running'), ms); })])
    .finally(() => clearTimeout(timer));
}

test('a response body dripped a byte a second is never read: the post ends with the headers', async () => {
  const server = await dripServer('body');
  try {
    const result = await within(post(server.url, Buffer.from('{}\n'), 30), 10000);
    assert.notStrictEqual(result, 'still running');
    assert.strictEqual(result.delivered, true);
  } finally {
    server.close();
  }
});

test('headers dripped a byte a second: the timeout bounds the whole request, not each read', async () => {
  const server = await dripServer('headers');
  try {
    const result = await within(post(server.url, Buffer.from('{}\n'), 2), 15000);
    assert.notStrictEqual(result, 'still running');
    assert.deepStrictEqual([result.delivered, result.retry, result.reason], [false, true, 'timeout']);
  } finally {
    server.close();
  }
});

test('the sender process ends within its deadline against a server that drips its headers', { timeout: 60000 }, async () => {
  const server = await dripServer('headers');
  const dir = tmpdir('spool');
  try {
    spool.enqueue(dir, server.url, 'p-drip', Buffer.from('{}\n'), 'a'.repeat(32));
    const started = Date.now();
    // A request timeout far beyond the run's deadline of 3 seconds: the deadline must win.
    const child = childProcess.spawn(process.execPath, [path.join(NODE_DIR, 'lib', 'sender.js'), dir, '60', '3'],
      { env: cleanEnv(tmpdir('home')), stdio: 'ignore' });
    const code = await within(new Promise((resolve) => child.on('exit', (c, signal) => resolve(signal || c))), 20000);
    if (code === 'still running') child.kill('SIGKILL');
    assert.notStrictEqual(code, 'still running', 'the sender outlived its deadline');
    assert.ok(Date.now() - started < 15000);
    assert.ok(server.requests() >= 1);
    // The report stays queued for a later run; the lock is gone with its owner.
    assert.strictEqual(spool.entries(dir).length, 1);
    assert.ok(!fs.existsSync(path.join(dir, '.sender-node.lock')));
  } finally {
    server.close();
  }
});

test('a lock is released only by its owner: a lock taken over meanwhile stays', () => {
  const dir = tmpdir('lock');
  const file = path.join(dir, 'x.lock');
  const release = tryLock(file, 60000);
  assert.ok(release);
  assert.strictEqual(tryLock(file, 60000), null, 'held by a live owner');
  // Another process took it over (this one was judged stale, say after a suspend past its deadline).
  fs.unlinkSync(file);
  const other = tryLock(file, 60000);
  assert.ok(other);
  const held = fs.readFileSync(file, 'utf8');
  release();
  assert.strictEqual(fs.readFileSync(file, 'utf8'), held, 'the first owner removed a lock it does not own');
  other();
  assert.ok(!fs.existsSync(file));
});

test('a stale lock (its owner is gone) is taken over; a young lock of a live owner never is', () => {
  const dir = tmpdir('lock');
  const file = path.join(dir, 'x.lock');
  const dead = childProcess.spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  fs.writeFileSync(file, `${dead.stdout} ${require('os').hostname()} 0123\n`);
  const release = tryLock(file, 60000);
  assert.ok(release, 'the lock of a process that is gone is taken over');
  release();
  const live = childProcess.spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
  try {
    fs.writeFileSync(file, `${live.pid} ${require('os').hostname()} 4567\n`);
    assert.strictEqual(tryLock(file, 60000), null);
    assert.strictEqual(fs.readFileSync(file, 'utf8'), `${live.pid} ${require('os').hostname()} 4567\n`);
  } finally {
    live.kill('SIGKILL');
  }
});

test('our child processes get a fixed working directory and none of the host\'s NODE_OPTIONS or NODE_PATH', () => {
  const saved = Object.assign({}, process.env);
  try {
    Object.assign(process.env, { NODE_OPTIONS: '--require ./evil.js', NODE_PATH: '/tmp/evil', NODE_EXTRA_CA_CERTS: '/etc/ca.pem' });
    const options = sender.childOptions('/somewhere');
    assert.strictEqual(options.cwd, '/somewhere');
    assert.strictEqual(options.env.NODE_OPTIONS, undefined);
    assert.strictEqual(options.env.NODE_PATH, undefined);
    assert.strictEqual(options.env.NODE_EXTRA_CA_CERTS, '/etc/ca.pem', 'a corporate CA still reaches the sender');
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
});

test('the detached sender runs in / and drains a relative TELLY_SPOOL_DIR, without NODE_PATH or NODE_OPTIONS',
  { skip: !LINUX, timeout: 60000 }, async () => {
    const server = await dripServer('headers'); // keeps the sender busy while it is looked at
    const work = tmpdir('work');
    fs.writeFileSync(path.join(work, 'evil.js'), "require('fs').writeFileSync(__dirname + '/ran', 'yes');\n");
    const saved = { cwd: process.cwd(), env: Object.assign({}, process.env) };
    let child = null;
    try {
      process.chdir(work);
      Object.assign(process.env, cleanEnv(tmpdir('home'), { NODE_PATH: work, NODE_OPTIONS: `--require ${path.join(work, 'evil.js')}` }));
      spool.enqueue('spool', server.url, 'p-env', Buffer.from('{}\n'), 'b'.repeat(32));
      child = sender.spawnDetached('spool', 30);
      assert.ok(child && child.pid);
      const asked = await within(new Promise((resolve) => {
        const poll = setInterval(() => {
          if (server.requests() > 0) {
            clearInterval(poll);
            resolve('asked');
          }
        }, 50);
      }), 20000);
      assert.strictEqual(asked, 'asked', 'the sender never posted the queued report');
      assert.strictEqual(fs.readlinkSync(`/proc/${child.pid}/cwd`), '/');
      const environ = fs.readFileSync(`/proc/${child.pid}/environ`, 'utf8').split('\0');
      assert.ok(!environ.some((e) => e.startsWith('NODE_PATH=') || e.startsWith('NODE_OPTIONS=')), environ.join(' '));
      assert.ok(!fs.existsSync(path.join(work, 'ran')));
    } finally {
      process.chdir(saved.cwd);
      for (const k of Object.keys(process.env)) if (!(k in saved.env)) delete process.env[k];
      Object.assign(process.env, saved.env);
      if (child) child.kill('SIGKILL');
      server.close();
    }
  });

test('the sender builds each queued counts entry into its report, same name stem; an entry it cannot build is a loss', async () => {
  const { capture } = require('../lib/pipeline');
  const schema = require('../lib/schema');
  const dir = tmpdir('spool');
  const project = { project_id: 'p-built', name: 'built', version: '1.2.3', level2: true, root: null };
  const captured = capture(project, { 'built.f': 3 }, { trigger: 'exit', engine: 'cjs' });
  const name = spool.enqueueCounts(dir, 'http://127.0.0.1:9/api/v1/reports', 'p-built', captured, true);
  fs.writeFileSync(path.join(dir, `${'2'.padStart(20, '0')}-${'b'.repeat(32)}.node-counts`), '{not json', { mode: 0o600 });
  const odd = Object.assign({}, captured, { report_id: 'c'.repeat(32), stats: { 'built.f': 'many' } });
  spool.enqueueCounts(dir, 'http://127.0.0.1:9/api/v1/reports', 'p-odd', odd);
  // A deadline already past: the sender builds what is queued, then sends nothing.
  await sender.drain(dir, { deadline: Date.now() / 1000 - 1 });
  assert.deepStrictEqual(spool.countsEntries(dir), []);
  assert.deepStrictEqual(spool.entries(dir), [`${spool.stemOf(name)}.report`]);
  const [header, body] = spool.read(dir, spool.entries(dir)[0]);
  assert.deepStrictEqual([header.url, header.project_id, header.optin], ['http://127.0.0.1:9/api/v1/reports', 'p-built', true]);
  const built = JSON.parse(body.toString('utf8'));
  assert.strictEqual(schema.validate(schema.load('report.schema.json'), built), null);
  assert.deepStrictEqual([built.report_id, built.stats, built.created_at], [captured.report_id, { 'built.f': 3 }, captured.created_at]);
  assert.ok(built.platform.os && built.level2 && built.level2.user, 'the facts and hashes the sender adds');
  const losses = fs.readFileSync(path.join(dir, 'losses.log'), 'utf8').trim().split('\n').map((l) => l.split(' ').slice(1).join(' '));
  assert.deepStrictEqual(losses.slice(0, 2).sort(), ['spool-corrupt null', 'spool-corrupt p-odd']);
});

test('a program\'s exit queues its counts and builds no report: no Level II hashes, facts or dependency versions in the host', () => {
  const { REGISTER, node, writeTree } = require('./support');
  const app = tmpdir('app');
  writeTree(app, {
    'node_modules/watched/package.json': { name: 'watched', version: '1.0.0', dependencies: { dep: '1' },
      telly: { project_id: 'watched-project', endpoint: 'http://127.0.0.1:9' } },
    'node_modules/watched/index.js': 'exports.f = () => 1;\n',
    'node_modules/dep/package.json': { name: 'dep', version: '4.5.6' },
    // What the program requires from here on (the client's exit included) is recorded; the
    // handler, registered after the client's own exit handler, runs after the flush.
    'app.js': "const M = require('module'); const load = M._load; const asked = [];\n"
      + "M._load = function (request) { asked.push(request); return load.apply(this, arguments); };\n"
      + "require('watched').f(); process.on('exit', () => require('fs').writeSync(1, JSON.stringify({ asked, "
      + `files: Object.keys(require.cache).filter((f) => f.startsWith(${JSON.stringify(NODE_DIR + path.sep)}) `
      + "|| f.includes('node_modules')) })));\n",
  });
  const home = tmpdir('home');
  const spoolDir = path.join(home, '.cache', 'telly_autoinst', 'spool');
  fs.mkdirSync(spoolDir, { recursive: true, mode: 0o700 });
  spool.stampSender(spoolDir); // a sender took the spool just now: this exit starts none
  const done = node(['--require', path.join(NODE_DIR, 'register.js'), 'app.js'], { cwd: app, env: cleanEnv(home) });
  assert.strictEqual(done.status, 0, done.stderr);
  const { asked, files } = JSON.parse(done.stdout);
  const loaded = files.map((f) => path.relative(NODE_DIR, f));
  assert.ok(loaded.includes('lib/spool.js'), 'the client\'s own files are listed');
  for (const work of ['lib/report.js', 'lib/identity.js', 'lib/sender.js', 'lib/_toml.js']) assert.ok(!loaded.includes(work), `${work} loaded`);
  // Naming the entry and its report takes kernel random bytes, not Node's crypto module (2-3 ms to load).
  assert.ok(!asked.includes('crypto'), 'crypto loaded');
  assert.ok(!loaded.some((f) => f.includes('node_modules/dep')), 'a dependency read in the host');
  const [entry] = spool.countsEntries(spoolDir);
  const queued = spool.readCounts(spoolDir, entry);
  assert.deepStrictEqual([queued.project_id, queued.captured.stats, queued.captured.level2],
    ['watched-project', { 'watched.f': 1 }, true]);
  assert.deepStrictEqual(spool.entries(spoolDir), []);
});
