"""What the ``.pth`` line runs at interpreter start: it puts the finder's stand-in in place.

Rules for this module, because it runs in every interpreter that has the package installed:
``os`` and ``sys`` only, and no module of the package until the stand-in wakes (each import
costs about 1% of ``python -c pass``); never raise, never print; safe to run twice.

It sits beside the package in site-packages, not inside it (as ``_virtualenv`` and setuptools'
``_distutils_hack`` do): importing ``telly_autoinst.bootstrap`` would import the package first,
one more module at every start, when most starts never wake the stand-in. The package is
imported when it wakes.
"""

import os
import sys

_started = False
# The contract's environment variable of force_packages (config/contract.json), as a literal:
# the contract module is one import more than a start may pay (tests/test_contract.py checks it).
_FORCE_PACKAGES_ENV = "TELLY_AUTOINST_PACKAGES"


def start():
    """Put the import hook's stand-in first on ``sys.meta_path`` (see :class:`_Gate`)."""
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
    if any(getattr(f, "telly_autoinst_gate", False) for f in sys.meta_path):
        return
    gate = _Gate()
    sys.meta_path.insert(0, gate)
    # A module imported before us (by an earlier .pth) is never imported again, so no later
    # import would wake the gate for it: wake now, and instrument it if it is watched.
    if _imported_before_us():
        gate.watched  # noqa: B018


def _adopt_loaded(watched):
    """Instrument the watched modules imported before the hook existed (by an earlier .pth)."""
    for name in [n for n in list(sys.modules) if n.partition(".")[0] in watched]:
        module = sys.modules.get(name)
        if module is not None:
            _on_loaded(module)


# Imports that never wake the gate: the standard library, what site itself looks for, and this
# package.
_NEVER_WAKE = ("sitecustomize", "usercustomize", "telly_autoinst")
_stdlib: "frozenset[str] | None" = getattr(sys, "stdlib_module_names", None)


def _stdlib_names():
    """The standard library's top-level names. Python 3.9 has no ``sys.stdlib_module_names``:
    there they are read once from the directories of ``os`` and ``lib-dynload``, when the gate
    first needs them."""
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
    others = set(sys.modules).difference(_stdlib or (), _NEVER_WAKE)  # in C: most names go here
    names = [n for n in others if "." not in n and n[:1] != "_"]
    if _stdlib is None and names:
        # Python 3.9: listing the standard library here cost as much as the rest of start-up, so
        # a module already loaded is judged by where it came from instead.
        home = os.path.dirname(os.__file__) + os.sep
        names = [n for n in names if not _loaded_from_stdlib(sys.modules.get(n), home)]
    return bool(names)


def _loaded_from_stdlib(module, home):
    try:
        path = vars(module).get("__file__")  # vars(): a module __getattr__ must not run here
    except TypeError:  # not a module: something put there by hand
        return False
    if not isinstance(path, str):
        return True  # built in or frozen
    return path.startswith(home) and "site-packages" not in path and "dist-packages" not in path


class _Gate:
    """The finder's stand-in at the head of ``sys.meta_path`` until a watched module is imported.

    Interpreter start only puts this gate in place: most starts never import a watched
    package, and many (``python -c pass``, a CLI tool's own ``--version``) import nothing
    outside the standard library. The gate wakes at the first import from outside it. It checks
    the kill switches first, before anything is read or written; then it reads the cached index
    of watched packages, or rebuilds a stale one (``importlib.metadata``, TOML, ``json``, ``re``,
    ``threading``). It leaves ``sys.meta_path`` when a kill switch is on, nothing is watched, or
    no cache can be written; otherwise it answers with the finder's own fast path until the
    first watched import puts the real ``WatchFinder`` in its place.
    """

    telly_autoinst_gate = True  # how finder.uninstall() recognises it without importing this module

    def __init__(self):
        self._watched = None  # the watched top-level names, once awake
        self._waking = False

    @property
    def watched(self):
        """The watched top-level names; the first read wakes the gate."""
        if self._watched is None:
            try:
                watched = self._wake()
            except Exception:  # a failed wake leaves the program as it is, counting nothing
                from telly_autoinst._debug import swallowed

                swallowed("reading the index of watched packages")
                watched = frozenset()
            self._watched = watched
            if watched:
                _adopt_loaded(watched)
            else:
                _leave(self)
        return self._watched

    def _wake(self):
        try:
            from telly_autoinst._env import kill_switch, no_cache
        except ImportError:
            # The package was beside this module at start but is not on sys.path any more (pip's
            # isolated build environments take site-packages off it): nothing to count with.
            return frozenset()

        if kill_switch() is not None:
            return frozenset()
        from telly_autoinst import index

        forced = frozenset(n.strip() for n in os.environ.get(_FORCE_PACKAGES_ENV, "").split(",") if n.strip())
        cached = index.read()
        if cached is not None:
            return frozenset(cached[0]) | forced
        # Without a writable cache every start would pay for a full scan: stay untouched, unless
        # the user asked for exactly that (TELLY_NO_CACHE), or the cache directory is refused
        # (another user's: nothing of it is used, and counting goes on from a scan in memory).
        if not index.writable() and not no_cache() and index.refused() is None:
            return frozenset()
        from telly_autoinst.discovery import rebuild_index

        found, _ = rebuild_index()
        return frozenset(found) | forced

    def find_spec(self, fullname, path=None, target=None):
        top = fullname.partition(".")[0]
        watched = self._watched
        if watched is None:
            # The wake's own imports (and another thread's, meanwhile) pass through untouched.
            if self._waking or top in _NEVER_WAKE or top in _stdlib_names():
                return None
            self._waking = True
            try:
                watched = self.watched
            finally:
                self._waking = False
        if top not in watched:
            return None
        from telly_autoinst.finder import install

        return install(watched, _on_found, replacing=self).find_spec(fullname, path, target)


def _leave(gate):
    try:  # another thread may have removed it already
        sys.meta_path.remove(gate)
    except ValueError:
        pass


def _on_found(spec):
    # Runs on the first import of each watched module: the decisions (and everything they need) are
    # imported then, never at interpreter start.
    from telly_autoinst.finder import loader_for

    return loader_for(spec)


def _on_loaded(module):
    try:
        from telly_autoinst.finder import on_module_loaded

        on_module_loaded(module)
    except Exception:
        from telly_autoinst._debug import swallowed

        swallowed(f"instrumenting {module.__name__}")
