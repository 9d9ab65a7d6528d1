'use strict';
// The spool is shared with the Python client: a report queued by Node is drained by the Python
// sender and the other way round, both against a real local HTTP server; losses are recorded.

const test = require('node:test');
const assert = require('assert');
const fs = require('fs');
const http = require('http');
const path = require('path');
const zlib = require('zlib');
const spool = require('../lib/spool');
const sender = require('../lib/sender');
const { promisify } = require('util');
const { execFile } = require('child_process');
const { tmpdir, python, REPO, cleanEnv } = require('./support');

/** Python run asynchronously: the HTTP server below lives in this process's event loop. */
async function runPython(code, { env }) {
  const { stdout } = await promisify(execFile)(python(), ['-c', code], { env: Object.assign({}, env, { PYTHONPATH: REPO }) });
  return stdout;
}

function server(statuses) {
  const bodies = [];
  const srv = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      bodies.push(zlib.gunzipSync(Buffer.concat(chunks)).toString());
      res.statusCode = statuses.length ? statuses.shift() : 200;
      res.end('{}');
    });
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve({ srv, bodies, url: `http://127.0.0.1:${srv.address().port}/api/v1/reports` })));
}

test('Node queues, the Python sender drains; Python queues, the Node sender drains', async () => {
  const { srv, bodies, url } = await server([]);
  try {
    const dir = tmpdir('spool');
    spool.enqueue(dir, url, 'p-node', Buffer.from('{"from": "node"}\n'), 'a'.repeat(32));
    const env = cleanEnv(tmpdir('home'));
    await runPython(`
from telly_autoinst import sender
print(sender.drain(${JSON.stringify(dir)}))`, { env });
    assert.deepStrictEqual(bodies, ['{"from": "node"}\n']);
    assert.deepStrictEqual(spool.entries(dir), []);
    await runPython(`
from telly_autoinst import spool
spool.enqueue(${JSON.stringify(dir)}, ${JSON.stringify(url)}, "p-py", b'{"from": "python"}\\n', "b" * 32)`, { env });
    assert.deepStrictEqual(await sender.drain(dir), [1, 0]);
    assert.deepStrictEqual(bodies[1], '{"from": "python"}\n');
  } finally {
    srv.close();
  }
});

test('counts queued by a Python host are left to the Python sender, which builds and sends the report', async () => {
  const { srv, bodies, url } = await server([]);
  try {
    const dir = tmpdir('spool');
    const env = cleanEnv(tmpdir('home'));
    const base = url.replace(/\/api\/v1\/reports$/, '');
    // What a Python host's exit writes with the default storage: its counts, not a report.
    await runPython(`
from types import SimpleNamespace
from telly_autoinst import pipeline
project = SimpleNamespace(project_id="p-counts", distribution=None, packages=("requests",), level2=True,
                          level2_plaintext=False, engine="auto")
captured = pipeline.capture(project, {"requests.get": 2}, trigger="exit")
pipeline.enqueue_counts(${JSON.stringify(dir)}, ${JSON.stringify(base)}, "p-counts", captured)`, { env });
    const [name] = fs.readdirSync(dir).filter((n) => !n.startsWith('.'));
    assert.match(name, /^\d{20}-[0-9a-f]{32}\.counts$/);
    // The Node sender does not claim the entry: not listed, not counted, not touched.
    assert.deepStrictEqual(spool.entries(dir), []);
    assert.deepStrictEqual(await sender.drain(dir), [0, 0]);
    assert.ok(fs.existsSync(path.join(dir, name)));
    assert.deepStrictEqual(bodies, []);
    await runPython(`
from telly_autoinst import sender
print(sender.drain(${JSON.stringify(dir)}))`, { env });
    assert.strictEqual(bodies.length, 1);
    const report = JSON.parse(bodies[0]);
    assert.strictEqual(report.project_id, 'p-counts');
    assert.deepStrictEqual(report.stats, { 'requests.get': 2 });
    assert.strictEqual(report.report_id, name.slice(21, 53));
    assert.deepStrictEqual(fs.readdirSync(dir).filter((n) => !n.startsWith('.')), []);
  } finally {
    srv.close();
  }
});

