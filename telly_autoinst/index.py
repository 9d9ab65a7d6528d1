"""The cached index of watched packages: read at every start with the standard library only.

Finding opted-in packages needs ``importlib.metadata`` and a TOML parser (about 30 ms), far too
much for every interpreter start. So discovery writes its result here, and start-up only checks
that nothing it depended on changed: the stamp of every site directory (an install or uninstall
adds or removes a ``.dist-info`` directory there), of the user's config file, of every
``pyproject.toml`` that supplied settings and of every ``telly.toml``. A stamp is the mtime, size,
inode and ctime: a file replaced by one of the same size and mtime (a copy with ``cp -p``, an
edit within one tick of a coarse clock) still changes its inode or ctime.

File format, one record per line, tab-separated (plain text: reading it imports nothing)::

    telly_autoinst-index <FORMAT>
    stamp <path> <mtime_ns:size:inode:ctime_ns, or - when missing>
    watch <top-level module name>
    payload <hex of discovery's marshal dump, loaded only once a watched module is imported>
"""

import os
import sys
from stat import S_ISLNK

from ._env import FILE_CACHE_DIR, home_dir, no_cache, user_config_path, variable
from ._statefile import SELF, dir_refusal, private_dir, read_text, use_refusal, write_atomic

# Far more than any environment's index; a larger file is not ours, and is never read whole.
_MAX_BYTES = 16 << 20

FORMAT = "4"  # 4: a stamp is mtime, size, inode and ctime (3: mtime alone)
# The largest prime below 2**64: 256 has a huge order modulo it, so no two short names that
# differ only by moved bytes collide (with a Mersenne prime, bytes 61 apart could be swapped).
_PRIME_64 = (1 << 64) - 59
_MAGIC = "telly_autoinst-index"


def cache_dir():
    """``$XDG_CACHE_HOME/telly_autoinst`` or ``~/.cache/telly_autoinst``; None without a home."""
    base = variable("XDG_CACHE_HOME")
    if not base:
        home = home_dir()
        if home is None:
            return None
        base = os.path.join(home, ".cache")
    return os.path.join(base, FILE_CACHE_DIR)


def index_path():
    """One index per interpreter and environment: two venvs never share (or fight over) a file.

    Keyed by what decides which site directories exist: ``sys.prefix`` and ``sys.base_prefix``
    (the interpreter computes both once, in one spelling, however it was started: venv/bin/python,
    python3 and a symlink share one index), the version, and the user-site switches. No
    ``realpath``: resolving three paths cost more than the rest of interpreter start-up's work here.
    """
    directory = cache_dir()
    if directory is None:
        return None
    return os.path.join(directory, f"index-{environment_key()}.txt")


def environment_key():
    """The environment's part of the names of the files kept per environment (see :func:`index_path`)."""
    ident = "\0".join((sys.prefix, sys.base_prefix, sys.version, str(sys.flags.no_user_site),
                        variable("PYTHONUSERBASE") or ""))
    return f"{stable_hash(ident):016x}"


def stable_hash(text):
    """A 64-bit hash that is the same in every process (``hash()`` of a str is salted per process).

    The text's bytes as one integer, modulo a prime: computed in C, where a byte loop
    in Python (FNV-1a) cost tens of microseconds per name at every start and every cached module.
    """
    return int.from_bytes(text.encode("utf-8", "surrogatepass"), "little") % _PRIME_64


def refused():
    """Why the index's directory may not be used (another user owns it or can write it), or None."""
    path = index_path()
    if path is None:
        return None
    directory = os.path.dirname(path)
    if os.path.lexists(directory) and not os.path.isdir(directory):
        return None  # not a directory at all (HOME is a file)
    return use_refusal(directory)  # missing: refused when it may not be made where it belongs


def writable():
    """Whether the index can be written: checked before paying for a scan."""
    path = index_path()
    if path is None:
        return False
    directory = os.path.dirname(path)
    try:
        private_dir(directory)  # refused when another user owns it or can write it
    except OSError:
        return False
    return os.access(directory, os.W_OK)


