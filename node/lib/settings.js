'use strict';
// Every setting, declared once as data, and the layering of its sources into frozen objects.
// The Node counterpart of telly_autoinst/settings.py: the same names, environment variables,
// defaults and user config file. Sources, lowest to highest precedence:
//   1. the default below;
//   2. the package's own "telly" field in package.json, checked against config/telly.schema.json;
//   3. the user's config file, $XDG_CONFIG_HOME/telly_autoinst/config.toml (top-level keys, then
//      [project."<project_id>"] tables);
//   4. environment variables.
// Project settings come from all four; process settings only from 1, 3 and 4, because a package
// must not be able to turn on show_me or move this user's spool.

const { TRUTHY, FALSY, userConfigPath } = require('./_env');

class ConfigError extends Error {}

const USER_CONFIG_MAX = 1 << 20;

function bool(value, where) {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string') {
    const lowered = value.trim().toLowerCase();
    if (TRUTHY.has(lowered)) return true;
    if (FALSY.has(lowered)) return false;
  }
  throw new ConfigError(`${where}: expected true or false, got ${JSON.stringify(value)}`);
}

function str(value, where) {
  if (typeof value === 'string' && value.trim()) return value.trim();
  throw new ConfigError(`${where}: expected a non-empty string, got ${JSON.stringify(value)}`);
}

function optStr(value, where) {
  return value === null || value === undefined || value === '' ? null : str(value, where);
}

function positive(value, where) {
  const number = typeof value === 'boolean' ? NaN : Number(value);
  if (!(number > 0)) throw new ConfigError(`${where}: expected a positive number of seconds, got ${JSON.stringify(value)}`);
  return number;
}

/** A list of strings; a comma-separated string is accepted from the environment. */
function names(value, where) {
  const list = typeof value === 'string' ? value.split(',') : value;
  if (!Array.isArray(list) || !list.every((v) => typeof v === 'string')) {
    throw new ConfigError(`${where}: expected a list of strings, got ${JSON.stringify(value)}`);
  }
  return Object.freeze(list.map((v) => v.trim()).filter(Boolean));
}

