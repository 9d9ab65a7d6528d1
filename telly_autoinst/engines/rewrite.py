"""The in-frame engine: counting statements compiled into the package's own functions as they are imported.

A counted call runs one extra statement *inside the function's own frame*, before its first
line: ``slots[k]()``, where ``slots`` is a list constant of the module's code and ``slots[k]``
the bound ``__next__`` of the key's ``itertools.count``: C code that pushes no frame. Nothing wraps the
function, so code inside it, and code it calls, sees exactly the frames it sees without the
hook (``sys._getframe``, ``inspect.stack``, warnings' ``stacklevel``, logging's
``findCaller``, tracebacks, frame-based ``__module__`` and pickling). No object is replaced,
so identity, ``type()`` and every reference taken before the module finished importing count.

How the statements get there (``_rewriter`` explains the rewrite, ``_codecache`` the cache):

* **Import** (the usual path): the finder asks :meth:`RewriteEngine.loader_for` for a loader.
  For a plain source file, the rewritten module code comes from the per-user cache, or is
  rewritten and cached; its slots are filled (one list assignment: no code object is rebuilt);
  and a ``SourceFileLoader``
  whose ``get_code`` returns that code replaces the spec's loader. The import system's own
  ``exec_module`` runs it, so no frame of ours surrounds the module's execution either. The
  module's last statement tells the engine that it has run; selection then picks which of the
  compiled statements count: their slots get the keys' counters, the others keep a step that
  nobody reads.
* **Already imported** (:meth:`RewriteEngine.instrument`: modules imported before the hook,
  ``telly_autoinst.instrument()``, loaders that are not plain source files but whose file is):
  the same rewritten code is compiled or loaded, and each selected function gets the
  rewritten code object of its own body (``func.__code__`` is assigned; the function object
  stays the same).

Keys are those of ``selection``. What a key counts, in-frame: each *execution of the body* of
the function defined under that qualified name. So a function wrapped by a decorator
(``functools.wraps``, ``lru_cache``, ``singledispatch``) counts the calls that reach its body
(cache misses, the dispatches to that implementation), a property counts its getter, setter
and deleter runs, a generator counts when it starts, and instantiation is counted by an
observer at the top of the package ``__init__`` (see ``_instances``), which returns before the
body starts.

A selected target whose body is not in the module's source (a dataclass's generated
``__init__``, a function made by ``exec``, a body renamed at run time) cannot be counted in
frame on Python 3.9-3.11; it is handed to the fallback engine, exactly as the
``monitoring`` engine does (see ``engines.fallback``).
"""

import itertools
import os
import sys
import threading
from _frozen_importlib_external import SourceFileLoader
from types import CodeType, FunctionType

from .. import counters
from .._debug import swallowed
from ..selection import select
from . import _codecache
from ._base import Engine, record
from ._codecache import CALL, INIT, SLOT_BASE, TAIL
from ._instances import Instantiations

# Names for annotations only: never imported at run time (typing would cost an import).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# What the slot of a statement that does not count (yet) holds: a step in C that nobody reads.
_UNCOUNTED = itertools.count().__next__


def _restore_loader(module, loader):
    """Put the real loader back before the module's code runs (``importlib.resources`` and
    ``pkgutil.get_data`` read it from the module), so that only the code differs."""
    try:
        module.__loader__ = loader
        if module.__spec__ is not None:
            module.__spec__.loader = loader
    except Exception:  # some native specs refuse attribute assignment
        pass


class _RewrittenLoader(SourceFileLoader):
    """The real loader's twin whose ``get_code`` returns the rewritten code, once.

    A ``SourceFileLoader`` itself, so ``exec_module``, ``get_source``, ``get_data`` and the
    resource readers are the import system's own, and ``exec_module``'s frame is one the
    import system hides from tracebacks and ``warnings``.
    """

    def __init__(self, original, code):
        SourceFileLoader.__init__(self, original.name, original.path)
        self._telly_original = original
        self._telly_code = code

    def get_code(self, fullname):
        code, self._telly_code = self._telly_code, None
        if code is None or fullname != self.name:
            return self._telly_original.get_code(fullname)
        module = sys.modules.get(fullname)
        if module is not None:
            _restore_loader(module, self._telly_original)
        return code


def _innermost(obj):
    """The function whose body runs for ``obj``: through ``__wrapped__`` chains (``functools.wraps``,
    ``lru_cache``), ``classmethod``/``staticmethod``; None when there is no Python function."""
    for _ in range(100):  # a __wrapped__ cycle must not hang the import
        if type(obj) is FunctionType:  # the common case, first: a function's attributes are its __dict__
            wrapped = obj.__dict__.get("__wrapped__")
            if wrapped is None:
                return obj
            obj = wrapped
            continue
        if isinstance(obj, (classmethod, staticmethod)):
            obj = obj.__func__
            continue
        wrapped = getattr(obj, "__wrapped__", None) if not isinstance(obj, type) else None
        if wrapped is None:
            break
        obj = wrapped
    return obj if type(obj) is FunctionType else None


