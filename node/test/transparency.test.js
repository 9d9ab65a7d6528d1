'use strict';
// Transparency against other people's code: qs, whose published tarball ships its own test
// suite, installed from the npm registry with the test dependencies that suite needs, is tested
// twice, plainly and counted (forced with TELLY_AUTOINST_PACKAGES): the TAP output and exit
// status must be identical, the package's functions must have been counted, and every counted key
// must be one --dry-run lists; then once more with every installed package counted. The install
// is kept in the temp dir and reused by later runs.

const test = require('node:test');
const assert = require('assert');
const childProcess = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { REGISTER, CLI, tmpdir, cleanEnv, node, reports } = require('./support');

const QS = 'qs@6.13.0';
// qs 6.13.0's devDependencies that its test/ files require, as its package.json pins them.
const TEST_DEPS = ['tape@^5.8.1', 'es-value-fixtures@^1.4.2', 'for-each@^0.3.3', 'has-override-mistake@^1.0.1',
  'has-property-descriptors@^1.0.2', 'has-symbols@^1.0.3', 'iconv-lite@^0.5.1', 'mock-property@^1.0.3',
  'object-inspect@^1.13.2', 'qs-iconv@^1.0.4', 'safer-buffer@^2.1.2'];

// ES module packages (zod, date-fns, nanoid, p-limit, chalk; uuid is a dual package), pinned.
const ESM_PACKAGES = ['chalk@5.6.2', 'nanoid@5.1.16', 'p-limit@5.0.0', 'uuid@9.0.1', 'zod@3.25.76', 'date-fns@3.6.0'];

/** npm install ``specs`` into a directory of the temp dir named after ``label``, once. */
function install(label, specs) {
  const dir = path.join(os.tmpdir(), `telly-node-transparency-${label}`);
  const marker = path.join(dir, '.installed');
  if (fs.existsSync(marker)) return dir;
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), '{"private": true}\n');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const done = childProcess.spawnSync(npm, ['install', '--no-audit', '--no-fund', '--loglevel=error', ...specs],
    { cwd: dir, encoding: 'utf8', timeout: 600000 });
  assert.strictEqual(done.status, 0, `npm install failed: ${done.stderr}`);
  fs.writeFileSync(marker, '');
  return dir;
}

test(`${QS}'s own test suite gives identical results plain and counted`, { timeout: 900000 }, () => {
  const dir = install(QS.replace(/[@/]/g, '-'), [QS, ...TEST_DEPS]);
  assert.ok(fs.existsSync(path.join(dir, 'node_modules', 'qs', 'test', 'parse.js')), 'the qs tarball ships its tests');
  const home = tmpdir('home');
  const out = path.join(home, 'reports');
  const env = cleanEnv(home, { TELLY_AUTOINST_PACKAGES: 'qs' });
  const suite = [path.join('node_modules', 'tape', 'bin', 'tape'), 'node_modules/qs/test/*.js'];
  const plain = node(suite, { cwd: dir, env: Object.assign({}, env, { TELLY_DISABLE: '1' }), timeout: 300000 });
  const counted = node(['--require', REGISTER, ...suite], { cwd: dir, timeout: 300000,
    env: Object.assign({}, env, { TELLY_STORAGE_TYPE: 'file', TELLY_LOCAL_STORAGE_PATH: out }) });
  assert.strictEqual(plain.status, 0, plain.stdout.slice(-2000));
  assert.match(plain.stdout, /# pass {2}\d{3,}/);
  assert.deepStrictEqual([counted.status, counted.stdout, counted.stderr], [plain.status, plain.stdout, plain.stderr]);
  const [r] = reports(out);
  assert.strictEqual(r.project_id, 'local:qs');
  assert.ok(r.stats['qs.parse'] > 100 && r.stats['qs.stringify'] > 100, JSON.stringify(r.stats));
  const plan = JSON.parse(node([CLI, '--dry-run', '--json'], { cwd: dir, env }).stdout);
  const listed = plan.distributions.find((d) => d.distribution === 'qs').keys;
  for (const key of Object.keys(r.stats)) assert.ok(listed.includes(key), key);

  // Harder: every installed package counted at once, the test runner (tape) and the intrinsics
  // helpers it and qs stand on (es-abstract, get-intrinsic, es-object-atoms exporting Object) included.
  const everything = fs.readdirSync(path.join(dir, 'node_modules')).filter((n) => !n.startsWith('.') && !n.startsWith('@'));
  const allOut = path.join(home, 'all');
  const all = node(['--require', REGISTER, ...suite], { cwd: dir, timeout: 300000, env: Object.assign({}, env, {
    TELLY_AUTOINST_PACKAGES: everything.join(','), TELLY_STORAGE_TYPE: 'file', TELLY_LOCAL_STORAGE_PATH: allOut }) });
  assert.deepStrictEqual([all.status, all.stdout, all.stderr], [plain.status, plain.stdout, plain.stderr]);
  const counted2 = reports(allOut);
  assert.ok(counted2.length >= 20, `${counted2.length} packages counted`);
  assert.ok(counted2.some((x) => x.project_id === 'local:tape' && Object.keys(x.stats).length > 0));
});

test('real ES module packages behave the same through the facades, and are counted', { timeout: 600000 }, () => {
  const dir = install('esm-1', ESM_PACKAGES);
  fs.copyFileSync(path.join(__dirname, 'esm-packages-app.mjs'), path.join(dir, 'app.mjs'));
  const home = tmpdir('home');
  const out = path.join(home, 'reports');
  const env = cleanEnv(home, { TELLY_AUTOINST_PACKAGES: 'chalk,nanoid,p-limit,uuid,zod,date-fns' });
  const plain = node(['app.mjs'], { cwd: dir, env: Object.assign({}, env, { TELLY_DISABLE: '1' }) });
  assert.strictEqual(plain.status, 0, plain.stderr);
  const counted = node(['--import', REGISTER.replace(/\.js$/, '.mjs'), 'app.mjs'], { cwd: dir,
    env: Object.assign({}, env, { TELLY_STORAGE_TYPE: 'file', TELLY_LOCAL_STORAGE_PATH: out }) });
  assert.deepStrictEqual([counted.status, counted.stdout, counted.stderr], [plain.status, plain.stdout, plain.stderr]);
  const stats = Object.fromEntries(reports(out).map((r) => [r.project_id, r.stats]));
  assert.deepStrictEqual(stats['local:date-fns'], { 'date-fns.addDays': 1, 'date-fns.differenceInDays': 1, 'date-fns.format': 1 });
  assert.strictEqual(stats['local:p-limit']['p-limit.default'], 1);
  assert.strictEqual(stats['local:zod']['zod.ZodType.parse'], 2);
  assert.strictEqual(reports(out).find((r) => r.project_id === 'local:uuid').client.engine, 'cjs+esm');
});
