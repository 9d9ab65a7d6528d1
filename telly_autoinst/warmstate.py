"""The warm state: the settings and consent verdicts of an earlier full run, reused while nothing they read changed.

A watched program's first import used to parse the user's config, layer every watched project's
settings from the index, and decide consent by reading the lists (``settings``, ``discovery``,
``consent``): the decisions cost under a millisecond, importing what makes them cost most of a
short program's overhead. So the full path writes what it decided here, and the next run reads
it back instead, with the standard library's ``marshal`` and ``zlib`` only.

What is kept (one file per user and environment, ``<user cache>/telly_autoinst/warm-<environment>.bin``):
the process settings, the projects by claimed module, and each project's counting verdict as
the full path decided it. It is *data, never authority*: used only while its key equals the key
computed now, in this process, from

* the stamps (``st_mtime_ns``, ``st_size``, ``st_ino``, ``st_ctime_ns``, or "missing") of every
  file the verdict read or would have read: the consent lists, the notices record, the
  kill-switch file, the user's config file, the index the projects came from and each
  ``pyproject.toml`` or ``telly.toml`` that supplied settings;
* this client's version, this file's format and the stamps of the client's own sources that
  decide (``_contract``, ``settings``, ``consent``, ``discovery``, ``finder``: a checkout edited
  in place has no new version);
* a fingerprint of the environment variables that matter (every ``TELLY_*``, ``DO_NOT_TRACK``
  and the variables that place home, config and cache), and what ``consent`` reads from the
  process itself (the CI vendor, whether stderr is a terminal).

Any difference, a damaged file (CRC-32, checked before ``marshal`` sees the bytes) or a file or
directory that is not this user's own is a miss, and the full path decides again. The kill
switches are checked before this file is read (``bootstrap``), ``TELLY_NO_CACHE`` keeps it
unread and unwritten, and every command that changes consent removes it
(:func:`invalidate`), so a change made with a command never even depends on a stamp.
"""

import marshal
import os
from zlib import crc32

from . import __version__
from ._env import (
    FILE_DISABLE,
    FILE_NOTICES,
    FILE_OPTIN,
    FILE_OPTOUT,
    debugging,
    home_dir,
    names_with,
    no_cache,
    note,
    swallowed,
    user_config_path,
    variable,
)
from ._statefile import SELF, dir_refusal, private_dir, read_bytes, write_atomic
from .index import cache_dir, environment_key, index_path, stable_hash, stamp

