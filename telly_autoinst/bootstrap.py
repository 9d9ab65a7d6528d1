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
    watched = _watched_names()
    if not watched:
        return
    if not any(getattr(f, "telly_autoinst_gate", False) for f in sys.meta_path):
        sys.meta_path.insert(0, _Gate(watched))
    # Packages imported before the hook existed (by an earlier .pth) are instrumented now.
    for name in [n for n in list(sys.modules) if n.partition(".")[0] in watched]:
        module = sys.modules.get(name)
        if module is not None:
            _on_loaded(module)


def _watched_names():
    from . import index

    forced = {n.strip() for n in os.environ.get("TELLY_AUTOINST_PACKAGES", "").split(",") if n.strip()}
    cached = index.read()
    if cached is None:
        # Without a writable cache every start would pay for a full scan: stay untouched.
        if not index.writable():
            return set()
        from .discovery import rebuild_index

        watched, _ = rebuild_index()
    else:
        watched, _ = cached
    return set(watched) | forced


class _Gate:
    """The finder's stand-in at the head of ``sys.meta_path`` until a watched module is imported.

    Its ``find_spec`` is the finder's own fast path, so every other import costs what it did;
    the first watched import puts the real ``WatchFinder`` in its place. Importing ``finder`` at
    interpreter start cost as much as the rest of start-up's work, and most starts never
    import a watched package.
    """

    telly_autoinst_gate = True  # how finder.uninstall() recognises it without importing this module

    def __init__(self, watched):
        self.watched = frozenset(watched)

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] not in self.watched:
            return None
        from .finder import install

        return install(self.watched, _on_found, replacing=self).find_spec(fullname, path, target)


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
