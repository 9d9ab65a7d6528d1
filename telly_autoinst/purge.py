"""Everything the client leaves on disk for this user, and its removal (``python -m telly_autoinst purge``).

Also which of its directories it refuses to use (another user's, or writable by others), for
``status``: a refused directory is no leftover of this user's, and is never removed.

Uninstalling the package removes its code only; this is the rest: the Level II salt, the
consent lists and notices record, the kill-switch file, the consent lock, the cache (indexes,
and the default spool with its reports and losses.log) and a spool moved by TELLY_SPOOL_DIR.
The user's own config file is never touched: the user wrote it.
"""

import os
import shutil

from . import consent, identity, index, spool
from ._contract import LOCK_STALE_SUFFIX
from ._env import home_dir
from ._statefile import dir_refusal, use_refusal
from .engines.rewrite import code_cache_dir
from .errors import ConfigError
from .pipeline import default_dir
from .settings import process_settings


def _spool_dir():
    try:
        return default_dir(process_settings().spool_dir)
    except ConfigError:  # a broken user config: the environment still says where the spool is
        return default_dir(os.environ.get("TELLY_SPOOL_DIR") or None)


def _directories():
    """The client's directories: its cache, this interpreter's code cache, and the spool."""
    cache = index.cache_dir()
    found = [] if cache is None else [cache, code_cache_dir()]
    directory = _spool_dir()
    if directory:
        found.append(directory)
    return found


def refusals():
    """``[(directory, why)]`` for each of the client's directories that it does not use, each reason
    once: a refused root above the cache refuses the code cache and the spool under it too."""
    found: dict = {}  # reason -> the first directory refused for it
    for directory in dict.fromkeys(_directories()):
        reason = use_refusal(directory)
        if reason is not None:
            found.setdefault(reason, directory)
    return [(directory, reason) for reason, directory in found.items()]


def _temporary_files():
    """Temporary files and stale locks a crash left beside the consent lists and the salt in the home directory."""
    home = home_dir()
    try:
        names = os.listdir(home) if home else []
    except OSError:
        return []
    return [os.path.join(home, n) for n in sorted(names)
            if n.startswith(".telly_") and n.endswith((".tmp", LOCK_STALE_SUFFIX))]


def leftovers():
    """Paths that exist and belong to the client, in the order they will be removed."""
    paths = consent.state_files()
    salt = identity.salt_path()
    if salt is not None and os.path.lexists(salt):
        paths.append(salt)
    paths += _temporary_files()
    cache = index.cache_dir()
    if cache is not None and os.path.lexists(cache) and dir_refusal(cache) is None:
        paths.append(cache)
    directory = _spool_dir()
    if (directory and os.path.lexists(directory) and not (cache and _inside(directory, cache))
            and dir_refusal(directory) is None):
        # A spool of its own (TELLY_SPOOL_DIR): only the files the client wrote there.
        paths.extend(os.path.join(directory, name) for name in sorted(os.listdir(directory))
                     if spool.owns(name))
    return paths


def _inside(path, parent):
    path, parent = os.path.abspath(path), os.path.abspath(parent)
    return path == parent or path.startswith(parent.rstrip(os.sep) + os.sep)


def remove(paths):
    """Remove each path (a directory with its content); returns [(path, error)] for those that stayed."""
    failed = []
    for path in paths:
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            failed.append((path, exc.strerror or str(exc)))
    return failed
