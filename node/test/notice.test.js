'use strict';
// The README notice: the same text as the Python client's for the same settings, and the command.

const test = require('node:test');
const assert = require('assert');
const { CLI, tmpdir, cleanEnv, node, runPython, demoApp } = require('./support');
const notice = require('../lib/notice');
const settings = require('../lib/settings');

const TABLES = [
  { project_id: 'us-0123456789abcdef01234567' },
  { project_id: 'us-0123456789abcdef01234567', endpoints: { us: 'https://us.collector.invalid', eu: 'https://eu.collector.invalid' } },
  { project_id: 'eu-x', region: 'eu', endpoints: { us: 'https://us.collector.invalid', eu: 'https://eu.collector.invalid' },
    mode: 'optin', send_from_ci: false },
  { project_id: 'p', endpoint: 'https://telemetry.example.com', level2: false },
  { project_id: 'corp-tool', endpoint: 'https://telemetry.corp.invalid', level2_plaintext: true },
];

test('both clients print identical notices for the same settings, in every format and for both runtimes', () => {
  const python = JSON.parse(runPython(`
import json, sys
from telly_autoinst import notice
from telly_autoinst.settings import project_settings
out = []
for table in json.loads(sys.stdin.read()):
    project = project_settings(table, "t", distribution="mypkg", default_packages=("mypkg",), environ={}, user_config={})
    out.append({r: {f: notice.render(notice.build("mypkg", project, runtime=r), f) for f in notice.FORMATS}
                for r in notice.RUNTIMES})
print(json.dumps(out))`, { input: JSON.stringify(TABLES) }));
  let compared = 0;
  TABLES.forEach((table, i) => {
    const project = settings.projectSettings(table, 't', { name: 'mypkg', env: {}, userConfig: {} });
    for (const runtime of Object.keys(notice.RUNTIMES)) {
      for (const format of notice.FORMATS) {
        assert.strictEqual(notice.render(notice.build('mypkg', project, runtime), format), python[i][runtime][format],
          `${JSON.stringify(table)} ${runtime} ${format}`);
        compared += 1;
      }
    }
  });
  assert.strictEqual(compared, TABLES.length * 6);
  assert.match(python[4].node.text.replace(/\s+/g, ' '), /TELLY_LEVEL2_PLAINTEXT=1, your user name/);
});

test('notice prints the chosen package\'s notice from its own field; errors go to stderr with exit 2', () => {
  const app = demoApp();
  const env = cleanEnv(tmpdir('home'), { TELLY_INCLUDE_LEVEL2: '0', TELLY_HTTP_SERVER: 'http://127.0.0.1:1' });
  const run = (...args) => node([CLI, 'notice', ...args], { cwd: app, env });
  const several = run();
  assert.strictEqual(several.status, 2);
  assert.strictEqual(several.stdout, '');
  assert.match(several.stderr, /several packages opted in \(demo-cjs, demo-esm, demo-fn\); choose one with --package NAME/);
  const text = run('--package', 'demo-cjs', '--format', 'text');
  assert.strictEqual(text.status, 0, text.stderr);
  const flat = text.stdout.replace(/\s+/g, ' ');
  assert.match(flat, /npx telly-autoinst optout demo-cjs-project;/);
  // This machine's overrides are not what every user reads: the package's own field is.
  assert.match(flat, /Reports go to our collector at http:\/\/127\.0\.0\.1:9\./);
  assert.match(flat, /HMAC-SHA-256/);
  const md = run('--package', 'demo-cjs');
  assert.ok(md.stdout.startsWith('## Usage statistics\n'));
  assert.strictEqual(JSON.parse(run('--package', 'demo-cjs', '--json').stdout).text, md.stdout);
  const unknown = run('--package', 'plain-dep');
  assert.strictEqual(unknown.status, 2);
  assert.match(unknown.stderr, /package "plain-dep" did not opt in to telly-autoinst or is not installed \(opted-in packages: demo-cjs, demo-esm, demo-fn\)/);
  const badFormat = run('--package', 'demo-cjs', '--format', 'html');
  assert.strictEqual(badFormat.status, 2);
  assert.match(badFormat.stderr, /unknown notice format "html"; use one of md, rst, text/);
  const nothing = node([CLI, 'notice'], { cwd: tmpdir('empty'), env });
  assert.strictEqual(nothing.status, 2);
  assert.match(nothing.stderr, /no package visible from here opted in/);
});

