'use strict';
// Small file helpers shared by consent, identity and the spool: atomic replace and a lock file.
// Node has no flock(), so the lock is a file created with O_EXCL that holds its owner's pid; a lock
// whose owner is gone (or that is older than its deadline) is taken over.

const fs = require('fs');

/**
 * Write ``data`` to ``file`` through a temporary file and rename, so readers never see half of it.
 * ``durable`` adds an fsync before the rename: for the consent lists, not for spooled reports or
 * caches (an fsync on the exit path can take tens of milliseconds; the Python spool does not either).
 */
function writeAtomic(file, data, mode = 0o600, durable = false) {
  const tmp = `${file}.${process.pid}.${Math.random().toString(16).slice(2, 8)}.tmp`;
  const fd = fs.openSync(tmp, 'w', mode);
  try {
    fs.writeSync(fd, data);
    if (durable) fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.renameSync(tmp, file);
  } catch (err) {
    try {
      fs.unlinkSync(tmp);
    } catch (_) { /* already gone */ }
    throw err;
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

/** Take the lock file; returns a release function, or null when a live owner holds it. */
function tryLock(file, staleAfterMs) {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = fs.openSync(file, 'wx', 0o600);
      fs.writeSync(fd, String(process.pid));
      fs.closeSync(fd);
      return () => {
        try {
          fs.unlinkSync(file);
        } catch (_) { /* released already */ }
      };
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
    }
    let owner = NaN;
    let age = 0;
    try {
      owner = Number(fs.readFileSync(file, 'utf8'));
      age = Date.now() - fs.statSync(file).mtimeMs;
    } catch (_) {
      continue; // released meanwhile: try again
    }
    if (Number.isInteger(owner) && owner > 0 && alive(owner) && age < staleAfterMs) return null;
    try {
      fs.unlinkSync(file); // its owner died without releasing it
    } catch (_) { /* someone else took it over first */ }
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

module.exports = { writeAtomic, tryLock, withLock, alive };
