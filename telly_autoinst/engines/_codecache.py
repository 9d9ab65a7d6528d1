"""The per-user cache of rewritten module code, so that a warm import costs what a ``.pyc`` load costs.

One file per source file, under ``<user cache>/telly_autoinst/code/<cache tag>/``, never beside
the package (site-packages is often read-only, and the package's own ``__pycache__`` must stay
the package's). Like pytest's ``.pyc`` files, a file records what it was built from and is used
only when all of it still holds: the source's path, size, mtime, inode and ctime (a source
replaced by one of the same size and mtime is still a new file), the interpreter's magic
number, ``-O``, this package's version and the rewrite's format. Nothing else decides
the rewrite (the project's include/exclude patterns are applied at run time), so one file
serves every project and every selection.

A file is a CRC-32 of its payload (4 bytes, little-endian), then the payload: the ``marshal``
dump of ``(stamp, sites, code, plans)``. ``plans`` are the module's selections, as
``selection.plan_of`` describes them, by project settings and index (see ``RewriteEngine``): a warm
import replays one (``selection.replay``, which checks it against the module's namespace) instead
of selecting again. The checksum is checked before ``marshal.loads`` ever sees the
bytes: a flipped bit in a code object can crash the interpreter, and a damaged file must only
be a miss. (It guards against damage, not against people: who may write the cache is
``_statefile``'s check of the directory and of each file's owner. A CRC costs a tenth of a
``marshal.loads``; BLAKE2 cost two thirds of one.)

Reading needs ``marshal``, ``zlib`` and ``os`` only: no ``ast``, no ``json``. A cache that cannot
be read or written (no home, read-only file system, a directory another user can write) only
makes every import a cold one.
"""

import marshal
import os
import sys
from _frozen_importlib_external import MAGIC_NUMBER
from zlib import crc32

from .. import __version__
from .._env import no_cache
from .._statefile import SELF, dir_refusal, private_dir, read_bytes, write_atomic
from ..index import cache_dir, stable_hash

# What is stored with the code: ``sites`` is ``(site list, placeholder tree)`` (see
# ``_rewriter.rewrite``); ``site list[i] = (kind, qualname)`` describes the string constant
# PLACEHOLDER + str(i), which the engine replaces when it loads the code (no real constant
# starts with a NUL and this text).
PLACEHOLDER = "\x00telly_autoinst\x00"
CALL, INIT, TAIL = "call", "init", "tail"

# The sources that decide what a cache entry holds and how it is read back: the rewrite, the
# binding of its placeholders, and this file's layout. Their content is the cache's format, so a
# changed rewriter (a development build, an edited checkout, a release) never reuses old entries.
_FORMAT_SOURCES = ("_rewriter.py", "rewrite.py", "_codecache.py")
_format = None
# TELLY_NO_CACHE, read once per process (at the first watched import): os.environ.get raises and
# catches a KeyError when the variable is unset, which cost 0.13M instructions a run when asked
# at every import of click's 11 modules, and every import of one run takes the same path anyway.
_no_cache = None
# Far more than any module's code; a larger file is not ours, and is never read whole.
_MAX_BYTES = 64 << 20


def stamp(path):
    """What a rewrite of ``path`` as it is now is valid for; None when the source cannot be stat'ed.

    Taken *before* the source is read, as the import system does: a file edited meanwhile then
    leaves a stale stamp, which the next import rejects, never new code under an old stamp.
    """
    try:
        st = os.stat(path)
        rewrite_format = _format or _read_format()
    except (OSError, ValueError):  # ValueError: a value marshal cannot keep
        return None
    return (rewrite_format, __version__, MAGIC_NUMBER, sys.flags.optimize, path, st.st_size, st.st_mtime_ns,
            st.st_ino, st.st_ctime_ns)


def _read_format():
    """A CRC-32 of the rewriter's own sources, read once per process (about 30 KB)."""
    global _format
    here = os.path.dirname(os.path.abspath(__file__))
    digest = 0
    for name in _FORMAT_SOURCES:
        with open(os.path.join(here, name), "rb") as handle:
            digest = crc32(handle.read(), digest)
    _format = f"telly-rewrite-{digest:08x}"
    return _format


def directory():
    """This interpreter's directory of the code cache, or None without a home."""
    base = cache_dir()
    return None if base is None else os.path.join(base, "code", sys.implementation.cache_tag or "none")


def _off():
    """Whether TELLY_NO_CACHE keeps this process away from the cache."""
    global _no_cache
    if _no_cache is None:
        _no_cache = no_cache()
    return _no_cache


def _file(path):
    folder = directory()
    return None if folder is None else os.path.join(folder, f"{stable_hash(path):016x}.bin")


def load(path, current):
    """``(sites, code, plans)`` cached for ``path`` with the stamp ``current``, or None (always under
    TELLY_NO_CACHE)."""
    name = _file(path)
    if current is None or name is None or _off() or dir_refusal(os.path.dirname(name)) is not None:
        return None
    try:
        # Never blocks and never reads past the cap: a FIFO planted here must not hang an import.
        raw = memoryview(read_bytes(name, _MAX_BYTES, owner=SELF))  # only a file of this user's
        if len(raw) < 4 or int.from_bytes(raw[:4], "little") != crc32(raw[4:]):
            return None  # damaged: marshal must never see it
        stored, sites, code, plans = marshal.loads(raw[4:])
    except Exception:  # missing, truncated, written by another interpreter: rewrite again
        return None
    if stored != current or type(plans) is not dict:
        return None
    return sites, code, plans


def store(path, current, sites, code, plans=None):
    """Keep ``(sites, code, plans)`` for ``path``; does nothing where the cache cannot be written, or under
    TELLY_NO_CACHE."""
    name = _file(path)
    if current is None or name is None or _off():
        return
    try:
        private_dir(os.path.dirname(name))
        payload = marshal.dumps((current, sites, code, plans or {}))
        # Readers see the old file or the new one, never half of one.
        write_atomic(name, crc32(payload).to_bytes(4, "little") + payload)
    except (OSError, ValueError):  # ValueError: a value marshal cannot keep
        pass
