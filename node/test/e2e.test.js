'use strict';
// End to end: Node programs using an opted-in npm package report through the default path (spool
// and detached sender) to the Python collector, started here as a real server, and the stats API
// shows their counts.

const test = require('node:test');
const assert = require('assert');
const childProcess = require('child_process');
const path = require('path');
const readline = require('readline');
const fs = require('fs');
const { CLI, REGISTER, REPO, tmpdir, cleanEnv, afterSenderInterval, node, python, runPython, demoApp } = require('./support');

// The collector is a Python distribution of its own beside the client, in collector/.
const COLLECTOR_PATH = [REPO, path.join(REPO, 'collector')].join(path.delimiter);

function collector(args, env) {
  const done = childProcess.spawnSync(python(), ['-m', 'telly_autoinst', 'collector', ...args], {
    cwd: REPO, env: Object.assign({}, env, { PYTHONPATH: COLLECTOR_PATH }), encoding: 'utf8', timeout: 120000,
  });
  assert.strictEqual(done.status, 0, done.stderr);
  return done.stdout;
}

function serve(db, env) {
  const proc = childProcess.spawn(python(), ['-m', 'telly_autoinst', 'collector', 'serve', '--port', '0', '--db', db,
    '--min-group', '1'], { cwd: REPO, env: Object.assign({}, env, { PYTHONPATH: COLLECTOR_PATH }), stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    const lines = readline.createInterface({ input: proc.stdout });
    lines.once('line', (line) => {
      const match = /listening on (http:\/\/\S+)/.exec(line);
      if (match) resolve({ proc, url: match[1] });
      else reject(new Error(`collector did not start: ${line}`));
    });
    proc.once('exit', (code) => reject(new Error(`collector exited with ${code}`)));
  });
}

async function until(what, check, seconds = 60) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    if (check()) return;
    assert.ok(Date.now() < deadline, what);
    await new Promise((r) => setTimeout(r, 300));
  }
}

test('counts of real Node programs reach the Python collector and its stats API', { timeout: 180000 }, async () => {
  const work = tmpdir('e2e');
  const db = `sqlite:///${path.join(work, 'e2e.sqlite3')}`;
  const serverEnv = cleanEnv(work);
  const tokens = {};
  // Registered as large (features in daily releases); a huge epsilon makes the noise vanish.
  for (const id of ['demo-cjs-project', 'demo-esm-project']) {
    tokens[id] = JSON.parse(collector(['project', 'create', id, '--project-id', id, '--epsilon-per-day', '1e6',
      '--profile', 'large', '--json', '--db', db], serverEnv)).read_token;
  }
  const server = await serve(db, serverEnv);
  try {
    const app = demoApp({
      'app.js': "const d = require('demo-cjs'); console.log(d.add(2, 3)); const c = new d.Counter(); c.bump(); c.bump();\n",
      'app.mjs': "import { hello } from 'demo-esm'; import { add } from 'demo-cjs'; console.log(hello('x'), add(1, 1));\n",
    });
    // The authors register their packages' keys (and versions) from what the client lists: daily
    // releases carry public names only.
    const listing = path.join(work, 'keys.json');
    const dryRun = node([CLI, '--dry-run', '--json'], { cwd: app, env: cleanEnv(tmpdir('author')) });
    assert.strictEqual(dryRun.status, 0, dryRun.stderr);
    fs.writeFileSync(listing, dryRun.stdout);
    for (const id of Object.keys(tokens)) collector(['project', 'register-keys', '--project', id, listing, '--db', db], serverEnv);
    for (const user of ['alice', 'bob']) {
      const home = tmpdir(user);
      const env = cleanEnv(home, { USER: user, LOGNAME: user, TELLY_HTTP_SERVER: server.url });
      const cjs = node(['--require', REGISTER, 'app.js'], { cwd: app, env });
      assert.deepStrictEqual([cjs.status, cjs.stdout, cjs.stderr], [0, '5\n', '']);
      // A minute later: the run starts a sender of its own (within the minute, it would leave its
      // report to the one that ran, or to the first exit after the minute).
      await afterSenderInterval(home);
      const esm = node(['app.mjs'], { cwd: app, env: Object.assign({}, env, { NODE_OPTIONS: `--import=${REGISTER.replace(/\.js$/, '.mjs')}` }) });
      assert.deepStrictEqual([esm.status, esm.stdout, esm.stderr], [0, 'hello x 2\n', '']);
    }
    // The detached senders post in the background: wait for the six reports to be stored.
    const stored = () => Number(runPython(`
from telly_autoinst_collector.store import open_store
s = open_store(${JSON.stringify(db)})
print(sum(len(s.report_ids(p)) for p in ("demo-cjs-project", "demo-esm-project")))`, { env: serverEnv }).trim());
    await until('the reports never arrived', () => stored() >= 6);
    collector(['publish', '--through-now', '--db', db], serverEnv);
    const stats = async (id) => (await fetch(`${server.url}/api/v1/projects/${id}/stats`,
      { headers: { Authorization: `Bearer ${tokens[id]}` } })).json();
    const cjs = await stats('demo-cjs-project');
    assert.strictEqual(cjs.dau[cjs.dau.length - 1].value, 2);
    const calls = Object.fromEntries(cjs.features.by_calls.map((f) => [f.key, [f.calls, f.users]]));
    assert.deepStrictEqual(calls, { 'demo-cjs.add': [4, 2], 'demo-cjs.Counter': [2, 2], 'demo-cjs.Counter.bump': [4, 2] });
    assert.deepStrictEqual(cjs.versions.series, { '1.2.3': [2] });
    const esm = await stats('demo-esm-project');
    assert.deepStrictEqual(esm.features.by_calls.map((f) => [f.key, f.calls]), [['demo-esm.hello', 2]]);
  } finally {
    server.proc.kill('SIGTERM');
  }
});

