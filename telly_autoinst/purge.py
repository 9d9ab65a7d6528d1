"""Everything the client leaves on disk for this user, and its removal (``python -m telly_autoinst purge``).

Uninstalling the package removes its code only; this is the rest: the Level II salt, the
consent lists and notices record, the kill-switch file, the consent lock, the cache (indexes,
and the default spool with its reports and losses.log) and a spool moved by TELLY_SPOOL_DIR.
The user's own config file is never touched: the user wrote it.
"""

import os
import shutil

from . import consent, identity, index, spool
from .errors import ConfigError
from .settings import process_settings


def _spool_dir():
    try:
        return spool.default_dir(process_settings().spool_dir)
    except ConfigError:  # a broken user config: the environment still says where the spool is
        return spool.default_dir(os.environ.get("TELLY_SPOOL_DIR") or None)


def leftovers():
    """Paths that exist and belong to the client, in the order they will be removed."""
    paths = consent.state_files()
    salt = identity.salt_path()
    if salt is not None and os.path.lexists(salt):
        paths.append(salt)
    cache = index.cache_dir()
    if cache is not None and os.path.lexists(cache):
        paths.append(cache)
    directory = _spool_dir()
    if directory and os.path.lexists(directory) and not (cache and _inside(directory, cache)):
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
