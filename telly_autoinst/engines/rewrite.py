"""The in-frame engine: counting statements compiled into the package's own functions as they are imported.

A counted call runs one extra statement *inside the function's own frame*, before its first
line: ``<itertools.count>.__next__()``, C code that pushes no frame. Nothing wraps the
function, so code inside it, and code it calls, sees exactly the frames it sees without the
hook (``sys._getframe``, ``inspect.stack``, warnings' ``stacklevel``, logging's
``findCaller``, tracebacks, frame-based ``__module__`` and pickling). No object is replaced,
so identity, ``type()`` and every reference taken before the module finished importing count.

How the statements get there (``_rewriter`` explains the rewrite; the cache is described below):

* **Import** (the usual path): the finder asks :meth:`RewriteEngine.loader_for` for a loader.
  For a plain source file, the rewritten module code comes from the per-user cache, or is
  rewritten and cached; its placeholders are bound to counters; and a ``SourceFileLoader``
  whose ``get_code`` returns that code replaces the spec's loader. The import system's own
  ``exec_module`` runs it, so no frame of ours surrounds the module's execution either. The
  module's last statement tells the engine that it has run; selection then picks which of the
  compiled counters are reported (:func:`counters.enable_keys`).
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
observer at the top of the package ``__init__`` (see ``_base.Instantiations``), which returns before the
body starts.

A function that the package publishes under another name after its module ran (httpx sets
``__module__ = "httpx"`` on its exports, so selection keys ``httpx._api.get`` as ``httpx.get``)
keeps its one counter, which is then reported under the key selection gives it
(:func:`counters.rename`): one call, one count, under one key.

A selected target whose body is not in the module's source (a dataclass's or attrs class's
generated ``__init__``, a function made by ``exec``, a module installed as ``.pyc`` only)
cannot be counted in frame. It is *not counted*, and :meth:`RewriteEngine.explain` says why
(``--dry-run`` lists it under "not counted, because…"): handing it to wrapt would import wrapt
and its dependencies into the host for a handful of names, and put a frame of ours on its stack.
"""

import marshal
import os
import sys
from _frozen_importlib_external import MAGIC_NUMBER, SourceFileLoader
from _operator import attrgetter, contains, itemgetter  # not operator: see counters
from _thread import RLock  # not threading: see counters
from itertools import repeat
from zlib import crc32

from .. import __version__, counters
from .._env import no_cache, note, swallowed
from .._statefile import SELF, dir_refusal, private_dir, read_bytes, write_atomic
from ..index import cache_dir, index_path, stable_hash, stamp
from ._base import (
    ABSENT,
    CALL,
    INIT,
    PLACEHOLDER,
    SITE_CONST,
    TAIL,
    CodeType,
    Engine,
    FunctionType,
    Instantiations,
    make_target,
    not_counted,
    package_init_owner,
    record,
    renamed,
    renew_lock_after_fork,
    restore_loader,
    unwrapped,
)

# Names for annotations only: never imported at run time (typing would cost an import).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


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
            restore_loader(module, self._telly_original)
        return code