const NPM_NAME = /^(@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*$/i;

function packageNames(value, where) {
  const list = names(value, where);
  for (const name of list) {
    // npm names for the Node client; Python module names are also npm-valid, so one list serves both.
    if (!NPM_NAME.test(name)) throw new ConfigError(`${where}: ${JSON.stringify(name)} is not a package name`);
  }
  return list;
}

function choice(...allowed) {
  return (value, where) => {
    if (typeof value === 'string' && allowed.includes(value.trim().toLowerCase())) return value.trim().toLowerCase();
    throw new ConfigError(`${where}: expected one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  };
}

/** A choice among the values config/telly.schema.json lists for ``key`` (read when first needed). */
function schemaChoice(key) {
  let parse = null;
  return (value, where) => {
    if (parse === null) parse = choice(...require('./schema').load('telly.schema.json').properties[key].enum);
    return parse(value, where);
  };
}

function projectId(value, where) {
  const id = str(value, where);
  if (id.length > 128 || !/^[A-Za-z0-9._:-]+$/.test(id)) {
    throw new ConfigError(`${where}: ${JSON.stringify(id)} is not a valid project id: 1 to 128 of A-Z a-z 0-9 . _ : -`);
  }
  return id;
}

function endpoints(value, where) {
  if (!value || typeof value !== 'object' || Array.isArray(value) || !Object.keys(value).length) {
    throw new ConfigError(`${where}: expected a table like {"us": "https://...", "eu": "https://..."}`);
  }
  const unknown = Object.keys(value).filter((k) => k !== 'us' && k !== 'eu').sort();
  if (unknown.length) throw new ConfigError(`${where}: unknown region(s) ${unknown.join(', ')}; use us and eu`);
  const out = {};
  for (const region of Object.keys(value).sort()) out[region] = str(value[region], `${where}.${region}`);
  return Object.freeze(out);
}

// name, scope, parse, default, environment variable, doc. Same rows as settings.py's SETTINGS.
const SETTINGS = Object.freeze([
  ['project_id', 'project', projectId, null, null, 'Identifies the project at the collector. Required.'],
  ['packages', 'project', names, [], null, 'Python only (top-level modules); accepted and ignored by the Node client.'],
  ['include', 'project', names, ['*'], null, 'Glob patterns on count keys (pkg.export); only matches are counted.'],
  ['exclude', 'project', names, [], null, 'Glob patterns on count keys that are never counted; wins over include.'],
  ['endpoint', 'project', optStr, null, null, 'Collector base URL. Default: the endpoint of `region` in `endpoints`.'],
  ['endpoints', 'project', endpoints, {}, null, 'Per-region collector URLs: {"us": ..., "eu": ...}.'],
  ['region', 'project', choice('us', 'eu'), 'us', 'TELLY_REGION', 'Which of `endpoints` receives this project\'s reports.'],
  ['engine', 'project', schemaChoice('engine'), 'auto', 'TELLY_ENGINE',
    'Python only (counting engine); the Node client always wraps exports and reports cjs/esm.'],
  ['mode', 'project', choice('optout', 'optin'), 'optout', null,
    'optin: send only if the user ran `npx telly-autoinst optin PROJECT_ID`.'],
  ['level2', 'project', bool, true, 'TELLY_INCLUDE_LEVEL2',
    'Send Level II data (salted HMAC hashes of user, home, machine id, hostname).'],
  ['send_from_ci', 'project', bool, true, 'TELLY_SEND_FROM_CI', 'Send reports from CI runs (they are flagged as CI either way).'],
  // One of three agreements (with accept_level2_plaintext and the collector project's flag); only
  // the package's own field may set it, never a user override (see AUTHOR_ONLY_KEYS).
  ['level2_plaintext', 'project', bool, false, null,
    'Internal corporate deployments only: the author agrees to send Level II values in plain text when the user '
    + 'also sets TELLY_LEVEL2_PLAINTEXT=1.'],
  ['optin_only', 'process', bool, false, 'TELLY_OPTIN', 'Opt-in mode for every project: send only for projects listed in ~/.telly_optin.'],
  ['force_packages', 'process', packageNames, [], 'TELLY_AUTOINST_PACKAGES',
    'Packages to count even though they did not opt in (project id local:NAME).'],
  ['storage_type', 'process', choice('http_async', 'http', 'file'), 'http_async', 'TELLY_STORAGE_TYPE',
    'How reports leave: detached sender, synchronous HTTP, or files.'],
  ['local_storage_path', 'process', optStr, null, 'TELLY_LOCAL_STORAGE_PATH', 'Directory for reports when storage_type is file.'],
  ['http_server', 'process', optStr, null, 'TELLY_HTTP_SERVER', 'Collector base URL for every project, overriding the packages\' endpoints.'],
  ['http_timeout', 'process', positive, 3.0, 'TELLY_HTTP_TIMEOUT', 'Seconds allowed for one HTTP request.'],
  ['show_me', 'process', bool, false, 'TELLY_SHOW_ME', 'Print to stderr exactly the bytes that are sent.'],
  ['exit_signal_only', 'process', bool, false, 'TELLY_EXIT_SIGNAL_ONLY', 'Report only at normal exit; trap no signal.'],
  ['timer', 'process', bool, false, 'TELLY_TIMER', 'Also report periodically from an unref\'d timer, for long-running services.'],
  ['timer_interval_sec', 'process', positive, 3600.0, 'TELLY_TIMER_INTERVAL_SEC', 'Seconds between periodic reports.'],
  ['salt_type', 'process', choice('random_uuid4', 'machine_id'), 'random_uuid4', 'TELLY_SALT_TYPE',
    'Salt for Level II hashes: a random UUID4 kept in ~/.telly_salt, or the machine id.'],
  ['spool_dir', 'process', optStr, null, 'TELLY_SPOOL_DIR', 'Where reports wait for the sender. Default: the user cache directory.'],
  ['debug', 'process', bool, false, 'TELLY_DEBUG', 'Log the client\'s own errors to stderr instead of staying silent.'],
  ['accept_level2_plaintext', 'process', bool, false, 'TELLY_LEVEL2_PLAINTEXT',
    'The user\'s (or administrator\'s) side of Level II in plain text; needs the author\'s level2_plaintext = true '
    + 'and a collector project created with --level2-plaintext.'],
].map(([name, scope, parse, def, env, doc]) => Object.freeze({ name, scope, parse, default: def, env, doc })));

const BY_NAME = new Map(SETTINGS.map((s) => [s.name, s]));
const keysOf = (scope) => new Set(SETTINGS.filter((s) => s.scope === scope).map((s) => s.name));
const PROJECT_KEYS = keysOf('project');
const PROCESS_KEYS = keysOf('process');
// Project keys a user may set for every project at the top of the config file.
const USER_WIDE_KEYS = new Set(['region', 'engine', 'mode', 'level2', 'send_from_ci']);
// Project keys only the package's own field may set (a user cannot agree on the author's behalf).
const AUTHOR_ONLY_KEYS = new Set(['project_id', 'packages', 'level2_plaintext']);

function defaults(scope) {
  const out = {};
  for (const s of SETTINGS) if (s.scope === scope) out[s.name] = s.default;
  return out;
}

/** Validate one table (user config) and return only the keys it sets, parsed. */
function parseTable(table, origin, allowed = PROJECT_KEYS) {
  if (!table || typeof table !== 'object' || Array.isArray(table)) throw new ConfigError(`${origin}: expected a table`);
  const parsed = {};
  for (const [key, value] of Object.entries(table)) {
    if (!allowed.has(key)) {
      let hint = '';
      if (PROCESS_KEYS.has(key)) hint = ' (only the user\'s config file or environment may set it)';
      else if (AUTHOR_ONLY_KEYS.has(key)) hint = ' (only the package\'s own table may set it)';
      else if (PROJECT_KEYS.has(key)) hint = ' (set it in a [project."<project_id>"] table)';
      throw new ConfigError(`${origin}: unknown key ${JSON.stringify(key)}${hint}; see config/telly.schema.json`);
    }
    parsed[key] = BY_NAME.get(key).parse(value, `${origin}: ${key}`);
  }
  return parsed;
}

/** The package.json "telly" field, checked against config/telly.schema.json, then parsed. */
function parsePackageTable(table, origin) {
  const schema = require('./schema'); // only once a package has a "telly" field
  const error = schema.validate(schema.load('telly.schema.json'), table);
  if (error) throw new ConfigError(`${origin}: ${error}`);
  return parseTable(table, origin);
}

function fromEnv(scope, env) {
  const found = {};
  for (const s of SETTINGS) {
    if (s.scope === scope && s.env && env[s.env] !== undefined && env[s.env] !== '') {
      found[s.name] = s.parse(env[s.env], `environment variable ${s.env}`);
    }
  }
  return found;
}

/** The user's config file as an object ({} when absent); ConfigError when it is malformed. */
function readUserConfig(env = process.env) {
  const file = userConfigPath(env);
  if (file === null) return {};
  let text;
  try {
    // A FIFO or device there is an error, never a hang; a link (dotfile managers) must lead to a
    // file of the user's or root's.
    text = require('./_files').readText(file, USER_CONFIG_MAX, { owned: true });
  } catch (err) {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return {};
    throw new ConfigError(`${file}: cannot be read: ${err.message}`);
  }
  const { parse, TomlError } = require('./_toml');
  try {
    return parse(text, file);
  } catch (err) {
    if (err instanceof TomlError) throw new ConfigError(`${file}: not valid TOML for the Node client: ${err.message}`);
    throw err;
  }
}

/** Layer defaults, the user's config file and the environment into frozen process settings. */
function processSettings(env = process.env, userConfig = readUserConfig(env)) {
  const values = defaults('process');
  const top = {};
  for (const [k, v] of Object.entries(userConfig)) if (k !== 'project') top[k] = v;
  const allowed = new Set([...PROCESS_KEYS, ...USER_WIDE_KEYS]);
  for (const [key, value] of Object.entries(parseTable(top, 'user config', allowed))) {
    if (PROCESS_KEYS.has(key)) values[key] = value;
  }
  Object.assign(values, fromEnv('process', env));
  return Object.freeze(values);
}

/** The collector base URL: TELLY_HTTP_SERVER, else `endpoint`, else the region's endpoint. */
function collectorUrl(project, process_) {
  return process_.http_server || project.endpoint || project.endpoints[project.region] || null;
}

/**
 * Layer defaults, the package's table, the user's config and the environment for one project.
 * ``packageTable`` is the raw "telly" field, or a ready table for a forced package.
 */
function projectSettings(packageTable, source, { name = null, version = null, root = null, forced = false,
  env = process.env, userConfig = readUserConfig(env) } = {}) {
  const values = defaults('project');
  Object.assign(values, forced ? parseTable(packageTable, source) : parsePackageTable(packageTable, source));
  const top = {};
  for (const [k, v] of Object.entries(userConfig)) if (USER_WIDE_KEYS.has(k)) top[k] = v;
  Object.assign(values, parseTable(top, 'user config'));
  const perProject = userConfig.project;
  if (values.project_id && perProject && typeof perProject === 'object') {
    const override = perProject[values.project_id];
    if (override !== undefined) {
      const allowed = new Set([...PROJECT_KEYS].filter((k) => !AUTHOR_ONLY_KEYS.has(k)));
      Object.assign(values, parseTable(override, `user config [project.${JSON.stringify(values.project_id)}]`, allowed));
    }
  }
  Object.assign(values, fromEnv('project', env));
  if (!values.project_id) throw new ConfigError(`${source}: project_id is missing; add "project_id": "..." to the "telly" field`);
  return Object.freeze(Object.assign(values, { source, name, version, root }));
}

module.exports = {
  ConfigError, SETTINGS, processSettings, projectSettings, readUserConfig, collectorUrl, parsePackageTable,
};
