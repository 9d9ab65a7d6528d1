"""What the ``.pth`` line runs at interpreter start: kill switches, the cached watch list, the finder.

Rules for this module, because it runs in every interpreter that has the package installed:
standard library only, no ``json``/``re``/``threading``/``importlib.metadata``; never raise,
never print; safe to run twice. Everything else is deferred until a watched module is imported.
"""

import os
import sys

from ._env import kill_switch

_started = False


def start():
    """Install the import hook when any package is watched; otherwise leave no trace."""
    global _started
    if _started:  # a .pth seen twice (two site dirs, or site.addsitedir again)
        return
    _started = True
    try:
        _start()
    except Exception:
        # Whatever went wrong (broken cache, unreadable home, read-only file system),
        # the program runs untouched.
        pass


def _start():
    if kill_switch() is not None:
        return
    from . import index

    forced = frozenset(n.strip() for n in os.environ.get("TELLY_AUTOINST_PACKAGES", "").split(",") if n.strip())
    cached = index.read()
    if cached is None:
        # Without a writable cache every start would pay for a full scan: stay untouched.
        if not index.writable():
            return
        gate = _Gate(None, forced)
    else:
        watched = frozenset(cached[0]) | forced
        if not watched:
            return
        gate = _Gate(watched, forced)
    if not any(getattr(f, "telly_autoinst_gate", False) for f in sys.meta_path):
        sys.meta_path.insert(0, gate)
        # A watched package imported before us is never imported again: no later import would
        # start the rescan for it, so it happens now (reading gate.watched rescans and adopts).
        if cached is not None:
            _adopt_loaded(gate.watched)
        elif _imported_before_us():
            gate.watched  # noqa: B018


def _adopt_loaded(watched):
    """Instrument the watched modules imported before the hook existed (by an earlier .pth)."""
    for name in [n for n in list(sys.modules) if n.partition(".")[0] in watched]:
        module = sys.modules.get(name)
        if module is not None:
            _on_loaded(module)


# Imports that never start a stale index's rescan: the standard library, what site itself looks
# for, and this package.
_NEVER_SCAN = ("sitecustomize", "usercustomize", "telly_autoinst")
_stdlib: "frozenset[str] | None" = getattr(sys, "stdlib_module_names", None)


def _stdlib_names():
    """The standard library's top-level names. Python 3.9 has no ``sys.stdlib_module_names``:
    there they are read once from the directories of ``os`` and ``lib-dynload``, only when a
    stale index makes the question come up."""
    global _stdlib
    if _stdlib is None:
        names = set(sys.builtin_module_names)
        home = os.path.dirname(os.__file__)
        for folder in (home, os.path.join(home, "lib-dynload")):
            try:
                entries = os.listdir(folder)
            except OSError:
                continue
            names.update(e.partition(".")[0] for e in entries if e not in ("site-packages", "dist-packages"))
        _stdlib = frozenset(names)
    return _stdlib


def _imported_before_us():
    """Whether a module that could be watched was imported before the hook (by an earlier .pth):
    public, top-level and not in the standard library. Private helpers such as setuptools'
    ``_distutils_hack`` cannot be watched."""
    stdlib = _stdlib_names()
    return any("." not in n and n[:1] != "_" and n not in stdlib and n not in _NEVER_SCAN for n in sys.modules)


class _Gate:
    """The finder's stand-in at the head of ``sys.meta_path`` until a watched module is imported.

    Its ``find_spec`` is the finder's own fast path, so every other import costs what it did;
    the first watched import puts the real ``WatchFinder`` in its place. Importing ``finder`` at
    interpreter start cost as much as the rest of start-up's work, and most starts never
    import a watched package.

    When the cached index is stale or missing (the first start, or after a pip install), the
    rescan (``importlib.metadata``, TOML, ``json``, ``re``, ``threading``) is not done at start
    either: it waits for the first import from outside the standard library, so a start that
    imports none (``python -c pass``) never pays for it.
    """

    telly_autoinst_gate = True  # how finder.uninstall() recognises it without importing this module

    def __init__(self, watched, forced=frozenset()):
        self._watched = watched  # None until a stale index is rebuilt
        self._forced = forced
        self._scanning = False

    @property
    def watched(self):
        """The watched top-level names; the first read after a stale index rebuilds it."""
        if self._watched is None:
            from .discovery import rebuild_index

            found, _ = rebuild_index()
            self._watched = frozenset(found) | self._forced
            _adopt_loaded(self._watched)
        return self._watched

    def find_spec(self, fullname, path=None, target=None):
        top = fullname.partition(".")[0]
        watched = self._watched
        if watched is None:
            # The rescan's own imports (and another thread's, meanwhile) pass through untouched.
            if self._scanning or top in _NEVER_SCAN or top in _stdlib_names():
                return None
            self._scanning = True
            try:
                watched = self.watched
            except Exception:  # a failed scan leaves the program as it is, counting nothing
                from ._debug import swallowed

                swallowed("rebuilding the index of watched packages")
                watched = self._watched = frozenset()
            finally:
                self._scanning = False
        if top not in watched:
            return None
        from .finder import install

        return install(watched, _on_found, replacing=self).find_spec(fullname, path, target)


def _on_found(spec):
    # Runs on the first import of each watched module: control (and everything it needs) is
    # imported then, never at interpreter start.
    from .control import loader_for

    return loader_for(spec)


def _on_loaded(module):
    try:
        from .control import on_module_loaded

        on_module_loaded(module)
    except Exception:
        from ._debug import swallowed

        swallowed(f"instrumenting {module.__name__}")
