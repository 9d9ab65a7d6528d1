'use strict';
// The client's own file access, in one place so that it never blocks, never follows a planted
// link, and never trusts a directory another user controls (telly_autoinst/_statefile.py's rules):
// - reads: O_NONBLOCK (a FIFO planted at ~/.telly_salt or at a package.json must not hang the
//   program), then fstat: only a regular file within its size cap is read (a symlink to /dev/zero
//   must not grow the process);
// - writes: a temporary file created 0600 with O_EXCL|O_NOFOLLOW under an unpredictable name, then
//   renamed over the target (rename replaces a link, never writes through it);
// - directories: created 0700; one of ours that is too open is tightened in place; one owned by
//   another user is refused (as pip does for its cache), and the caller keeps its counts in memory;
// - locks: Node has no flock(), so a lock is a file created with O_EXCL holding its owner's pid,
//   host and a random token. It is released only by the process whose token it holds, and taken
//   over only when its owner is gone or older than any run of ours can be (see tryLock).

const fs = require('fs');
const os = require('os');
const path = require('path');
const { debug } = require('./_env');
const { LOCK_STALE_SUFFIX } = require('./_contract');

const C = fs.constants;
const NOFOLLOW = C.O_NOFOLLOW || 0;
const READ_FLAGS = C.O_RDONLY | (C.O_NONBLOCK || 0) | (C.O_NOCTTY || 0);

/** The path exists but is not a regular file of an accepted owner, or is larger than its cap. */
class NotRegular extends Error {
  constructor(message) {
    super(message);
    this.code = 'ENOTREG';
  }
}

const uid = typeof process.geteuid === 'function' ? process.geteuid() : null;

/** Owned by this user or by root (a file root installed for everyone), or no owners on this OS. */
function ownedByUserOrRoot(stat) {
  return uid === null || stat.uid === uid || stat.uid === 0;
}

/**
 * The whole content of regular file ``file`` if it holds at most ``cap`` bytes. ``nofollow``: the
 * file is one the client wrote itself, so a link there is refused; ``owned``: a file the user
 * keeps (consent list, salt, config) may be a link, but must resolve to a file of the user or root.
 * Throws ENOENT when missing, NotRegular (code ENOTREG) for a hostile file, and OSError codes else.
 */
function readRegular(file, cap, { nofollow = false, owned = false } = {}) {
  const fd = fs.openSync(file, READ_FLAGS | (nofollow ? NOFOLLOW : 0));
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw new NotRegular(`${file} is not a regular file`);
    if (owned && !ownedByUserOrRoot(stat)) throw new NotRegular(`${file} belongs to uid ${stat.uid}, neither this user nor root`);
    if (stat.size > cap) throw new NotRegular(`${file} is larger than ${cap} bytes`);
    const chunks = [];
    let size = 0;
    while (size <= cap) { // the file may grow after fstat: stop one byte past the cap
      const chunk = Buffer.allocUnsafe(Math.min(cap + 1 - size, 1 << 20));
      const n = fs.readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
      size += n;
    }
    if (size > cap) throw new NotRegular(`${file} is larger than ${cap} bytes`);
    return Buffer.concat(chunks, size);
  } finally {
    fs.closeSync(fd);
  }
}

/** readRegular decoded as UTF-8. */
function readText(file, cap, options) {
  return readRegular(file, cap, options).toString('utf8');
}

/**
 * ``n`` random bytes from the kernel's generator. /dev/urandom where there is one (a character
 * device, never a file planted there): three system calls, where loading Node's crypto module cost
 * 2 to 3 ms of a program's exit, which names its spool entry and its report with these.
 */
function randomBytes(n) {
  if (process.platform !== 'win32') {
    try {
      const fd = fs.openSync('/dev/urandom', READ_FLAGS);
      try {
        const bytes = Buffer.alloc(n);
        if (fs.fstatSync(fd).isCharacterDevice() && fs.readSync(fd, bytes, 0, n, null) === n) return bytes;
      } finally {
        fs.closeSync(fd);
      }
    } catch (err) {
      debug('/dev/urandom is not readable; using crypto', err); // a chroot or a sandbox without it
    }
  }
  return require('crypto').randomBytes(n);
}

function token() {
  return randomBytes(8).toString('hex');
}

/** FNV-1a, 64 bits, as 16 hex digits: a stable file name for a cache key, without loading crypto at start-up. */
function keyHash(text) {
  let hash = 0xcbf29ce484222325n;
  for (let i = 0; i < text.length; i++) hash = ((hash ^ BigInt(text.charCodeAt(i))) * 0x100000001b3n) & 0xffffffffffffffffn;
  return hash.toString(16).padStart(16, '0');
}

/** A random UUID (version 4) as 32 hex digits, the form a report_id takes. */
function uuid4Hex() {
  const bytes = randomBytes(16);
  bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
  bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
  return bytes.toString('hex');
}

