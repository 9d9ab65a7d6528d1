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

const { userConfigPath } = require('./_env');
const { TRUTHY, FALSY, SETTINGS: CONTRACT_SETTINGS } = require('./_contract');

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
const PYTHON_NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

/**
 * force_packages: names the Node or the Python client can count; this client keeps the npm names.
 * The user config is shared, so a Python module name that is no npm name (my_mod) is skipped
 * rather than refused.
 */
function packageNames(value, where) {
  const list = names(value, where);
  for (const name of list) {
    if (!NPM_NAME.test(name) && !PYTHON_NAME.test(name)) {
      throw new ConfigError(`${where}: ${JSON.stringify(name)} is neither an npm package name nor an importable module name`);
    }
  }
  return Object.freeze(list.filter((name) => NPM_NAME.test(name)));
}

function choice(...allowed) {
  return (value, where) => {
    if (typeof value === 'string' && allowed.includes(value.trim().toLowerCase())) return value.trim().toLowerCase();
    throw new ConfigError(`${where}: expected one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
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

const PARSERS = { bool, project_id: projectId, patterns: names, optional_string: optStr, endpoints, seconds: positive,
  package_names: packageNames };

// The settings the Node client applies, from the shared contract (config/contract.json): the
// same names, environment variables and defaults as the Python client's.
const SETTINGS = Object.freeze(CONTRACT_SETTINGS.filter((row) => row[6].includes('node')).map(
  ([name, scope, type, choices, def, env, , , , doc]) => Object.freeze({
    name, scope, parse: choices ? choice(...choices) : PARSERS[type], default: def, env, doc,
  }),
));

const BY_NAME = new Map(SETTINGS.map((s) => [s.name, s]));
// Key sets over the whole contract: a key only the Python client applies (engine, packages) is
// valid where Python accepts it, and skipped here (see parseTable), so one user config serves both.
const keysOf = (test) => new Set(CONTRACT_SETTINGS.filter(test).map((row) => row[0]));
const PROJECT_KEYS = keysOf((row) => row[1] === 'project');
const PROCESS_KEYS = keysOf((row) => row[1] === 'process');
// Project keys a user may set for every project at the top of the config file.
const USER_WIDE_KEYS = keysOf((row) => row[7]);
// Project keys only the package's own field may set (a user cannot agree on the author's behalf).
const AUTHOR_ONLY_KEYS = keysOf((row) => row[8]);

function defaults(scope) {
  const out = {};
  for (const s of SETTINGS) if (s.scope === scope) out[s.name] = s.default;
  return out;
}

const PACKAGE_SCHEMA = 'telly.schema.json';
const USER_SCHEMA = 'user-config.schema.json';

/**
 * Validate one table (package field or user config) and return only the keys it sets, parsed. An
 * error names the file, the key and the schema listing the valid keys (``schema``).
 */
function parseTable(table, origin, allowed = PROJECT_KEYS, schema = PACKAGE_SCHEMA) {
  if (!table || typeof table !== 'object' || Array.isArray(table)) throw new ConfigError(`${origin}: expected a table`);
  const parsed = {};
  for (const [key, value] of Object.entries(table)) {
    if (!allowed.has(key)) {
      let hint = '';
      if (PROCESS_KEYS.has(key)) hint = ' (only the user\'s config file or environment may set it)';
      else if (AUTHOR_ONLY_KEYS.has(key)) hint = ' (only the package\'s own table may set it)';
      else if (PROJECT_KEYS.has(key)) hint = ' (set it in a [project."<project_id>"] table)';
      throw new ConfigError(`${origin}: unknown key ${JSON.stringify(key)}${hint}; see ${require('./schema').file(schema)}`);
    }
    const setting = BY_NAME.get(key);
    if (setting) parsed[key] = setting.parse(value, `${origin}: ${key}`); // else a key only the Python client applies
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

/** How messages name the user's config file: its path when there is one. */
function userOrigin(env) {
  const file = userConfigPath(env);
  return file ? `user config ${file}` : 'user config';
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
  for (const [key, value] of Object.entries(parseTable(top, userOrigin(env), allowed, USER_SCHEMA))) {
    if (PROCESS_KEYS.has(key)) values[key] = value;
  }
  Object.assign(values, fromEnv('process', env));
  return Object.freeze(values);
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
  const origin = userOrigin(env);
  Object.assign(values, parseTable(top, origin, PROJECT_KEYS, USER_SCHEMA));
  const perProject = userConfig.project;
  if (values.project_id && perProject && typeof perProject === 'object') {
    const override = perProject[values.project_id];
    if (override !== undefined) {
      const allowed = new Set([...PROJECT_KEYS].filter((k) => !AUTHOR_ONLY_KEYS.has(k)));
      Object.assign(values, parseTable(override, `${origin} [project.${JSON.stringify(values.project_id)}]`, allowed,
        USER_SCHEMA));
    }
  }
  Object.assign(values, fromEnv('project', env));
  if (!values.project_id) throw new ConfigError(`${source}: project_id is missing; add "project_id": "..." to the "telly" field`);
  return Object.freeze(Object.assign(values, { source, name, version, root }));
}

module.exports = {
  ConfigError, SETTINGS, processSettings, projectSettings, readUserConfig, parsePackageTable,
};