test('a refused report is dropped and recorded; a retryable one waits in the spool', async () => {
  const { srv, url } = await server([422, 503, 503, 503]);
  try {
    const dir = tmpdir('spool');
    spool.enqueue(dir, url, 'p-bad', Buffer.from('{}'), 'c'.repeat(32));
    spool.enqueue(dir, url, 'p-later', Buffer.from('{}'), 'd'.repeat(32));
    const [done, left] = await sender.drain(dir, { wait: async () => {} });
    assert.deepStrictEqual([done, left], [1, 1]);
    assert.match(fs.readFileSync(path.join(dir, 'losses.log'), 'utf8'), /^\d+ http-422 p-bad\n$/);
    const [header] = spool.read(dir, spool.entries(dir)[0]);
    assert.strictEqual(header.attempts, 3);
    assert.ok(header.not_before > Date.now() / 1000);
  } finally {
    srv.close();
  }
});

test('a report queued before the user opted out is dropped by the sender, never sent', async () => {
  const { srv, bodies, url } = await server([]);
  const home = tmpdir('home');
  const saved = process.env.HOME;
  process.env.HOME = home;
  try {
    const dir = tmpdir('spool');
    spool.enqueue(dir, url, 'p-out', Buffer.from('{}'), 'e'.repeat(32));
    spool.enqueue(dir, url, 'p-optin', Buffer.from('{}'), 'f'.repeat(32), true);
    spool.enqueue(dir, url, 'p-fine', Buffer.from('{"ok": 1}'), '1'.repeat(32));
    assert.strictEqual(spool.read(dir, spool.entries(dir)[1])[0].optin, true, 'the header carries the opt-in flag');
    fs.writeFileSync(path.join(home, '.telly_optout'), 'p-out\n');
    assert.deepStrictEqual(await sender.drain(dir), [1, 0]);
    assert.deepStrictEqual(bodies, ['{"ok": 1}']);
    const losses = fs.readFileSync(path.join(dir, 'losses.log'), 'utf8').split('\n').filter(Boolean).map((l) => l.split(' ').slice(1).join(' '));
    assert.deepStrictEqual(losses, ['opted-out p-out', 'opted-out p-optin']);
  } finally {
    process.env.HOME = saved;
    srv.close();
  }
});

test('proxies come from HTTPS_PROXY / HTTP_PROXY unless NO_PROXY matches; Retry-After in seconds or as a date', () => {
  const { proxyFor, parseRetryAfter } = require('../lib/transport');
  const env = { HTTPS_PROXY: 'http://proxy.example:3128', http_proxy: 'proxy.example:8080', NO_PROXY: 'localhost,.internal.example' };
  assert.strictEqual(proxyFor(new URL('https://telly.example.org/x'), env).href, 'http://proxy.example:3128/');
  assert.strictEqual(proxyFor(new URL('http://telly.example.org/x'), env).port, '8080');
  assert.strictEqual(proxyFor(new URL('https://localhost/x'), env), null);
  assert.strictEqual(proxyFor(new URL('https://a.internal.example/x'), env), null);
  assert.strictEqual(proxyFor(new URL('https://x.example/'), {}), null);
  assert.strictEqual(parseRetryAfter('7'), 7);
  const inTen = parseRetryAfter(new Date(Date.now() + 10000).toUTCString());
  assert.ok(inTen > 8 && inTen <= 10, String(inTen));
  assert.strictEqual(parseRetryAfter('soon'), null);
});

test('a forced scoped package gets a project id the schema accepts', () => {
  const { forcedProjectId } = require('../lib/discovery');
  assert.strictEqual(forcedProjectId('@scope/pkg'), 'local:scope.pkg');
  assert.strictEqual(forcedProjectId('plain-name'), 'local:plain-name');
});