def _in_archive(path):
    """Whether ``path`` names a file inside an archive on ``sys.path`` (``app.pyz/pkg/mod.py``)."""
    parent = os.path.dirname(path)
    while parent and parent != os.path.dirname(parent):
        if os.path.isfile(parent):
            return True
        parent = os.path.dirname(parent)
    return False


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

    def __init__(self):
        self._lock = RLock()
        renew_lock_after_fork(self)
        # counter -> (project_id, key): the counters bound into code objects, each compiled for
        # that key (a function's code holds its counter at co_consts[SITE_CONST]). Keyed by the
        # objects, never by id(): ids are aligned addresses, which crowd a dict's or a set's
        # slots (lookups cost 2.7 times as much); an object hashes its address rotated.
        self._counted = {}
        # The observers bound into __init__ code objects.
        self._observers = set()
        # The functions whose counters are reported: enable() is idempotent, this keeps
        # instrument()'s "newly instrumented" answer exact (a reloaded module's functions are new,
        # although their counters are the ones they had).
        self._armed = set()
        self._instances = Instantiations(self._init_token)
        # counted class -> the key its instantiations are reported under (it may be renamed).
        self._class_keys = {}

    # -- import path -------------------------------------------------------------------------

    def loader_for(self, spec, project):
        """A loader that runs ``spec``'s module rewritten, or None to leave it to the caller."""
        original = spec.loader
        if type(original) is not SourceFileLoader or spec.name != original.name:
            return None
        try:
            sites, code, plans, current = self._module_code(original.path, original)
            kept = (original.path, current, sites, code, plans)
            code = self._bind(code, sites, spec.name, project, kept)
        except Exception:  # SyntaxError and friends: the real loader raises them for the host
            swallowed(f"rewriting {spec.name}")
            return None
        return _RewrittenLoader(original, code)

    def _module_code(self, path, loader=None):
        """``(sites, code, plans, stamp)`` of ``path``: cached, or rewritten now (and cached)."""
        current = code_stamp(path)
        cached = load_code(path, current)
        if cached is not None:
            return (*cached, current)
        if loader is not None:
            source = loader.get_data(path)
        else:
            with open(path, "rb") as handle:
                source = handle.read()
        from ._rewriter import rewrite  # ast: only when the cache has nothing for this file

        sites, code = rewrite(source, path)
        store_code(path, current, sites, code)
        return sites, code, {}, current

    def _bind(self, code, sites, modname, project, kept=None):
        """``code`` with every placeholder replaced by its counter, observer or end-of-module call.

        A module has hundreds of sites: the values of each kind are made in one step, in the order
        the placeholders are numbered (see ``_rewriter.rewrite``), with no pass over the sites.
        """
        project_id = project.project_id
        qualnames, calls, inits, tree = sites
        keys = list(map((modname + ".").__add__, qualnames[:calls]))
        values: list[Any] = counters.steps_for(project_id, keys)
        observers = [self._observer() for _ in range(inits)]
        with self._lock:
            self._counted.update(zip(values, zip(repeat(project_id), keys)))
            self._observers.update(observers)
        values += observers
        values.append(self._module_ran(modname, project, kept))
        return _bind_tree(code, tree, values)

    def _counter_entry(self, code, project_id=None):
        """``(counter, key)`` of the counter bound into ``code`` (for ``project_id``, unless
        None), or None."""
        consts = code.co_consts
        if len(consts) > SITE_CONST:
            value = consts[SITE_CONST]
            try:
                entry = self._counted.get(value)  # a constant equals no counter
            except TypeError:  # unhashable: code made by hand, not by the compiler
                return None
            if entry is not None and (project_id is None or entry[0] == project_id):
                return value, entry[1]
        return None

    def _observer_of(self, code):
        """The observer bound into an ``__init__``'s ``code``, or None."""
        consts = code.co_consts
        try:
            if len(consts) > SITE_CONST and consts[SITE_CONST] in self._observers:
                return consts[SITE_CONST]
        except TypeError:  # unhashable: code made by hand, not by the compiler
            pass
        return None

    def _module_ran(self, modname, project, kept=None):
        # The unbound code in ``kept`` is needed once, to keep a new plan: released then, not
        # held by the bound code's constants for the rest of the process.
        pending = [kept]

        def module_ran():
            # Called by the module's last statement, from the module's own frame.
            try:
                namespace = sys._getframe(1).f_globals
                module = sys.modules.get(modname)
                # `python -m pkg.mod` runs this code as __main__, which is not counted.
                if module is None or namespace.get("__name__") != modname or vars(module) is not namespace:
                    return
                self._arm(module, project, *self._planned(module, project, pending.pop() if pending else None))
            except Exception:  # nothing may escape into the module being imported
                swallowed(f"instrumenting {modname}")

        return module_ran

    @staticmethod
    def _planned(module, project, kept):
        """``(targets, plain)``: the module's targets, replayed from the plan kept with its cached
        code when the namespace is what it saw (:func:`replay`), else selected and kept for the
        next run; ``(None, ())`` without a cache entry (``_arm`` selects)."""
        if kept is None:
            return None, ()
        path, current, sites, code, plans = kept
        key = _plan_key(project)
        plan = plans.get(key)
        if plan is not None:
            replayed = replay(module, project, plan)
            if replayed is not None:
                return replayed
        from ..selection import plan_of, select  # only where no kept plan holds

        targets = select(module, project)
        new = plan_of(module, targets)
        if new is not None and new != plan:
            store_code(path, current, sites, code, {key: new})
        return targets, ()

    def _observer(self):
        instances = self._instances

        def observe(obj=None):
            # The first statement of a package __init__: one count per instantiation, under
            # the nearest counted class, by the first package initializer in the MRO only.
            # ``def __init__(*args)`` passes ``*args[:1]``: nothing at all when called bare.
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
        from ..selection import select

        with self._lock:
            targets = select(module, project)
            missing = [t for t in targets if not self._in_frame(t, project)]
            if missing:
                try:
                    self._swap_code(missing, project)
                except Exception:  # no source, or it changed since: _arm lists them as not counted
                    swallowed(f"rewriting {module.__name__} after import")
            return self._arm(module, project, targets)

    def _swap_code(self, targets, project):
        """Give each target's body the rewritten code object compiled from its own source file."""
        files: dict[str, Any] = {}  # path -> (sites, {(name, first line): (code, placeholder)})
        for target in targets:
            if target.kind == "class":
                funcs = [_innermost(vars(target.init_owner).get("__init__"))]
            else:
                funcs = _bodies(target)
            for func in funcs:
                if func is None or self._counter_entry(func.__code__, project.project_id) is not None \
                        or self._observer_of(func.__code__) is not None:
                    continue
                old = func.__code__
                path = old.co_filename
                if path not in files:
                    files[path] = None
                    if path.endswith(".py") and os.path.isfile(path):
                        sites, code = self._module_code(path)[:2]
                        by_place: dict[Any, Any] = {}
                        _collect_sites(code, by_place)
                        files[path] = (sites, by_place)
                if files[path] is None:
                    continue
                sites, by_place = files[path]
                found = by_place.get((old.co_name, old.co_firstlineno))
                if found is None or found[0].co_freevars != old.co_freevars:
                    continue
                new_code, placeholder = found
                kind = _kind(sites, int(placeholder[len(PLACEHOLDER):]))
                # The def at this place, whatever its __qualname__ or __module__ say by now: its
                # counter is compiled for the key selection gives it.
                if kind == CALL and target.kind != "class":
                    bound = counters.steps_for(project.project_id, (target.key,))[0]
                    self._counted[bound] = (project.project_id, target.key)
                elif kind == INIT and target.kind == "class":
                    bound = self._observer()
                    self._observers.add(bound)
                else:
                    continue
                consts = tuple(bound if value == placeholder else value for value in new_code.co_consts)
                func.__code__ = new_code.replace(co_consts=consts)

    # -- arming --------------------------------------------------------------------------------

    def _in_frame(self, target, project):
        if target.kind == "class":
            return self._init_token(vars(target.init_owner).get("__init__")) is not None
        return self._compiled_bodies(target, project.project_id) is not None

    def _compiled_bodies(self, target, project_id):
        """``(bodies, counters, renamed)``: the functions whose bodies count for the (non-class)
        target, the counters bound into them, and the keys they were compiled under where that is
        not ``target.key`` (the function is published under another name); None unless every
        body has one."""
        bodies, bound = set(), []
        renamed: Any = ()  # most targets: compiled under their own key, nothing to rename
        key = target.key
        for func in _bodies(target):
            if func is None:
                return None
            entry = self._counter_entry(func.__code__, project_id)
            if entry is None:
                return None
            if entry[1] != key:
                renamed = {*renamed, entry[1]}
            bodies.add(func)
            bound.append(entry[0])
        return bodies, bound, renamed

    def _arm(self, module, project, targets=None, plain=()):
        """Report the compiled counters of the selected targets (and of ``plain``'s groups, see
        :func:`replay`); note those that have none."""
        done: list = []
        enabled: list = []  # keys whose compiled counters start reporting: enabled together, one lock
        project_id = project.project_id
        if targets is None:
            from ..selection import select

            targets = select(module, project)
        armed = self._armed
        classes: dict = {}  # class -> key: counted from this module on, all together once armed
        with self._lock:
            for holder, names, functions, keys in plain:
                if not self._arm_plain(functions, keys, project_id, enabled, done):  # one by one, then
                    kind = "function" if holder is module else "method"
                    targets.extend(map(make_target, zip(keys, repeat(kind), repeat(holder), names, functions,
                                                        repeat(None))))
            for target in targets:
                key, kind, _, _, obj, _ = target
                try:
                    if kind == "class":
                        if self._in_frame(target, project):
                            if obj in classes:  # a class published under two names
                                self._count_classes(classes, project_id)
                            if self._instances.counts(obj):
                                old = self._class_keys.get(obj)
                                if old is not None and old != key and self._rename_class(obj, old, key, project_id):
                                    done.append(key)
                                continue
                            classes[obj] = key
                            done.append(key)
                        else:
                            self._not_counted(target, project_id)
                        continue
                    if type(obj) is FunctionType and "__wrapped__" not in obj.__dict__:
                        # Most targets: a plain function or method, its own body, compiled under
                        # its own key (what _compiled_bodies finds, without its sets).
                        entry = self._counter_entry(obj.__code__, project_id)
                        if entry is not None and entry[1] == key:
                            if obj not in armed:
                                armed.add(obj)
                                enabled.append(key)
                                done.append(key)
                            continue
                    found = self._compiled_bodies(target, project_id)
                    if found is None:
                        self._not_counted(target, project_id)
                        continue
                    bodies, bound, old_keys = found
                    if old_keys and self._rename(bound, old_keys, key, project_id):
                        done.append(key)
                    if bodies <= armed:
                        continue
                    enabled.append(key)
                    armed |= bodies
                    done.append(key)
                except Exception:  # one target that cannot be counted is skipped, not the module
                    swallowed(f"counting {key}")
            try:
                self._count_classes(classes, project_id)
            except Exception:
                swallowed(f"counting the classes of {module.__name__}")
            counters.enable_keys(project_id, enabled)
        record(project_id, done)
        return done

    def _count_classes(self, classes, project_id):
        """Count the instantiations of ``classes`` (class -> key) from now on, and empty it: one
        lock for their ticks, one reset of the cached resolutions (see ``_base.Instantiations``)."""
        if classes:
            self._instances.add_all(zip(classes, counters.ticks_for(project_id, list(classes.values()))))
            self._class_keys.update(classes)
            classes.clear()

    def _arm_plain(self, functions, keys, project_id, enabled, done):
        """Arm plain ``functions`` that replay found where their plan saw them, each compiled with
        a counter of its own key in ``keys``, a group at a time in C steps (most targets are such
        functions, and a warm import arms hundreds); False, with nothing done, when any of them is
        otherwise: then the caller arms them one by one."""
        try:
            bound = list(map(_site_value, map(_constants, functions)))
            entries: list = list(map(self._counted.get, bound))
        except (IndexError, TypeError):  # fewer constants than a counting statement brings; code made by hand
            return False
        if None in entries or tuple(map(_second, entries)) != keys or set(map(_first, entries)) != {project_id}:
            return False
        armed = set(functions)
        if not armed.isdisjoint(self._armed):
            return False
        self._armed |= armed
        enabled += keys
        done += keys
        return True

    def _rename(self, bound, old_keys, key, project_id):
        """Report the counters ``bound`` (compiled under ``old_keys``) under ``key``."""
        for old in old_keys:
            if not counters.rename(project_id, old, key):
                note(f"{old} stays counted under its own name: {key} has a counter already")
                return False
            renamed(project_id, old, key)
        for counter in bound:
            self._counted[counter] = (project_id, key)
        return True

    def _rename_class(self, cls, old, key, project_id):
        """Report the instantiations of ``cls`` (counted as ``old``) under ``key``."""
        if not counters.rename(project_id, old, key):
            note(f"{old} stays counted under its own name: {key} has a counter already")
            return False
        renamed(project_id, old, key)
        self._class_keys[cls] = key
        return True

    def _not_counted(self, target, project_id):
        engine, why = self.explain(target)
        not_counted(project_id, target.key, why or "its body was compiled without a counter")

    def explain(self, target):
        """``("rewrite", None)`` when ``target`` can be counted in frame, else ``(None, why)``.

        Decided from the target's body alone, as the import path decides it: a counter is
        compiled into a function defined in its module's source file (a class: into its package
        ``__init__``, which needs a positional parameter or ``*args``).
        """
        if target.kind == "class":
            init = _innermost(vars(target.init_owner).get("__init__"))
            if init is None:
                return None, "its __init__ is not a Python function"
            bodies, wanted, what = [init], INIT, "its __init__"
        else:
            bodies, wanted, what = _bodies(target), CALL, "its body"
        for func in bodies:
            if func is None:
                return None, "it is not a Python function"
            code = func.__code__
            bound = self._counter_entry(code) if wanted == CALL else self._observer_of(code)
            if bound is not None:
                continue
            why = self._why_no_site(code, wanted, what)
            if why is not None:
                return None, why
        return self.name, None

    def _why_no_site(self, code, wanted, what):
        """Why the rewrite of ``code``'s source file holds no counter for it; None when it does."""
        path = code.co_filename
        if path.startswith("<") or not path.endswith(".py"):
            return f"{what} is generated at run time (dataclasses, attrs, exec): there is no source to count it in"
        if not os.path.isfile(path):
            if _in_archive(path):
                return f"{what} is imported from a zip archive (zipimport): only source files are rewritten"
            return f"{what} has no source file (the module is installed as .pyc only)"
        try:
            sites, module_code = self._module_code(path)[:2]
        except Exception as exc:  # unreadable or not Python: the import itself would have said so
            return f"its source file cannot be rewritten ({type(exc).__name__})"
        by_place: dict[Any, Any] = {}
        _collect_sites(module_code, by_place)
        found = by_place.get((code.co_name, code.co_firstlineno))
        if found is not None and found[0].co_freevars == code.co_freevars:
            if _kind(sites, int(found[1][len(PLACEHOLDER):])) == wanted:
                return None
        if wanted == INIT:
            return f"{what} is not defined in a class body of its module, or takes no positional argument"
        return f"{what} is not a function its module's source defines at module or class level"

    def _init_token(self, value):
        func = _innermost(value)
        return None if func is None else self._observer_of(func.__code__)


