"""The lock-file protocol the Python and Node clients both keep for the files they share (Node has no flock).

A lock is a file created with ``O_CREAT | O_EXCL`` (mode 0600) that holds one line,
``<pid> <host> <token>``. Only its owner removes it, and only while it still holds the owner's
line. A lock is stale when it was taken on this host by a process that is gone, or when it is
older than the lock's ``stale_after`` (its owners finish well within that). A stale lock is never
deleted in place, since between judging it and deleting it another client may have replaced it:
it is renamed aside to a unique name first, and the renamed file is deleted only if it still
holds the line judged stale; otherwise it is linked back (which fails harmlessly if a newer lock
exists). ``docs/decisions/0001-shared-lock-files.md`` gives the reasons; the constants are the
contract's (``LOCK_*``), and ``node/lib/_files.js`` (``tryLock``) is the same protocol.
"""

import os
import time

from ._contract import LOCK_STALE_SUFFIX
from ._statefile import NotRegular, read_text

# One line of a pid, a host name and 16 hex digits: anything longer is not a lock of ours.
_MAX_LINE = 512


def _host():
    try:
        return os.uname().nodename or "-"
    except AttributeError:  # Windows
        return os.environ.get("COMPUTERNAME") or "-"


def _alive(pid):
    if os.name == "nt":  # os.kill(pid, 0) would terminate it there: judge by age alone
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, another user's
        return True
    return True


def _stale(line, age, stale_after):
    if age > stale_after:
        return True
    parts = line.split()
    if len(parts) != 3 or not parts[0].isdigit():
        return False  # not (yet) a line of ours, and young: a writer between create and write
    return parts[1] == _host() and not _alive(int(parts[0]))


def acquire(path, stale_after):
    """Take the lock at ``path``; returns the line that proves ownership, or None while another holds it.

    A stale lock is moved aside (see the module docstring) and taking it is tried again.
    Raises OSError when the directory cannot hold the lock (read-only, missing).
    """
    for _ in range(3):
        line = f"{os.getpid()} {_host()} {os.urandom(8).hex()}\n"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        except FileExistsError:
            if not _break_if_stale(path, stale_after):
                return None
            continue
        try:
            os.write(fd, line.encode("ascii"))
        finally:
            os.close(fd)
        return line
    return None


def release(path, line):
    """Remove the lock at ``path`` if it still holds ``line`` (it may have been judged stale and taken over)."""
    _move_aside_if(path, line)


def _break_if_stale(path, stale_after):
    """Whether the lock at ``path`` is gone now (released meanwhile, or stale and moved aside by us)."""
    try:
        line = read_text(path, _MAX_LINE, errors="replace")
        age = time.time() - os.lstat(path).st_mtime
    except FileNotFoundError:
        return True
    except (NotRegular, OSError):  # a FIFO or a directory there: no lock can be taken
        return False
    if not _stale(line, age, stale_after):
        return False
    return _move_aside_if(path, line)


def _move_aside_if(path, line):
    """Rename the lock aside and delete it if it holds ``line``; else put it back. True when it is gone."""
    aside = f"{path}.{os.urandom(8).hex()}{LOCK_STALE_SUFFIX}"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    try:
        moved = read_text(aside, _MAX_LINE, errors="replace")
    except OSError:
        moved = None
    if moved == line:
        _unlink(aside)
        return True
    # Another client's lock, taken after ours was judged: give it back (unless a newer one exists).
    try:
        os.link(aside, path)
    except OSError:
        pass
    _unlink(aside)
    return False


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def hold(path, stale_after, wait_sec, sleep=time.sleep):
    """Wait up to ``wait_sec`` for the lock; returns its line, or raises OSError when it stays taken."""
    deadline = time.monotonic() + wait_sec
    while True:
        line = acquire(path, stale_after)
        if line is not None:
            return line
        if time.monotonic() > deadline:
            raise OSError(f"{path} is held by another process")
        sleep(0.02)