test('plaintext Level II from a Node program is stored only where the package, the user and the project agreed',
  { timeout: 180000 }, async () => {
    const work = tmpdir('e2e-plain');
    const db = `sqlite:///${path.join(work, 'plain.sqlite3')}`;
    const serverEnv = cleanEnv(work);
    const tokens = {};
    for (const [id, flag] of [['corp-yes-project', ['--level2-plaintext']], ['corp-no-project', []]]) {
      tokens[id] = JSON.parse(collector(['project', 'create', id, '--project-id', id, '--json', ...flag, '--db', db],
        serverEnv)).read_token;
    }
    const server = await serve(db, serverEnv);
    try {
      const files = { 'app.js': "require('corp-yes').f(); require('corp-no').f();\n" };
      for (const name of ['corp-yes', 'corp-no']) {
        files[`node_modules/${name}/package.json`] = { name, version: '1.0.0', main: 'index.js',
          telly: { project_id: `${name}-project`, level2_plaintext: true } };
        files[`node_modules/${name}/index.js`] = 'exports.f = () => 1;\n';
      }
      const app = demoApp(files);
      for (const [user, accepts] of [['alice', true], ['bob', false]]) {
        const extra = { USER: user, LOGNAME: user, TELLY_HTTP_SERVER: server.url, TELLY_STORAGE_TYPE: 'http', TELLY_SHOW_ME: '1' };
        if (accepts) extra.TELLY_LEVEL2_PLAINTEXT = '1';
        const done = node(['--require', REGISTER, 'app.js'], { cwd: app, env: cleanEnv(tmpdir(user), extra) });
        assert.strictEqual(done.status, 0, done.stderr);
        // On the wire: plaintext beside the hashes for the user who agreed, to both projects.
        assert.strictEqual((done.stderr.match(/"level2_plaintext"/g) || []).length, accepts ? 2 : 0, done.stderr);
      }
      const stored = JSON.parse(runPython(`
import json, sqlalchemy as sa
from telly_autoinst_collector import store as m
s = m.open_store(${JSON.stringify(db)})
with s.engine.begin() as c:
    rows = [(r.project_id, r.user) for r in c.execute(sa.select(m.level2_plaintext))]
print(json.dumps({"plain": rows, "reports": sum(len(s.report_ids(p)) for p in ("corp-yes-project", "corp-no-project"))}))`,
      { env: serverEnv }));
      assert.deepStrictEqual(stored, { plain: [['corp-yes-project', 'alice']], reports: 4 });
      const api = await (await fetch(`${server.url}/api/v1/projects/corp-yes-project/stats`,
        { headers: { Authorization: `Bearer ${tokens['corp-yes-project']}` } })).json();
      assert.deepStrictEqual(api.level2_plaintext.users.map((u) => [u.user, u.reports]), [['alice', 1]]);
    } finally {
      server.proc.kill('SIGTERM');
    }
  });