_index_stamp = None  # the index's stamp, read once per process (see _plan_key)


def _plan_key(project):
    """What a kept selection is valid for besides the module's source: the project's settings
    that select reads, and the index (any install, upgrade or removal in the environment rewrites
    it, so another package's new version never meets an old plan)."""
    global _index_stamp
    if _index_stamp is None:
        path = index_path()
        _index_stamp = stamp(path) if path else "-"
    return (project.project_id, tuple(project.packages), tuple(project.include), tuple(project.exclude), _index_stamp)


def _bind_tree(code, tree, values):
    """``code`` with the placeholders that ``tree`` locates replaced by ``values[placeholder
    number]`` (see ``_rewriter.rewrite``); only the code objects on the way to a placeholder are
    rebuilt."""
    consts = list(code.co_consts)
    for index, sub in tree.items():
        if index < 0:
            for i, own in sub:
                consts[i] = values[own]
        elif type(sub) is int:  # a function whose own counting statement is its only placeholder
            inner = consts[index]
            held = inner.co_consts
            consts[index] = inner.replace(co_consts=(*held[:SITE_CONST], values[sub], *held[SITE_CONST + 1:]))
        else:
            consts[index] = _bind_tree(consts[index], sub, values)
    return code.replace(co_consts=tuple(consts))


