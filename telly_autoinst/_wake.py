"""What the finder's stand-in does when it wakes: the kill switches, the watched names, then the finder.

The stand-in is the module ``_telly_autoinst_bootstrap`` (the ``gate`` here), which holds only
its state and what every start runs, because every interpreter start unmarshals it. It calls
into this module at the first import from outside the standard library, and at start when a
module that could be watched was imported before it: a start that imports nothing from outside
the standard library never loads this module.
"""

import sys

from ._env import ENV_FORCE_PACKAGES, kill_switch, no_cache, swallowed, variable


def find_spec(gate, fullname, path, target):
    """The stand-in's ``find_spec`` past its fast path: wake, then hand a watched module's
    import to the real finder, which takes the stand-in's place."""
    top = fullname.partition(".")[0]
    if gate.watched is None:
        wake(gate)
    if top not in gate.watched:
        return None
    # loader_for runs at the first import of each watched module: the finder's decisions (and
    # everything they need) are imported then.
    from .finder import install, loader_for

    return install(gate.watched, loader_for, replacing=gate).find_spec(fullname, path, target)


def wake(gate):
    """Read the watched names once, instrument the watched modules imported before the hook
    existed, and take the stand-in off ``sys.meta_path`` when nothing is watched. Never raises."""
    gate.waking = True
    try:
        try:
            watched = _watched_names()
        except Exception:  # a failed wake leaves the program as it is, counting nothing
            swallowed("reading the index of watched packages")
            watched = frozenset()
        gate.watched = watched
        if watched:
            _adopt_loaded(watched)
        else:
            try:  # another thread may have removed it already
                sys.meta_path.remove(gate)
            except ValueError:
                pass
    finally:
        gate.waking = False


def _watched_names():
    """The watched top-level names: none when a kill switch is on (checked before anything is
    read or written), or when no cache can be written."""
    if kill_switch() is not None:
        return frozenset()
    from . import index

    forced = frozenset(n.strip() for n in (variable(ENV_FORCE_PACKAGES) or "").split(",") if n.strip())
    cached = index.read()
    if cached is not None:
        return frozenset(cached[0]) | forced
    # Without a writable cache every start would pay for a full scan: stay untouched, unless
    # the user asked for exactly that (TELLY_NO_CACHE), or the cache directory is refused
    # (another user's: nothing of it is used, and counting goes on from a scan in memory).
    if not index.writable() and not no_cache() and index.refused() is None:
        return frozenset()
    from .discovery import rebuild_index

    found, _ = rebuild_index()
    return frozenset(found) | forced


def _adopt_loaded(watched):
    for name in [n for n in list(sys.modules) if n.partition(".")[0] in watched]:
        module = sys.modules.get(name)
        if module is None:
            continue
        try:
            from .finder import on_module_loaded

            on_module_loaded(module)
        except Exception:
            swallowed(f"instrumenting {name}")