FORMAT = "telly-warm-1"
_PREFIX = "warm-"
_SUFFIX = ".bin"
# Far more than any environment's projects and verdicts; a larger file is not ours.
_MAX_BYTES = 4 << 20
# The variables outside TELLY_* that change what the full path decides, or where it reads.
_ENVIRONMENT = frozenset(("DO_NOT_TRACK", "HOME", "USERPROFILE", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"))


# The client's own sources that decide what the full path keeps: a checkout edited in place (no
# new version) must not meet a state its older code decided.
_HERE = os.path.dirname(os.path.abspath(__file__))
_DECIDERS = tuple(os.path.join(_HERE, name) for name in
                  ("_contract.py", "settings.py", "_record.py", "consent.py", "discovery.py", "finder.py"))


def path():
    """This user's warm state for this environment, or None without a home."""
    directory = cache_dir()
    return None if directory is None else os.path.join(directory, f"{_PREFIX}{environment_key()}{_SUFFIX}")


def _environment():
    """A fingerprint of the environment variables that matter, read now."""
    found = sorted((name, variable(name)) for name in {*names_with("TELLY_"), *_ENVIRONMENT})
    return stable_hash(repr(found))


def _process_facts():
    """What consent reads from the process rather than from files: the CI vendor, a terminal."""
    from ._env import ci_vendor, interactive  # looked up at each call: tests replace interactive

    return ci_vendor(), interactive()


def key(settings_files=()):
    """The key a warm state must hold to be used now. ``settings_files``: the files that
    supplied settings (a checkout's ``pyproject.toml``, a package's ``telly.toml``), as the
    state recorded them."""
    home = home_dir()
    consent_files = [] if home is None else [os.path.join(home, name)
                                             for name in (FILE_OPTOUT, FILE_OPTIN, FILE_NOTICES, FILE_DISABLE)]
    files = consent_files + [user_config_path(), index_path(), *_DECIDERS, *settings_files]  # see key_since
    stamps = tuple((name, stamp(name)) for name in files if name)
    return (FORMAT, __version__, stamps, _environment(), _process_facts())


def key_since(early, settings_files):
    """The key with ``settings_files`` added, when nothing of ``early`` (a :func:`key` taken
    before the index's declarations were read) changed meanwhile; else None: store nothing."""
    current = key(settings_files)
    same_files = current[2][:len(early[2])]
    if current[:2] == early[:2] and current[3:] == early[3:] and same_files == early[2]:
        return current
    if debugging():
        note("the warm state is not kept: "
             f"{_difference(early, (*current[:2], same_files, *current[3:]))} while this run read it")
    return None


def _read():
    """``(key, state)`` as stored, or None (missing, damaged, not ours, TELLY_NO_CACHE)."""
    name = path()
    if name is None or no_cache() or dir_refusal(os.path.dirname(name)) is not None:
        return None
    try:
        # Never blocks, never reads past the cap, and only a file of this user's.
        raw = memoryview(read_bytes(name, _MAX_BYTES, owner=SELF))
        if len(raw) < 4 or int.from_bytes(raw[:4], "little") != crc32(raw[4:]):
            return None  # damaged: marshal must never see it
        stored = marshal.loads(raw[4:])
        stored_key, state = stored
    except Exception:  # missing, truncated, another format: the full path decides
        return None
    if not isinstance(state, dict):
        return None
    return stored_key, state


def load():
    """``(key, state)`` when a warm state is stored and its key equals the key now; else None.

    ``state`` is ``{"fields": (project fields, process fields), "process": values, "projects":
    [values], "modules": [(module, project number)], "settings_files": [paths], "errors":
    [skipped tables], "verdicts": {project_id: (send, why)}}`` (written by ``finder``).
    """
    stored = _read()
    if stored is None:
        return None
    stored_key, state = stored
    current = key(state.get("settings_files", ()))
    if current != stored_key:
        if debugging():
            note(f"the warm state is stale ({_difference(stored_key, current)}): deciding again")
        return None
    return current, state


def _difference(before, after):
    """What differs between two keys of the same files, in words (TELLY_DEBUG)."""
    if not isinstance(before, tuple) or len(before) != len(after) or before[:2] != after[:2]:
        return "written by another version of the client"
    if before[2] != after[2]:
        now = dict(after[2])
        try:
            return next(f"{name} changed" for name, then in before[2] if now.get(name) != then)
        except (StopIteration, TypeError, ValueError):  # a stored key this client did not write
            return "the files it read changed"
    if before[3] != after[3]:
        return "a TELLY_* or home variable changed"
    return "the CI vendor or the terminal changed"


def store(current, state):
    """Keep ``state`` under ``current`` (a key taken *before* what it holds was read, so that a
    file changed meanwhile leaves a key that no later run matches). Does nothing under
    TELLY_NO_CACHE or where the cache cannot be written."""
    name = path()
    if current is None or name is None or no_cache():
        return
    try:
        private_dir(os.path.dirname(name))
        payload = marshal.dumps((current, state))
        write_atomic(name, crc32(payload).to_bytes(4, "little") + payload)
    except (OSError, ValueError):  # ValueError: a value marshal cannot keep; the next run decides again
        swallowed("writing the warm state")


def invalidate():
    """Remove every warm state of this user (each environment's): a command changed consent."""
    directory = cache_dir()
    if directory is None or dir_refusal(directory) is not None:
        return
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for entry in names:
        if entry.startswith(_PREFIX) and entry.endswith(_SUFFIX):
            try:
                os.unlink(os.path.join(directory, entry))
            except FileNotFoundError:
                continue
            except OSError:  # the stamps still tell the next run that consent changed
                swallowed(f"removing the warm state {entry}")


def status(project_id):
    """What ``--dry-run`` says of ``project_id``'s warm state in this environment: ``"valid"``
    (the next run uses it), ``"stale"`` (something it read changed: the next run decides
    again), ``"none"`` (nothing cached for it) or ``"off"`` (TELLY_NO_CACHE)."""
    if no_cache():
        return "off"
    stored = _read()
    if stored is None or project_id not in stored[1].get("verdicts", {}):
        return "none"
    stored_key, state = stored
    return "valid" if key(state.get("settings_files", ())) == stored_key else "stale"