/** Create ``file`` 0600 (whatever the umask), failing if anything, a link included, is there. */
function createExclusive(file) {
  const fd = fs.openSync(file, C.O_WRONLY | C.O_CREAT | C.O_EXCL | NOFOLLOW, 0o600);
  try {
    fs.fchmodSync(fd, 0o600);
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  return fd;
}

/**
 * Write ``data`` to ``file`` (mode 0600) through a temporary file and rename, so readers never see
 * half of it. ``durable`` adds an fsync before the rename: for the consent lists, not for spooled
 * reports or caches (an fsync on the exit path can take tens of milliseconds).
 */
function writeAtomic(file, data, durable = false) {
  const tmp = `${file}.${token()}.tmp`;
  const fd = createExclusive(tmp);
  try {
    try {
      fs.writeSync(fd, data);
      if (durable) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (err) {
    try {
      fs.unlinkSync(tmp);
    } catch (_) { /* already gone */ }
    throw err;
  }
}

/** Append one line to a log the client keeps (0600, no link followed, never blocking on a FIFO). */
function appendLine(file, line, maxBytes) {
  let flags = C.O_WRONLY | C.O_CREAT | (C.O_NONBLOCK || 0) | NOFOLLOW;
  try {
    flags |= fs.lstatSync(file).size > maxBytes ? C.O_TRUNC : C.O_APPEND; // a diagnostic, not an archive
  } catch (_) {
    flags |= C.O_APPEND;
  }
  const fd = fs.openSync(file, flags, 0o600);
  try {
    if (!fs.fstatSync(fd).isFile()) throw new NotRegular(`${file} is not a regular file`);
    fs.writeSync(fd, line);
  } finally {
    fs.closeSync(fd);
  }
}

const checkedDirs = new Map(); // directory -> null (usable) or the reason it is refused

/**
 * Make ``dir`` (0700, parents included) and check that it may hold the client's files: a
 * directory owned by this user. One of ours that group or others may enter is tightened to 0700
 * in place. Returns null when usable, else why not (printed with TELLY_DEBUG); cached per process.
 * ``create = false`` (for status): a missing directory is usable, and is not made.
 */
function secureDir(dir, { create = true } = {}) {
  const key = path.resolve(dir);
  if (checkedDirs.has(key)) return checkedDirs.get(key);
  let reason = null;
  try {
    if (create) fs.mkdirSync(key, { recursive: true, mode: 0o700 });
    else if (!fs.existsSync(key)) return null;
    const stat = fs.statSync(key);
    if (!stat.isDirectory()) reason = `${key} is not a directory`;
    else if (uid !== null && stat.uid !== uid) reason = `${key} belongs to uid ${stat.uid}, not to this user (uid ${uid})`;
    else if (uid !== null && (stat.mode & 0o077)) fs.chmodSync(key, 0o700);
  } catch (err) {
    reason = `${key} cannot be used: ${err.code || err.message}`;
  }
  if (reason !== null) debug(`refusing the directory ${reason}`);
  checkedDirs.set(key, reason);
  return reason;
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

/**
 * Whether a lock file's owner can no longer hold it: its process (on this host) is gone, or the
 * lock is older than ``staleAfterMs``, which callers choose longer than their owners can live.
 */
function stale(body, ageMs, staleAfterMs) {
  if (ageMs > staleAfterMs) return true;
  const [pid, host] = body.trim().split(' ');
  const owner = Number(pid);
  if (!Number.isInteger(owner) || owner <= 0) return false; // being written this instant: not ours to judge
  return (host === undefined || host === os.hostname()) && !alive(owner);
}

/** Remove ``file`` only if it still holds ``body``: never another process's lock. */
function releaser(file, body) {
  return () => {
    try {
      if (readText(file, 4096, { nofollow: true }) === body) fs.unlinkSync(file);
    } catch (_) { /* gone already, or taken over after this process was stopped past its deadline */ }
  };
}

/**
 * Take the lock file; returns a release function, or null while another owner holds it. A stale
 * lock is moved aside under a name of our own and removed only if what was moved is the lock that
 * was judged stale; a lock another process took meanwhile is linked back in place.
 */
function tryLock(file, staleAfterMs) {
  for (let attempt = 0; attempt < 3; attempt++) {
    const body = `${process.pid} ${os.hostname()} ${token()}\n`;
    try {
      const fd = createExclusive(file);
      try {
        fs.writeSync(fd, body);
      } finally {
        fs.closeSync(fd);
      }
      return releaser(file, body);
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
    }
    let held;
    let ageMs;
    try {
      held = readText(file, 4096, { nofollow: true });
      ageMs = Date.now() - fs.lstatSync(file).mtimeMs;
    } catch (err) {
      if (err.code === 'ENOENT') continue; // released meanwhile: try again
      return null; // a link, FIFO or huge file where the lock belongs: leave it alone, take nothing
    }
    if (!stale(held, ageMs, staleAfterMs)) return null;
    const aside = `${file}.${token()}${LOCK_STALE_SUFFIX}`;
    try {
      fs.renameSync(file, aside);
    } catch (_) {
      continue; // taken over by another process first
    }
    let moved = null;
    try {
      moved = readText(aside, 4096, { nofollow: true });
    } catch (_) { /* unreadable: treated as someone else's */ }
    if (moved === held) {
      fs.unlinkSync(aside);
      continue;
    }
    try {
      fs.linkSync(aside, file); // not the stale lock: a fresh one, put back for its owner
      fs.unlinkSync(aside);
    } catch (_) { /* a third process locked meanwhile: the moved lock stays aside, untouched */ }
    return null;
  }
  return null;
}

/** Wait (briefly, synchronously) for the lock; throws when it stays taken. */
function withLock(file, fn, { waitMs = 2000, staleAfterMs = 10000 } = {}) {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const release = tryLock(file, staleAfterMs);
    if (release) {
      try {
        return fn();
      } finally {
        release();
      }
    }
    if (Date.now() > deadline) throw new Error(`${file} is held by another process`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }
}

module.exports = {
  NotRegular, readRegular, readText, createExclusive, writeAtomic, appendLine, secureDir, tryLock, withLock,
  uuid4Hex, keyHash,
};