def stamp(path):
    """What ``path`` is now, as one string: its mtime, size, inode and ctime, or ``-`` when it is
    missing. A symlink to nothing has the link's stamps (``~/.telly_disable`` is on all the same)."""
    # lstat first: most stamped paths are missing (consent lists nobody wrote), and one failed
    # call is cheaper than two; only a symlink is followed.
    try:
        st = os.lstat(path)
    except OSError:
        return "-"
    if S_ISLNK(st.st_mode):
        try:
            st = os.stat(path)
        except OSError:
            pass
    return f"{st.st_mtime_ns}:{st.st_size}:{st.st_ino}:{st.st_ctime_ns}"


def site_dirs():
    """Every directory ``site`` adds, computed the way ``site`` does, whether it exists yet or not.

    Only :func:`index_path`'s inputs decide this list, so an index stamps all of them and a
    directory created later (a first ``pip install --user``) changes a stamp.

    The ``.pth`` line runs while ``site`` is still adding directories (in a venv with system
    site-packages, the base ones come later), so ``sys.path`` is not complete yet.
    """
    import site

    # In a venv, site.venv() runs the venv's .pth files before it updates site.PREFIXES and
    # ENABLE_USER_SITE, so both still describe the base interpreter here: decide from pyvenv.cfg.
    in_venv = sys.prefix != sys.base_prefix
    system_site = not in_venv or _venv_includes_system_site()
    prefixes = [sys.prefix, sys.exec_prefix]
    if system_site:
        prefixes += [sys.base_prefix, sys.base_exec_prefix]
    dirs = []
    try:
        dirs.extend(site.getsitepackages(list(dict.fromkeys(prefixes))))
    except Exception:
        pass
    try:
        user_site = site.ENABLE_USER_SITE
        if user_site is None:
            user_site = site.check_enableusersite()
        if system_site and user_site:
            dirs.insert(0, site.getusersitepackages())
    except Exception:
        pass
    return dirs


def _venv_includes_system_site():
    try:
        with open(os.path.join(sys.prefix, "pyvenv.cfg"), encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.partition("=")
                if key.strip().lower() == "include-system-site-packages":
                    return value.strip().lower() == "true"
    except OSError:
        pass
    return False


def base_stamps():
    """The stamps every index depends on, whatever it found: site directories and user config."""
    paths = site_dirs()
    config = user_config_path()
    if config:
        paths.append(config)
    return paths


def read():
    """``(watched names, payload text)`` when the index is present and fresh, else None (so under TELLY_NO_CACHE)."""
    path = index_path()
    if path is None or no_cache() or dir_refusal(os.path.dirname(path)) is not None:
        return None
    try:
        # Never blocks (a FIFO there would hang every interpreter start), never reads past the cap,
        # and only a file of this user's: the index decides which code is imported how.
        lines = read_text(path, _MAX_BYTES, owner=SELF).split("\n")
    except (OSError, ValueError):
        return None
    if not lines or lines[0] != f"{_MAGIC}\t{FORMAT}":
        return None
    watched = set()
    stamped = set()
    payload = None
    for line in lines[1:]:
        kind, _, rest = line.partition("\t")
        if kind == "stamp":
            stamp_path, _, recorded = rest.rpartition("\t")
            if stamp(stamp_path) != recorded:
                return None
            stamped.add(stamp_path)
        elif kind == "watch":
            watched.add(rest)
        elif kind == "payload":
            payload = rest
    # The site directories are all stamped, existing or not (see site_dirs), so one that appears
    # later is a changed stamp; only the config file's path may move without one (XDG_CONFIG_HOME).
    config = user_config_path()
    if config is not None and config not in stamped:
        return None
    if payload is None:
        return None
    return watched, payload


def write(stamp_paths, watched, payload_text):
    """Write the index atomically; a failure (read-only home, full disk) is the caller's to ignore.

    Writes nothing and returns None under TELLY_NO_CACHE.
    """
    if no_cache():
        return None
    path = index_path()
    if path is None:
        raise OSError("no home directory for the cache")
    private_dir(os.path.dirname(path))
    lines = [f"{_MAGIC}\t{FORMAT}"]
    for stamp_path in dict.fromkeys(stamp_paths):
        lines.append(f"stamp\t{stamp_path}\t{stamp(stamp_path)}")
    lines.extend(f"watch\t{name}" for name in sorted(watched))
    if "\n" in payload_text:
        raise ValueError("payload must be one line")
    lines.append(f"payload\t{payload_text}")
    write_atomic(path, ("\n".join(lines) + "\n").encode("utf-8"))
    return path