test('the sender posts through an HTTP proxy when HTTP_PROXY says so', async () => {
  const seen = [];
  const proxy = http.createServer((req, res) => {
    seen.push([req.method, req.url, req.headers['content-encoding']]);
    req.resume();
    req.on('end', () => res.end('{}'));
  });
  await new Promise((r) => proxy.listen(0, '127.0.0.1', r));
  const saved = process.env.HTTP_PROXY;
  process.env.HTTP_PROXY = `http://127.0.0.1:${proxy.address().port}`;
  try {
    const result = await require('../lib/transport').post('http://telly.invalid:8470/api/v1/reports', Buffer.from('{}'), 3);
    assert.strictEqual(result.delivered, true);
    assert.deepStrictEqual(seen, [['POST', 'http://telly.invalid:8470/api/v1/reports', 'gzip']]);
  } finally {
    if (saved === undefined) delete process.env.HTTP_PROXY;
    else process.env.HTTP_PROXY = saved;
    proxy.close();
  }
});

test('a host starts a sender only when none took the spool in the last minute, and leaves the caps to the senders', async () => {
  // Listing a full spool at every exit is what a long outage would cost each program, and a
  // sender at every exit what a program run hundreds of times a day would.
  const { makeTransport } = require('../lib/transport');
  const { RETRY_SENDER_INTERVAL_SEC } = require('../lib/_contract');
  const dir = tmpdir('spool');
  const kept = spool.enqueue(dir, 'http://127.0.0.1:9/api/v1/reports', 'p-old', Buffer.from('{}'), '0'.repeat(32));
  const old = `${'1'.padStart(20, '0')}-${kept.split('-')[1]}`; // created in 1970: past the age cap
  fs.renameSync(path.join(dir, kept), path.join(dir, old));
  const transport = makeTransport({ storage_type: 'http_async', spool_dir: dir, http_timeout: 3 });
  const stamp = path.join(dir, '.sender-node.started');
  const real = sender.spawnDetached;
  const started = [];
  try {
    sender.spawnDetached = (directory) => started.push(directory);
    assert.strictEqual(transport.deliver('http://127.0.0.1:9', 'p1', Buffer.from('{}'), '1'.repeat(32)).reason, 'spooled');
    assert.deepStrictEqual(started, [dir]); // no sender ever took this spool
    spool.stampSender(dir);
    assert.strictEqual(fs.statSync(stamp).mode & 0o777, 0o600);
    assert.ok(transport.deliver('http://127.0.0.1:9', 'p2', Buffer.from('{}'), '2'.repeat(32)).delivered);
    assert.deepStrictEqual(started, [dir]); // one took it just now: the report waits for it, or the next
    const then = Date.now() / 1000 - RETRY_SENDER_INTERVAL_SEC - 1;
    fs.utimesSync(stamp, then, then);
    transport.deliver('http://127.0.0.1:9', 'p3', Buffer.from('{}'), '3'.repeat(32));
    assert.deepStrictEqual(started, [dir, dir]); // the first exit after the interval starts one
    const future = Date.now() / 1000 + 3600;
    fs.utimesSync(stamp, future, future); // the clock was set back: the stamp never silences the senders
    transport.deliver('http://127.0.0.1:9', 'p4', Buffer.from('{}'), '4'.repeat(32));
    assert.deepStrictEqual(started, [dir, dir, dir]);
    assert.ok(spool.entries(dir).includes(old), 'the host dropped an entry: that is the senders\' work');
  } finally {
    sender.spawnDetached = real;
  }
  fs.unlinkSync(stamp);
  await sender.drain(dir, { deadline: Date.now() / 1000 + 5 });
  assert.ok(!spool.entries(dir).includes(old));
  assert.match(fs.readFileSync(path.join(dir, 'losses.log'), 'utf8'), /^\d+ spool-too-old p-old\n/);
  assert.ok(fs.statSync(stamp).mtimeMs > Date.now() - 60000, 'the sender stamped the spool as it took it');
});