def _bodies(target):
    """The functions whose bodies count for a (non-class) target."""
    if target.kind == "property":
        accessors = (target.obj.fget, target.obj.fset, target.obj.fdel)
        return [_innermost(f) for f in accessors if f is not None]
    return [_innermost(target.obj)]


class RewriteEngine(Engine):
    """Counts the selected targets of a module from statements compiled into their bodies."""

    name = "rewrite"

    def __init__(self, fallback):
        # fallback() returns the engine for targets this one cannot rewrite (engines.fallback).
        self._fallback = fallback
        self._lock = threading.RLock()
        if hasattr(os, "register_at_fork"):  # a fork during an import must not leave it held
            os.register_at_fork(after_in_child=self._new_lock)
        # co_filename -> loads of that file's rewritten code, each
        # (slots, sites, places, "modname.", project_id): see _rewriter.rewrite.
        self._loads = {}
        self._instances = Instantiations(self._init_token)

    # -- import path -------------------------------------------------------------------------

    def loader_for(self, spec, project):
        """A loader that runs ``spec``'s module rewritten, or None to leave it to the caller."""
        original = spec.loader
        if type(original) is not SourceFileLoader or spec.name != original.name:
            return None
        try:
            sites, code = self._module_code(original.path, original)
            self._bind(code, sites, spec.name, project, self._module_ran(spec.name, project))
        except Exception:  # SyntaxError and friends: the real loader raises them for the host
            swallowed(f"rewriting {spec.name}")
            return None
        return _RewrittenLoader(original, code)

    def _module_code(self, path, loader=None):
        current = _codecache.stamp(path)
        cached = _codecache.load(path, current)
        if cached is not None:
            return cached
        if loader is not None:
            source = loader.get_data(path)
        else:
            with open(path, "rb") as handle:
                source = handle.read()
        from ._rewriter import rewrite  # ast: only when the cache has nothing for this file

        sites, code = rewrite(source, path)
        _codecache.store(path, current, sites, code)
        return sites, code

    def _bind(self, code, sites, modname, project, tail):
        """Fill the slots of freshly loaded ``code``: observers for ``__init__`` sites, ``tail`` for
        the module's last statement, a step nobody reads for the rest (until armed)."""
        site_list, places, slots = sites
        values = [_UNCOUNTED] * len(slots)
        for site, (kind, _) in enumerate(site_list):
            if kind == INIT:
                values[SLOT_BASE + site] = self._observer()
            elif kind == TAIL:
                values[SLOT_BASE + site] = tail
        slots[:] = values
        with self._lock:
            self._loads.setdefault(code.co_filename, []).append(
                (slots, site_list, places, f"{modname}.", project.project_id))

    def _site_of(self, code):
        """``(load, site)`` when ``code`` is a rewritten code object of a load, else None."""
        for load in self._loads.get(code.co_filename, ()):
            found = load[2].get((code.co_name, code.co_firstlineno))
            if found is not None:
                consts = code.co_consts
                if found[1] < len(consts) and consts[found[1]] is load[0]:
                    return load, found[0]
        return None

    def _module_ran(self, modname, project):
        def module_ran():
            # Called by the module's last statement, from the module's own frame.
            try:
                namespace = sys._getframe(1).f_globals
                module = sys.modules.get(modname)
                # `python -m pkg.mod` runs this code as __main__, which is not counted.
                if module is None or namespace.get("__name__") != modname or vars(module) is not namespace:
                    return
                self._arm(module, project)
            except Exception:  # nothing may escape into the module being imported
                swallowed(f"instrumenting {modname}")

        return module_ran

    def _observer(self):
        instances = self._instances

        def observe(obj):
            # The first statement of a package __init__: one count per instantiation, under
            # the nearest counted class, by the first package initializer in the MRO only.
            try:
                cls = type(obj)
                entry = instances.cached(cls) or instances.resolve(cls)
                if entry[0] is observe:
                    entry[1]()
            except Exception:  # an exception here would be raised inside the host's __init__
                pass

        return observe

    # -- already-imported modules --------------------------------------------------------------

    def instrument(self, module, project):
        """Count ``module``'s selected targets in frame, swapping in rewritten code objects where
        the module ran without them; return the keys newly instrumented (``[]`` when repeated)."""
        with self._lock:
            targets = select(module, project)
            missing = [t for t in targets if not self._in_frame(t, project)]
            if missing:
                try:
                    self._swap_code(missing, project, module.__name__)
                except Exception:  # no source, or it changed since: the fallback counts them
                    swallowed(f"rewriting {module.__name__} after import")
            return self._arm(module, project, targets)

    def _swap_code(self, targets, project, modname):
        """Give each target's body the rewritten code object compiled from its own source file."""
        files: dict[str, Any] = {}  # path -> (site list, {(name, first line): (code, site)})
        for target in targets:
            if target.kind == "class":
                funcs = [_innermost(vars(target.init_owner).get("__init__"))]
            else:
                funcs = _bodies(target)
            for func in funcs:
                if func is None or self._site_of(func.__code__) is not None:
                    continue
                old = func.__code__
                path = old.co_filename
                if path not in files:
                    files[path] = None
                    if path.endswith(".py") and os.path.isfile(path):
                        sites, code = self._module_code(path)
                        self._bind(code, sites, modname, project, _UNCOUNTED)  # this code never runs
                        site_list, places, slots = sites
                        by_place: dict[Any, Any] = {}
                        _collect_sites(code, slots, places, by_place)
                        files[path] = (site_list, by_place)
                if files[path] is None:
                    continue
                site_list, by_place = files[path]
                found = by_place.get((old.co_name, old.co_firstlineno))
                if found is None or found[0].co_freevars != old.co_freevars:
                    continue
                kind, qualname = site_list[found[1]]
                if (kind == CALL and target.kind != "class" and qualname == func.__qualname__) \
                        or (kind == INIT and target.kind == "class"):
                    func.__code__ = found[0]

    # -- arming --------------------------------------------------------------------------------

    def _in_frame(self, target, project):
        if target.kind == "class":
            return self._init_token(vars(target.init_owner).get("__init__")) is not None
        return self._compiled_slots(target, project.project_id) is not None

    def _compiled_slots(self, target, project_id):
        """``[(slots, index)]``: where the statements compiled into ``target``'s bodies that do not
        count yet find their callables (``[]`` once all count), or None unless every body of the
        (non-class) target has a statement of its key."""
        found = []
        key = target.key
        obj = target.obj
        # A plain function or method (most targets) is its own body: no _bodies/_innermost calls.
        plain = type(obj) is FunctionType and "__wrapped__" not in obj.__dict__
        for func in (obj,) if plain else _bodies(target):
            located = self._site_of(func.__code__) if func is not None else None
            if located is None:
                return None
            (slots, site_list, _, prefix, owner), site = located
            kind, qualname = site_list[site]
            if kind != CALL or owner != project_id or prefix + qualname != key:
                return None
            if slots[SLOT_BASE + site] is _UNCOUNTED:
                found.append((slots, SLOT_BASE + site))
        return found

    def _arm(self, module, project, targets=None):
        """Count the selected targets in their compiled statements; hand the rest to the fallback."""
        done = []
        armed = []  # (key, slots to fill): given the keys' counters together, under one lock
        project_id = project.project_id
        with self._lock:
            for target in select(module, project) if targets is None else targets:
                try:
                    if target.kind == "class":
                        if self._in_frame(target, project):
                            if self._instances.counts(target.obj):
                                continue
                            self._instances.add(target.obj, counters.tick_for(project_id, target.key))
                            done.append(target.key)
                        elif self._by_fallback(target, project):
                            done.append(target.key)
                        continue
                    slots = self._compiled_slots(target, project_id)
                    if slots is not None:
                        if not slots:  # counting already
                            continue
                        armed.append((target.key, slots))
                        done.append(target.key)
                    elif self._by_fallback(target, project):
                        done.append(target.key)
                except Exception:  # one target that cannot be counted is skipped, not the module
                    swallowed(f"counting {target.key}")
            for (_, slots), step in zip(armed, counters.steppers(project_id, [key for key, _ in armed])):
                for holder, index in slots:
                    holder[index] = step
        record(project_id, done)
        return done

    def _by_fallback(self, target, project):
        return self._fallback().wrap_target(target, project)

    def _init_token(self, value):
        func = _innermost(value)
        located = self._site_of(func.__code__) if func is not None else None
        if located is None:
            return None
        (slots, site_list, _, _, _), site = located
        return slots[SLOT_BASE + site] if site_list[site][0] == INIT else None

    def _new_lock(self):
        self._lock = threading.RLock()



def _collect_sites(code, slots, places, by_place):
    """Map ``(name, first line)`` of every code object of the load holding a site to ``(code, site)``."""
    place = (code.co_name, code.co_firstlineno)
    found = places.get(place)
    if found is not None and code.co_consts[found[1]] is slots:
        by_place[place] = (code, found[0])
    for value in code.co_consts:
        if type(value) is CodeType:
            _collect_sites(value, slots, places, by_place)
