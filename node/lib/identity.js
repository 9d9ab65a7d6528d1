'use strict';
// Level II identity: the user's salt and per-project HMAC-SHA-256 hashes of user, home, machine
// and host, computed exactly as telly_autoinst/identity.py does, so that one user is one user to
// a project whichever client reports:
//   salt        = the UUID4 in ~/.telly_salt (shared file; created 0600, never replaced), else the machine id
//   project key = HMAC-SHA-256(salt, "telly-autoinst/level2/" + project_id)
//   each value  = hex HMAC-SHA-256(project key, value)
// The values are those Python reads: getpass.getuser() (LOGNAME, USER, LNAME, USERNAME, then the
// passwd entry), $HOME, /etc/machine-id, and the host name (uname nodename).

const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { homeDir, debug } = require('./_env');
const { readText, createExclusive } = require('./_files');
const { FILE_SALT: SALT_FILE } = require('./_contract');

const KEY_LABEL = 'telly-autoinst/level2/';
const MACHINE_ID_FILES = ['/etc/machine-id', '/var/lib/dbus/machine-id'];

/**
 * The OS machine id (systemd/dbus). Python's last resort, uuid.getnode(), is the MAC address as
 * an integer; the same number is built here from the first non-internal interface, which is what
 * getnode() finds on an ordinary Linux machine (on others the two may differ).
 */
function machineId() {
  for (const file of MACHINE_ID_FILES) {
    try {
      const value = readText(file, 256).trim();
      if (value) return value;
    } catch (_) { /* next source */ }
  }
  for (const list of Object.values(os.networkInterfaces())) {
    for (const iface of list || []) {
      if (!iface.internal && iface.mac && iface.mac !== '00:00:00:00:00:00') {
        return BigInt(`0x${iface.mac.replace(/:/g, '')}`).toString();
      }
    }
  }
  return null;
}

/** Never blocks (a FIFO there is "not a regular file"), never reads past 256 bytes, and only a file of the user's or root's. */
function readSalt(file) {
  const value = readText(file, 256, { owned: true }).trim();
  if (!value) throw new Error('empty salt file');
  return value;
}

/** Write a fresh UUID4 salt with mode 0600; if another process (of either client) won the race, use its salt. */
function createSalt(file) {
  const tmp = `${file}.${crypto.randomBytes(8).toString('hex')}.tmp`;
  const fd = createExclusive(tmp);
  try {
    fs.writeSync(fd, crypto.randomUUID());
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    // link() fails if the salt exists, so two first runs never end with different salts.
    fs.linkSync(tmp, file);
  } catch (err) {
    if (err.code !== 'EEXIST' && !fs.existsSync(file)) fs.renameSync(tmp, file);
  } finally {
    try {
      fs.unlinkSync(tmp);
    } catch (_) { /* renamed */ }
  }
  return readSalt(file);
}

const saltCache = new Map();

/** [salt, source]: the UUID4 in ~/.telly_salt, or the machine id when asked or when the file is unusable. */
function salt(saltType = 'random_uuid4') {
  if (saltCache.has(saltType)) return saltCache.get(saltType);
  let result = null;
  const home = homeDir();
  if (saltType === 'random_uuid4' && home !== null) {
    const file = path.join(home, SALT_FILE);
    try {
      result = [readSalt(file), 'random_uuid4'];
    } catch (err) {
      if (err.code === 'ENOENT') {
        try {
          result = [createSalt(file), 'random_uuid4'];
        } catch (err2) {
          debug(`cannot create ${file}; the machine id salts instead`, err2);
        }
      } else {
        debug(`cannot use ${file}; the machine id salts instead`, err);
      }
    }
  }
  if (result === null) result = [machineId() || '', 'machine_id'];
  saltCache.set(saltType, result);
  return result;
}

function hmac(key, message) {
  return crypto.createHmac('sha256', key).update(message, 'utf8');
}

function projectKey(saltValue, projectId) {
  return hmac(Buffer.from(saltValue, 'utf8'), KEY_LABEL + projectId).digest();
}

/** getpass.getuser(): the first of LOGNAME, USER, LNAME, USERNAME that is set, else the passwd entry. */
function userName(env = process.env) {
  for (const name of ['LOGNAME', 'USER', 'LNAME', 'USERNAME']) if (env[name]) return env[name];
  try {
    return os.userInfo().username || null;
  } catch (_) {
    return null;
  }
}

function safe(getter) {
  try {
    return getter() || null;
  } catch (_) {
    return null;
  }
}

/** The hex HMACs of given values under a project's key (null stays null); the part tested against Python. */
function hashValues(saltValue, projectId, values) {
  const key = projectKey(saltValue, projectId);
  const out = {};
  for (const [name, value] of Object.entries(values)) out[name] = value === null ? null : hmac(key, value).digest('hex');
  return out;
}

function values() {
  return {
    user: safe(() => userName()),
    home: safe(() => homeDir()),
    machine: safe(machineId),
    host: safe(() => os.hostname()),
  };
}

/** Level II of this user for one project. */
function level2Hashes(projectId, saltType = 'random_uuid4') {
  return hashValues(salt(saltType)[0], projectId, values());
}

// The report schema's limits (config/report.schema.json, level2_plaintext), in characters.
const PLAINTEXT_LIMITS = { user: 256, home: 1024, machine: 256, host: 256 };

/**
 * The same four values in plain text, cut to the schema's limits: only for the corporate mode the
 * author, the user and the collector project all agreed to (report.build checks the first two).
 */
function level2Plaintext() {
  const out = {};
  for (const [name, value] of Object.entries(values())) {
    out[name] = value === null ? null : Array.from(value.toWellFormed ? value.toWellFormed() : value)
      .slice(0, PLAINTEXT_LIMITS[name]).join('');
  }
  return out;
}

module.exports = { SALT_FILE, salt, level2Hashes, level2Plaintext, hashValues, machineId, userName };