def _kind(sites, number):
    """What placeholder ``number`` of a module with ``sites`` (see ``_rewriter.rewrite``) is."""
    _, calls, inits, _ = sites
    return CALL if number < calls else INIT if number < calls + inits else TAIL


def _collect_sites(code, by_place):
    """Map ``(name, first line)`` of every code object holding a placeholder to ``(code, placeholder)``."""
    for value in code.co_consts:
        if type(value) is str and value.startswith(PLACEHOLDER):
            by_place[(code.co_name, code.co_firstlineno)] = (code, value)
        elif type(value) is CodeType:
            _collect_sites(value, by_place)


# What a warm import reads from a group of functions, in C (see RewriteEngine._arm_plain and replay).
_constants = attrgetter("__code__.co_consts")
_site_value = itemgetter(SITE_CONST)
_first, _second = itemgetter(0), itemgetter(1)
_dict, _qualname, _module = attrgetter("__dict__"), attrgetter("__qualname__"), attrgetter("__module__")


def replay(module, project, plan):
    """``(targets, plain)``: what ``plan`` (see ``selection.plan_of``) names in ``module``, as
    ``selection.select`` found it, with its plain functions as ``(holder, names, functions, keys)``
    groups rather than targets; None when the namespace is not what the plan saw (its names,
    the members of a class it uses, a target of another kind or name): then the caller selects
    afresh."""
    namespace = vars(module)
    names, classes, found, plain_plan = plan
    if tuple(namespace) != names:
        return None
    holders = []
    spaces = []  # each holder's __dict__, read once rather than once per target
    for path, members in classes:
        cls = _at(namespace, path)
        if cls is None:
            return None
        space = vars(cls)
        if tuple(space) != members:
            return None
        holders.append(cls)
        spaces.append(space)
    roots = None
    targets: list = []
    append = targets.append
    for key, kind, number, name, qualname, modname in found:
        if number < 0:
            holder, space = module, namespace
        else:
            holder, space = holders[number], spaces[number]
        if kind == "class" or kind == "property":
            if holder.__qualname__ != qualname or holder.__module__ != modname:
                return None
            if kind == "class":
                if roots is None:
                    roots = set(project.packages) | {module.__name__.split(".")[0]}
                init_owner = package_init_owner(holder, roots)
                if init_owner is None:
                    return None
                append(make_target((key, kind, holder, "__init__", holder, init_owner)))
                continue
        obj = space.get(name, ABSENT)
        if kind == "property":
            if type(obj) is not property:
                return None
        else:
            if type(obj) is FunctionType and "__wrapped__" not in obj.__dict__:
                func = obj if kind == "function" or kind == "method" else None
            elif kind == "staticmethod" or kind == "classmethod":
                func = unwrapped(obj.__func__) if isinstance(obj, (staticmethod, classmethod)) else None
            elif isinstance(obj, (staticmethod, classmethod)):
                func = None  # select gives it a kind of its own
            else:
                func = unwrapped(obj)
            if func is None or func.__qualname__ != qualname or func.__module__ != modname:
                return None
        append(make_target((key, kind, holder, name, obj, None)))
    plain = []
    for number, names, keys, qualnames, modnames in plain_plan:
        holder, space = (module, namespace) if number < 0 else (holders[number], spaces[number])
        functions = list(map(space.get, names))
        if set(map(type, functions)) != {FunctionType} \
                or any(map(contains, map(_dict, functions), repeat("__wrapped__"))) \
                or tuple(map(_qualname, functions)) != qualnames or tuple(map(_module, functions)) != modnames:
            return None
        plain.append((holder, names, functions, keys))
    return targets, plain


