'use strict';
// Level I facts about this Node and machine: low-cardinality values, never a path, an argument or
// an environment value. The same facts, table and limits as telly_autoinst/facts.py.

const fs = require('fs');
const os = require('os');

// The variable that proves a CI vendor, and its name; checked in order (facts.py's table).
const CI_VENDORS = [
  ['GITHUB_ACTIONS', 'github_actions'], ['GITLAB_CI', 'gitlab'], ['CIRCLECI', 'circleci'], ['TRAVIS', 'travis'],
  ['JENKINS_URL', 'jenkins'], ['BUILDKITE', 'buildkite'], ['TF_BUILD', 'azure_pipelines'], ['APPVEYOR', 'appveyor'],
  ['BITBUCKET_BUILD_NUMBER', 'bitbucket'], ['TEAMCITY_VERSION', 'teamcity'], ['DRONE', 'drone'],
  ['CODEBUILD_BUILD_ARN', 'aws_codebuild'], ['BUILDER_OUTPUT', 'google_cloud_build'], ['SEMAPHORE', 'semaphore'],
  ['NETLIFY', 'netlify'], ['VERCEL', 'vercel'], ['CF_PAGES', 'cloudflare_pages'], ['HEROKU_TEST_RUN_ID', 'heroku'],
  ['WOODPECKER_CI', 'woodpecker'], ['CIRRUS_CI', 'cirrus'], ['BITRISE_IO', 'bitrise'], ['SCREWDRIVER', 'screwdriver'],
  ['HUDSON_URL', 'hudson'], ['GO_PIPELINE_LABEL', 'gocd'],
];
const CI_GENERIC = ['CI', 'CONTINUOUS_INTEGRATION', 'BUILD_ID', 'BUILD_NUMBER', 'RUN_ID'];

/** [isCi, vendorOrNull] from the environment; CI=false (or 0/no/off) means not CI. */
function ciVendor(env = process.env) {
  const ci = env.CI;
  if (ci !== undefined && ['false', '0', 'no', 'off'].includes(ci.trim().toLowerCase())) return [false, null];
  for (const [variable, vendor] of CI_VENDORS) if (env[variable]) return [true, vendor];
  if (CI_GENERIC.some((v) => env[v])) return [true, null];
  return [false, null];
}

/**
 * How this Node was started, in the report's vocabulary: "script" (node file.js or file.mjs),
 * "command" (node -e / -p), "repl", or "unknown" (a script on stdin). Python's "module"
 * (python -m) and "jupyter" have no Node counterpart.
 */
function runMode() {
  const argv = process.execArgv;
  if (argv.some((a) => a === '-e' || a === '-p' || a.startsWith('--eval') || a.startsWith('--print') || a === '-pe')) {
    return 'command';
  }
  if (process.argv.length > 1 && process.argv[1]) return 'script';
  if (argv.includes('-i') || argv.includes('--interactive') || (process.stdin && process.stdin.isTTY)) return 'repl';
  return 'unknown';
}

function interpreter() {
  return { implementation: 'node', version: process.versions.node.slice(0, 32), mode: runMode() };
}

function read(file, limit = 1 << 20) {
  try {
    return fs.readFileSync(file, 'utf8').slice(0, limit);
  } catch (_) {
    return '';
  }
}

function cpuModel() {
  for (const line of read('/proc/cpuinfo').split('\n')) {
    const at = line.indexOf(':');
    if (at < 0) continue;
    const key = line.slice(0, at).trim();
    const value = line.slice(at + 1).trim();
    if (['model name', 'Hardware', 'cpu model'].includes(key) && value) return value.split(/\s+/).join(' ').slice(0, 128);
  }
  try {
    const cpus = os.cpus();
    if (cpus.length && cpus[0].model) return cpus[0].model.trim().split(/\s+/).join(' ').slice(0, 128) || null;
  } catch (_) { /* no cpu information */ }
  return null;
}

function inContainer() {
  if (fs.existsSync('/.dockerenv') || fs.existsSync('/run/.containerenv')) return true;
  const cgroup = read('/proc/1/cgroup', 65536);
  return ['docker', 'kubepods', 'containerd', 'libpod', 'lxc'].some((m) => cgroup.includes(m));
}

let platformCache = null;

/** OS, release, machine, CPU model and count, total RAM in MiB, and container/CI/WSL flags. */
function platformFacts() {
  if (platformCache === null) {
    const [isCi, vendor] = ciVendor();
    const release = os.release() || '';
    // os.machine() (Node >= 18.9) is uname -m, which Python reports; os.arch() is Node's own naming.
    const machine = typeof os.machine === 'function' ? os.machine() : os.arch();
    const cpuCount = os.cpus().length || null;
    platformCache = {
      os: (os.type() || 'unknown').slice(0, 64),
      release: release.slice(0, 128),
      machine: (machine || 'unknown').slice(0, 64),
      cpu_model: cpuModel(),
      cpu_count: cpuCount,
      memory_mib: Math.max(1, Math.floor(os.totalmem() / (1 << 20))) || null,
      container: inContainer(),
      ci: isCi,
      ci_vendor: vendor,
      wsl: release.toLowerCase().includes('microsoft') || fs.existsSync('/proc/sys/fs/binfmt_misc/WSLInterop'),
    };
  }
  return platformCache;
}

module.exports = { ciVendor, interpreter, platformFacts };
