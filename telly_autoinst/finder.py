"""The ``sys.meta_path`` finder that hands each watched module's spec to the engines, and the chained loader.

For every module under a watched top-level name, the finder finds the real spec (walking the
rest of ``sys.meta_path``) and asks its callback for a loader to put in its place: the in-frame
engine answers with a loader that runs rewritten code; the others with :func:`chain`, which
runs the real loader and then reports the module.

Modeled on ddtrace's ModuleWatchdog rather than wrapt's importer: the finder walks the rest of
``sys.meta_path`` itself, because calling ``importlib.util.find_spec`` from inside a finder
deadlocks when a thread started by a module's ``__init__`` imports something (ddtrace PR #17742).

Standard library only: this module is imported at interpreter start.
"""

import sys

# The frozen modules behind importlib.machinery are always loaded; importlib.machinery itself
# (with importlib and warnings) would add half a millisecond to every interpreter start.
from _frozen_importlib import BuiltinImporter, FrozenImporter
from _frozen_importlib_external import ExtensionFileLoader
from _thread import get_ident


def _skip_loader(loader):
    """Loaders whose modules carry no Python code of their own: nothing to instrument."""
    if loader is None or isinstance(loader, (ExtensionFileLoader, _Chained)):
        return True
    if loader is BuiltinImporter or loader is FrozenImporter or isinstance(loader, type):
        return True
    # Namespace packages: NamespaceLoader is private and moved between versions; match by name.
    return type(loader).__name__ in ("NamespaceLoader", "_NamespaceLoader")


def _restore_loader(module, loader):
    """Put the real loader back, so code reading ``__loader__``/``__spec__.loader`` sees no trace of us."""
    try:
        module.__loader__ = loader
    except Exception:
        pass
    spec = getattr(module, "__spec__", None)
    if spec is not None:
        try:
            spec.loader = loader
        except Exception:  # some native specs refuse attribute assignment
            pass


class _Chained:
    """Holds the real loader and forwards every attribute it does not define to it
    (get_code, get_source, is_package, resource readers...)."""

    def __init__(self, loader, on_loaded):
        self._telly_loader = loader
        self._telly_on_loaded = on_loaded

    def __getattr__(self, name):
        return getattr(self._telly_loader, name)


class _ChainedLoader(_Chained):
    """Runs the real loader, then hands the executed module to the callback."""

    def create_module(self, spec):
        create = getattr(self._telly_loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module):
        loader = self._telly_loader
        # Restore before the module's own code runs: importlib.resources and pkgutil.get_data
        # read the loader from the module while it executes.
        _restore_loader(module, loader)
        loader.exec_module(module)
        self._telly_on_loaded(module)


class _LegacyChainedLoader(_Chained):
    """The same, for loaders with only ``load_module`` (zipimport before Python 3.10)."""

    def load_module(self, fullname):
        module = self._telly_loader.load_module(fullname)
        _restore_loader(module, self._telly_loader)
        self._telly_on_loaded(module)
        return module


def chain(loader, on_loaded):
    """A loader that runs ``loader`` and then calls ``on_loaded(module)`` (errors swallowed);
    None when ``loader`` can do neither."""

    def guarded(module):
        # The host's import must succeed whatever happens to instrumentation.
        try:
            on_loaded(module)
        except Exception:
            from ._debug import swallowed

            swallowed(f"instrumenting {getattr(module, '__name__', '?')}")

    if hasattr(loader, "exec_module"):
        return _ChainedLoader(loader, guarded)
    if hasattr(loader, "load_module"):
        return _LegacyChainedLoader(loader, guarded)
    return None


class WatchFinder:
    """Offers the spec of every module under a watched top-level name to ``on_found``; ignores the rest.

    ``on_found(spec)`` returns the loader to use instead of ``spec.loader``, or None to keep it.
    """

    def __init__(self, watched, on_found):
        self.watched = frozenset(watched)
        self._on_found = on_found
        # (thread id, module name) pairs being looked up: another finder further down may call
        # importlib.util.find_spec for the same name, which comes back here.
        self._finding = set()

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] not in self.watched:
            return None
        key = (get_ident(), fullname)
        if key in self._finding:
            return None
        self._finding.add(key)
        try:
            spec = self._find_with_the_rest(fullname, path, target)
        finally:
            self._finding.discard(key)
        if spec is None or _skip_loader(spec.loader):
            return spec
        try:
            loader = self._on_found(spec)
        except Exception:  # the host's import goes on with the real loader
            from ._debug import swallowed

            swallowed(f"finding {fullname}")
            loader = None
        if loader is not None:
            spec.loader = loader
        return spec

    def _find_with_the_rest(self, fullname, path, target):
        meta_path = sys.meta_path
        try:
            start = meta_path.index(self) + 1
        except ValueError:
            start = 0
        for finder in meta_path[start:]:
            if finder is self:
                continue
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is not None:
                spec = find_spec(fullname, path, target)
            else:  # pragma: no cover - finders with only find_module (gone in 3.12)
                spec = self._legacy_find(finder, fullname, path)
            if spec is not None:
                return spec
        return None

    @staticmethod
    def _legacy_find(finder, fullname, path):
        find_module = getattr(finder, "find_module", None)
        loader = find_module(fullname, path) if find_module is not None else None
        if loader is None:
            return None
        import importlib.util

        return importlib.util.spec_from_loader(fullname, loader)



def install(watched, on_found, replacing=None):
    """Put a WatchFinder first on ``sys.meta_path`` (once), or in the place of ``replacing``
    (bootstrap's stand-in, which is then gone), and return it."""
    meta_path = sys.meta_path
    for finder in meta_path:
        if isinstance(finder, WatchFinder):
            break
    else:
        finder = WatchFinder(watched, on_found)
        meta_path.insert(0, finder)
    if replacing is not None:
        try:  # another thread may have removed the same stand-in already
            meta_path.remove(replacing)
        except ValueError:
            pass
    return finder


def uninstall():
    """Remove every WatchFinder and bootstrap's stand-in: ``--dry-run`` imports packages without
    instrumenting them."""
    sys.meta_path[:] = [f for f in sys.meta_path
                        if not isinstance(f, WatchFinder) and not getattr(f, "telly_autoinst_gate", False)]