def _at(namespace, path):
    """The class at ``path`` (names through class ``__dict__``\\ s) from a module namespace, or None."""
    obj = None
    for name in path:
        obj = namespace.get(name)
        if not isinstance(obj, type):
            return None
        namespace = vars(obj)
    return obj


# -- the per-user cache of rewritten code ----------------------------------------------------------
#
# The per-user cache of rewritten module code, so that a warm import costs what a ``.pyc`` load costs.
#
# One file per source file, under ``<user cache>/telly_autoinst/code/<cache tag>/``, never beside
# the package (site-packages is often read-only, and the package's own ``__pycache__`` must stay
# the package's). Like pytest's ``.pyc`` files, a file records what it was built from and is used
# only when all of it still holds: the source's path, size, mtime, inode and ctime (a source
# replaced by one of the same size and mtime is still a new file), the interpreter's magic
# number, ``-O``, this package's version and the rewrite's format. Nothing else decides
# the rewrite (the project's include/exclude patterns are applied at run time), so one file
# serves every project and every selection.
#
# A file is a CRC-32 of its payload (4 bytes, little-endian), then the payload: the ``marshal``
# dump of ``(stamp, sites, code, plans)``. ``plans`` are the module's selections, as
# ``selection.plan_of`` describes them, by project settings and index (see ``RewriteEngine``): a warm
# import replays one (``replay``, which checks it against the module's namespace) instead
# of selecting again. The checksum is checked before ``marshal.loads`` ever sees the
# bytes: a flipped bit in a code object can crash the interpreter, and a damaged file must only
# be a miss. (It guards against damage, not against people: who may write the cache is
# ``_statefile``'s check of the directory and of each file's owner. A CRC costs a tenth of a
# ``marshal.loads``; BLAKE2 cost two thirds of one.)
#
# Reading needs ``marshal``, ``zlib`` and ``os`` only: no ``ast``, no ``json``. A cache that cannot
# be read or written (no home, read-only file system, a directory another user can write) only
# makes every import a cold one.

