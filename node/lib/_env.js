'use strict';
// Environment switches and per-user paths, readable at start-up with nothing but the standard library.
// Node counterpart of telly_autoinst/_env.py: the variables, files and truthy/falsy words of the
// shared contract (config/contract.json, generated into _contract.js).

const fs = require('fs');
const path = require('path');
const {
  TRUTHY, FALSY, ENV_DISABLE, ENV_DO_NOT_TRACK, ENV_DEBUG, ENV_NO_CACHE, FILE_DISABLE, FILE_CONFIG_DIR,
  FILE_CONFIG_FILE, FILE_CACHE_DIR,
} = require('./_contract');

/** True for 1/true/yes/y/on in any case; anything else (unset included) is false. */
function truthy(value) {
  return typeof value === 'string' && TRUTHY.has(value.trim().toLowerCase());
}

/**
 * The user's home directory from HOME (USERPROFILE on Windows), or null when it is missing.
 * No fallback to the passwd entry: a process started without HOME did not ask for per-user state,
 * exactly as the Python client decides.
 */
function homeDir(env = process.env) {
  const home = env[process.platform === 'win32' ? 'USERPROFILE' : 'HOME'];
  return home || null;
}

/** The kill switch that is on (TELLY_DISABLE, DO_NOT_TRACK, ~/.telly_disable), or null. */
function killSwitch(env = process.env) {
  if (truthy(env[ENV_DISABLE])) return ENV_DISABLE;
  // Console Do Not Track: a variable that is set at all states a wish not to be tracked, so any
  // value but an explicit "no" (0/false/no/n/off) counts, the empty string included.
  const dnt = env[ENV_DO_NOT_TRACK];
  if (dnt !== undefined && (dnt.trim() === '' || !FALSY.has(dnt.trim().toLowerCase()))) return ENV_DO_NOT_TRACK;
  const home = homeDir(env);
  if (home !== null) {
    try {
      fs.lstatSync(path.join(home, FILE_DISABLE));
      return `~/${FILE_DISABLE}`;
    } catch (err) {
      if (err.code !== 'ENOENT' && err.code !== 'ENOTDIR') return `~/${FILE_DISABLE} (unreadable home)`;
    }
  }
  return null;
}

/** Whether TELLY_NO_CACHE asks for every decision afresh: no cache of the client's read or written. */
function noCache(env = process.env) {
  return truthy(env[ENV_NO_CACHE]);
}

/** $XDG_CONFIG_HOME/telly_autoinst/config.toml: the same user config file as the Python client. */
function userConfigPath(env = process.env) {
  let base = env.XDG_CONFIG_HOME;
  if (!base) {
    const home = homeDir(env);
    if (home === null) return null;
    base = path.join(home, '.config');
  }
  return path.join(base, FILE_CONFIG_DIR, FILE_CONFIG_FILE);
}

/** $XDG_CACHE_HOME/telly_autoinst or ~/.cache/telly_autoinst: shared with the Python client (its spool). */
function cacheDir(env = process.env) {
  let base = env.XDG_CACHE_HOME;
  if (!base) {
    const home = homeDir(env);
    if (home === null) return null;
    base = path.join(home, '.cache');
  }
  return path.join(base, FILE_CACHE_DIR);
}

/** Print a swallowed error when TELLY_DEBUG is set; never throws. */
function debug(message, err) {
  if (!truthy(process.env[ENV_DEBUG])) return;
  try {
    const detail = err ? `: ${err && err.stack ? err.stack : err}` : '';
    fs.writeSync(2, `telly-autoinst: ${message}${detail}\n`);
  } catch (_) { /* stderr closed: nothing more to do */ }
}

module.exports = { TRUTHY, FALSY, truthy, homeDir, killSwitch, noCache, userConfigPath, cacheDir, debug };
