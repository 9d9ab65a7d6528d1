'use strict';
// Everything the client leaves on disk for this user, and its removal (`npx telly-autoinst purge`):
// the same files as the Python client's purge (telly_autoinst/purge.py), since both clients share
// them: the Level II salt, the consent lists and notices record, the kill-switch file, the consent
// locks, the cache directory (the ES module index, and the default spool with its reports and
// losses.log) and, in a spool moved by TELLY_SPOOL_DIR, the files the clients write there.
// The user's own config file is never touched: the user wrote it; nor is a directory the client
// refuses (another user's): it is no leftover of this user's.

const fs = require('fs');
const path = require('path');
const consent = require('./consent');
const spool = require('./spool');
const { cacheDir, homeDir } = require('./_env');
const { secureDir } = require('./_files');
const { LOCK_STALE_SUFFIX } = require('./_contract');

const STATE_FILES = [consent.OPTIN_FILE, consent.OPTOUT_FILE, consent.NOTICES_FILE, consent.DISABLE_FILE,
  consent.FILE_LISTS_LOCK, ...consent.FILE_LEGACY, require('./identity').SALT_FILE];

function exists(file) {
  try {
    fs.lstatSync(file);
    return true;
  } catch (_) {
    return false;
  }
}

function inside(file, parent) {
  const rel = path.relative(parent, file);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** Temporary files and set-aside locks a crash left beside the consent lists and the salt in the home directory. */
function temporaryFiles() {
  const home = homeDir();
  let names = [];
  try {
    names = home === null ? [] : fs.readdirSync(home).sort();
  } catch (_) { /* no home to list */ }
  return names.filter((n) => n.startsWith('.telly_') && (n.endsWith('.tmp') || n.endsWith(LOCK_STALE_SUFFIX)))
    .map((n) => path.join(home, n));
}

/** Whether ``dir`` is one of the client's that it would use (a refused one is not the user's to remove). */
function usable(dir) {
  return secureDir(dir, { create: false }) === null;
}

/** Paths that exist and belong to the client, in the order they will be removed. */
function leftovers(spoolDir) {
  const found = STATE_FILES.map((name) => consent.file(name)).filter((file) => file !== null && exists(file));
  found.push(...temporaryFiles());
  const cache = cacheDir();
  if (cache !== null && exists(cache) && usable(cache)) found.push(cache);
  const directory = spool.defaultDir(spoolDir);
  if (directory && exists(directory) && !(cache && inside(path.resolve(directory), path.resolve(cache))) && usable(directory)) {
    let names = [];
    try {
      names = fs.readdirSync(directory).sort();
    } catch (_) { /* unreadable: nothing of ours can be listed there */ }
    found.push(...names.filter(spool.owns).map((name) => path.join(directory, name)));
  }
  return found;
}

/** Remove each path (a directory with its content, a link as itself); returns [[path, error]] for those that stayed. */
function remove(paths) {
  const failed = [];
  for (const file of paths) {
    try {
      fs.rmSync(file, { recursive: true, force: true });
    } catch (err) {
      failed.push([file, err.code || err.message]);
    }
  }
  return failed;
}

module.exports = { leftovers, remove };