# The sources that decide what a cache entry holds and how it is read back: the rewrite, its
# placeholders (``_base``), their binding and the cache's layout (this file). Their stamps are the
# cache's format, so a changed rewriter (a development build, an edited checkout, a release)
# never reuses old entries.
_FORMAT_SOURCES = ("_rewriter.py", "rewrite.py", "_base.py")
_format = None
# TELLY_NO_CACHE, read once per process (at the first watched import): os.environ.get raises and
# catches a KeyError when the variable is unset, which cost 0.13M instructions a run when asked
# at every import of click's 11 modules, and every import of one run takes the same path anyway.
_no_cache = None
# Far more than any module's code; a larger file is not ours, and is never read whole.
_MAX_BYTES = 64 << 20


def code_stamp(path):
    """What a rewrite of ``path`` as it is now is valid for; None when the source cannot be stat'ed.

    Taken *before* the source is read, as the import system does: a file edited meanwhile then
    leaves a stale stamp, which the next import rejects, never new code under an old stamp.
    """
    try:
        st = os.stat(path)
        rewrite_format = _format or _read_format()
    except (OSError, ValueError):  # ValueError: a value marshal cannot keep
        return None
    return (rewrite_format, __version__, MAGIC_NUMBER, sys.flags.optimize, path, st.st_size, st.st_mtime_ns,
            st.st_ino, st.st_ctime_ns)


