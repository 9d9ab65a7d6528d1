'use strict';
// Shared by the tests: throw-away homes and node_modules trees with opted-in packages, running
// Node programs with the hook, and the repository's Python (for vectors and the collector).

const assert = require('assert');
const childProcess = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const NODE_DIR = path.resolve(__dirname, '..');
const REPO = path.resolve(NODE_DIR, '..');
const REGISTER = path.join(NODE_DIR, 'register.js');
const REGISTER_MJS = path.join(NODE_DIR, 'register.mjs');
const CLI = path.join(NODE_DIR, 'bin', 'telly-autoinst.js');

const made = [];
// The test files' own directories go when the test file's process ends (the npm installs of the
// transparency tests are kept on purpose, under fixed names).
process.on('exit', () => {
  for (const dir of made) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch (_) { /* a detached sender may still be writing there */ }
  }
});

function tmpdir(label) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `telly-node-${label}-`));
  made.push(dir);
  return dir;
}

/** Write {relative path: text or object (JSON)} under ``root``. */
function writeTree(root, files) {
  for (const [rel, content] of Object.entries(files)) {
    const file = path.join(root, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  }
  return root;
}

/** An environment with nothing of the developer's own: a fresh HOME, no CI, no TELLY_* of the caller. */
function cleanEnv(home, extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('TELLY_') && !['CI', 'DO_NOT_TRACK', 'NODE_OPTIONS', 'XDG_CONFIG_HOME', 'XDG_CACHE_HOME'].includes(k)) env[k] = v;
  }
  for (const v of ['GITHUB_ACTIONS', 'GITLAB_CI', 'BUILD_ID', 'BUILD_NUMBER', 'RUN_ID', 'CONTINUOUS_INTEGRATION']) delete env[v];
  return Object.assign(env, { HOME: home, CI: 'false' }, extra);
}

/**
 * Once the Node sender that a run in ``home`` started has taken the spool, make its start older
 * than the sender interval, as if a minute passed: the next exit of a watched program starts a
 * sender of its own again.
 */
async function afterSenderInterval(home, seconds = 30) {
  const { FILE_CACHE_DIR, FILE_SPOOL_DIR, FILE_NODE_SPOOL_STAMP, RETRY_SENDER_INTERVAL_SEC } = require('../lib/_contract');
  const stamp = path.join(home, '.cache', FILE_CACHE_DIR, FILE_SPOOL_DIR, FILE_NODE_SPOOL_STAMP);
  for (const deadline = Date.now() + seconds * 1000; !fs.existsSync(stamp);) {
    if (Date.now() > deadline) throw new Error(`no sender took the spool of ${home}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const then = Date.now() / 1000 - RETRY_SENDER_INTERVAL_SEC - 1;
  fs.utimesSync(stamp, then, then);
}

/** Run node synchronously; returns {status, signal, stdout, stderr}. */
function node(args, { cwd, env, input, timeout = 60000 } = {}) {
  const done = childProcess.spawnSync(process.execPath, args, { cwd, env, input, timeout, encoding: 'utf8' });
  if (done.error) throw done.error;
  return done;
}

/** The Python with telly_autoinst importable: TELLY_PYTHON, the worktree's .venv, or python3. */
function python() {
  if (process.env.TELLY_PYTHON) return process.env.TELLY_PYTHON;
  const venv = path.join(REPO, '.venv', 'bin', 'python');
  return fs.existsSync(venv) ? venv : 'python3';
}

function runPython(code, { env = process.env, input } = {}) {
  const done = childProcess.spawnSync(python(), ['-c', code], {
    // The client at the top of the repository, the collector (its own distribution) in collector/.
    env: Object.assign({}, env, { PYTHONPATH: [REPO, path.join(REPO, 'collector')].join(path.delimiter) }), input,
    encoding: 'utf8', timeout: 120000,
  });
  assert.strictEqual(done.status, 0, `python failed: ${done.stderr}`);
  return done.stdout;
}

/** Reports written by the file transport into ``dir``, parsed, sorted by project id. */
function reports(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((n) => n.endsWith('.json'))
    .map((n) => JSON.parse(fs.readFileSync(path.join(dir, n), 'utf8')))
    .sort((a, b) => (a.project_id < b.project_id ? -1 : a.project_id > b.project_id ? 1 : 0));
}

/** An app directory whose node_modules holds the demo packages (CommonJS, ESM, dual) and an unwatched one. */
function demoApp(files = {}, root = tmpdir('app')) {
  writeTree(root, Object.assign({
    'node_modules/demo-cjs/package.json': { name: 'demo-cjs', version: '1.2.3', main: 'index.js',
      dependencies: { 'plain-dep': '^1.0.0' }, telly: { project_id: 'demo-cjs-project', endpoint: 'http://127.0.0.1:9' } },
    'node_modules/demo-cjs/index.js': `
class Counter { constructor(n) { this.n = n || 0; } bump() { return ++this.n; } static make() { return new Counter(5); } }
function add(a, b) { return a + b; }
async function later(x) { return x * 2; }
function* gen() { yield 1; yield 2; }
function boom() { throw new TypeError('boom'); }
function who() { return this && this.tag; }
module.exports = { add, later, gen, boom, who, Counter, _private() { return 1; }, VALUE: 3 };
`,
    'node_modules/demo-cjs/lib/internal.js': 'exports.helper = () => 1;\n',
    'node_modules/plain-dep/package.json': { name: 'plain-dep', version: '1.4.0' },
    'node_modules/plain-dep/index.js': 'exports.f = () => 1;\n',
    'node_modules/demo-esm/package.json': { name: 'demo-esm', version: '2.0.0', type: 'module',
      exports: { '.': './index.js', './sub': './sub.js' }, telly: { project_id: 'demo-esm-project', endpoint: 'http://127.0.0.1:9' } },
    'node_modules/demo-esm/index.js': `
export function hello(name) { return \`hello \${name}\`; }
export class Shape { area() { return 0; } }
export let counter = 0;
export function inc() { counter++; }
export default function main() { return 'main'; }
export * from './more.js';
`,
    'node_modules/demo-esm/more.js': 'export const twice = (x) => 2 * x;\n',
    'node_modules/demo-esm/sub.js': 'export function subfn() { return \'sub\'; }\n',
    'node_modules/demo-fn/package.json': { name: 'demo-fn', version: '0.1.0', telly: { project_id: 'demo-fn-project',
      endpoint: 'http://127.0.0.1:9', exclude: ['demo-fn.skip*'] } },
    'node_modules/demo-fn/index.js': `
function greet(name) { return 'hi ' + name; }
greet.loud = (name) => greet(name).toUpperCase();
greet.skipMe = () => 0;
module.exports = greet;
`,
  }, files));
  return root;
}

module.exports = {
  NODE_DIR, REPO, REGISTER, REGISTER_MJS, CLI, tmpdir, writeTree, cleanEnv, afterSenderInterval, node, python, runPython, reports,
  demoApp,
};