test('plaintext Level II only when the author and the user agreed; a user cannot agree for the author', () => {
  const { fromCaptured } = require('../lib/report');
  const { capture } = require('../lib/pipeline');
  const build = (project, stats, options) => fromCaptured(capture(project, stats, options));
  const env = {};
  for (const [author, user, sent] of [[false, false, false], [true, false, false], [false, true, false], [true, true, true]]) {
    const project = settings.projectSettings({ project_id: 'p', level2_plaintext: author }, 't', { env, userConfig: {} });
    const report = build(project, { 'p.f': 1 }, { trigger: 'exit', plaintextAccepted: user });
    assert.strictEqual('level2_plaintext' in report, sent, `${author} ${user}`);
    if (sent) {
      assert.deepStrictEqual(Object.keys(report.level2_plaintext).sort(), ['home', 'host', 'machine', 'user']);
      // Valid by the published schema, which wants the hashes beside the plaintext.
      const schema = require('../lib/schema');
      const reportSchema = schema.load('report.schema.json');
      assert.strictEqual(schema.validate(reportSchema, report), null);
      assert.match(schema.validate(reportSchema, Object.assign({}, report, { level2: null })), /level2: expected object/);
    }
  }
  assert.throws(() => settings.projectSettings({ project_id: 'p' }, 't',
    { env, userConfig: { project: { p: { level2_plaintext: true } } } }), /only the package's own table may set it/);
  assert.strictEqual(settings.processSettings({ TELLY_LEVEL2_PLAINTEXT: '1' }, {}).accept_level2_plaintext, true);
});

test('status says plain only when the package and the user agreed to plaintext Level II', () => {
  const app = demoApp({
    'node_modules/corp-tool/package.json': { name: 'corp-tool', version: '1.0.0', main: 'index.js',
      telly: { project_id: 'corp-tool-project', endpoint: 'http://127.0.0.1:9', level2_plaintext: true } },
    'node_modules/corp-tool/index.js': 'exports.f = () => 1;\n',
  });
  const home = tmpdir('home');
  // Columns: PACKAGE PROJECT STATE LEVEL II WHY.
  const levelOf = (line) => line.split(/\s+/)[3];
  const row = (extra) => levelOf(node([CLI, 'status'], { cwd: app, env: cleanEnv(home, extra) }).stdout
    .split('\n').find((line) => line.split(/\s+/)[1] === 'corp-tool-project'));
  assert.strictEqual(row({ TELLY_LEVEL2_PLAINTEXT: '1' }), 'plain');
  assert.strictEqual(row({}), 'yes');
  const other = node([CLI, 'status'], { cwd: app, env: cleanEnv(home, { TELLY_LEVEL2_PLAINTEXT: '1' }) }).stdout
    .split('\n').find((line) => line.split(/\s+/)[1] === 'demo-cjs-project');
  assert.strictEqual(levelOf(other), 'yes');
});

test('the Node notice names only the run modes a Node report can hold', () => {
  const project = settings.projectSettings({ project_id: 'p', endpoint: 'https://t.invalid' }, 't', { name: 'x', env: {}, userConfig: {} });
  const text = notice.render(notice.build('x', project, 'node'), 'text').replace(/\s+/g, ' ');
  assert.match(text, /how Node\.js was started \(script, command or REPL\);/);
  assert.doesNotMatch(text, /notebook|module,/);
  // What facts.js can report (the report schema's interpreter.mode), "unknown" aside.
  const { interpreter } = require('../lib/facts');
  assert.ok(['script', 'command', 'repl', 'unknown'].includes(interpreter().mode));
  assert.match(notice.render(notice.build('x', project, 'python'), 'text').replace(/\s+/g, ' '), /REPL or notebook\);/);
});