def _read_format():
    """The stamps of the rewriter's own source files (``index.stamp``), taken once per process:
    an edited, rebuilt or reinstalled rewriter is a new format. Stamps rather than content: reading
    and checksumming its 60 KB cost a warm run more than all its other cache lookups together."""
    global _format
    here = os.path.dirname(os.path.abspath(__file__))
    _format = "telly-rewrite " + " ".join(stamp(os.path.join(here, name)) for name in _FORMAT_SOURCES)
    return _format


def code_cache_dir():
    """This interpreter's directory of the code cache, or None without a home."""
    base = cache_dir()
    return None if base is None else os.path.join(base, "code", sys.implementation.cache_tag or "none")


def _off():
    """Whether TELLY_NO_CACHE keeps this process away from the cache."""
    global _no_cache
    if _no_cache is None:
        _no_cache = no_cache()
    return _no_cache


def _file(path):
    folder = code_cache_dir()
    return None if folder is None else os.path.join(folder, f"{stable_hash(path):016x}.bin")


def load_code(path, current):
    """``(sites, code, plans)`` cached for ``path`` with the stamp ``current``, or None (always under
    TELLY_NO_CACHE)."""
    name = _file(path)
    if current is None or name is None or _off() or dir_refusal(os.path.dirname(name)) is not None:
        return None
    try:
        # Never blocks and never reads past the cap: a FIFO planted here must not hang an import.
        raw = memoryview(read_bytes(name, _MAX_BYTES, owner=SELF))  # only a file of this user's
        if len(raw) < 4 or int.from_bytes(raw[:4], "little") != crc32(raw[4:]):
            return None  # damaged: marshal must never see it
        stored, sites, code, plans = marshal.loads(raw[4:])
    except Exception:  # missing, truncated, written by another interpreter: rewrite again
        return None
    if stored != current or type(plans) is not dict:
        return None
    return sites, code, plans


def store_code(path, current, sites, code, plans=None):
    """Keep ``(sites, code, plans)`` for ``path``; does nothing where the cache cannot be written, or under
    TELLY_NO_CACHE."""
    name = _file(path)
    if current is None or name is None or _off():
        return
    try:
        private_dir(os.path.dirname(name))
        payload = marshal.dumps((current, sites, code, plans or {}))
        # Readers see the old file or the new one, never half of one.
        write_atomic(name, crc32(payload).to_bytes(4, "little") + payload)
    except (OSError, ValueError):  # ValueError: a value marshal cannot keep
        pass
