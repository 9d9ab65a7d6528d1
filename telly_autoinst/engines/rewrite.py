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
from _thread import RLock  # not threading: see counters
from zlib import crc32

from .. import __version__, counters
from .._debug import note, swallowed
from .._env import no_cache
from .._statefile import SELF, dir_refusal, private_dir, read_bytes, write_atomic
from ..index import cache_dir, index_path, stable_hash, stamp
from ._base import (
    ABSENT,
    CALL,
    INIT,
    PLACEHOLDER,
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
    unwrapped,
)

# Names for annotations only: never imported at run time (typing would cost an import).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any




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
        if hasattr(os, "register_at_fork"):  # a fork during an import must not leave it held
            os.register_at_fork(after_in_child=self._new_lock)
        # id(code) -> (code, project_id, key): code objects compiled with a counter of that key.
        self._counted = {}
        # id(code) -> (code, observer): __init__ code objects compiled with an observer.
        self._inits = {}
        # ids of counted code objects (kept alive by _counted) whose key is reported: enable()
        # is idempotent, this keeps instrument()'s "newly instrumented" answer exact.
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
        """``code`` with every placeholder replaced by its counter, observer or end-of-module call."""
        project_id = project.project_id
        site_list, tree = sites
        prefix = modname + "."
        values: list[Any] = [None] * len(site_list)
        calls, keys = [], []
        for i, (kind, qualname) in enumerate(site_list):  # one pass: a module has hundreds of sites
            if kind == CALL:
                calls.append(i)
                keys.append(prefix + qualname)
            elif kind == INIT:
                values[i] = self._observer()
            elif kind == TAIL:
                values[i] = self._module_ran(modname, project, kept)
        for i, steps in zip(calls, counters.steps_for(project_id, keys)):
            values[i] = steps
        rebuilt: list[Any] = []
        with self._lock:
            bound = _bind_tree(code, tree, values, rebuilt)
            for site, new_code in rebuilt:
                kind, qualname = site_list[site]
                self._remember(new_code, kind, prefix + qualname, values[site], project_id)
        return bound

    def _remember(self, code, kind, key, value, project_id):
        if kind == CALL:
            self._counted[id(code)] = (code, project_id, key)
        elif kind == INIT:
            self._inits[id(code)] = (code, value)

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
                self._arm(module, project, self._planned(module, project, pending.pop() if pending else None))
            except Exception:  # nothing may escape into the module being imported
                swallowed(f"instrumenting {modname}")

        return module_ran

    @staticmethod
    def _planned(module, project, kept):
        """The module's targets, replayed from the plan kept with its cached code when the
        namespace is what it saw (:func:`replay`), else selected and kept for the next run;
        None without a cache entry (``_arm`` selects)."""
        if kept is None:
            return None
        path, current, sites, code, plans = kept
        key = _plan_key(project)
        plan = plans.get(key)
        if plan is not None:
            targets = replay(module, project, plan)
            if targets is not None:
                return targets
        from ..selection import plan_of, select  # only where no kept plan holds

        targets = select(module, project)
        new = plan_of(module, targets)
        if new is not None and new != plan:
            store_code(path, current, sites, code, {key: new})
        return targets

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
                if func is None or id(func.__code__) in self._counted or id(func.__code__) in self._inits:
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
                (sites, _), by_place = files[path]
                found = by_place.get((old.co_name, old.co_firstlineno))
                if found is None or found[0].co_freevars != old.co_freevars:
                    continue
                new_code, placeholder = found
                kind, qualname = sites[int(placeholder[len(PLACEHOLDER):])]
                # The def at this place, whatever its __qualname__ or __module__ say by now: its
                # counter is compiled for the key selection gives it.
                if kind == CALL and target.kind != "class":
                    value = counters.steps_for(project.project_id, (target.key,))[0]
                    site = (kind, target.key, value)
                elif kind == INIT and target.kind == "class":
                    site = (kind, qualname, self._observer())
                else:
                    continue
                consts = tuple(site[2] if value == placeholder else value for value in new_code.co_consts)
                func.__code__ = new_code.replace(co_consts=consts)
                self._remember(func.__code__, *site, project.project_id)

    # -- arming --------------------------------------------------------------------------------

    def _in_frame(self, target, project):
        if target.kind == "class":
            return self._init_token(vars(target.init_owner).get("__init__")) is not None
        return self._compiled_codes(target, project.project_id) is not None

    def _compiled_codes(self, target, project_id):
        """``(ids, renamed)``: the ids of the code objects compiled with a counter for every body
        of the (non-class) target, and the keys they were compiled under where that is not
        ``target.key`` (the function is published under another name); None unless every body
        has one."""
        codes = set()
        renamed: Any = ()  # most targets: compiled under their own key, nothing to rename
        key = target.key
        for func in _bodies(target):
            if func is None:
                return None
            code = func.__code__
            entry = self._counted.get(id(code))
            if entry is None or entry[0] is not code or entry[1] != project_id:
                return None
            if entry[2] != key:
                renamed = {*renamed, entry[2]}
            codes.add(id(code))
        return codes, renamed

    def _arm(self, module, project, targets=None):
        """Report the compiled counters of the selected targets; note those that have none."""
        done = []
        enabled = []  # keys whose compiled counters start reporting: enabled together, one lock
        project_id = project.project_id
        if targets is None:
            from ..selection import select

            targets = select(module, project)
        counted, armed = self._counted, self._armed
        with self._lock:
            for target in targets:
                key, kind, _, _, obj, _ = target
                try:
                    if kind == "class":
                        if self._in_frame(target, project):
                            if self._instances.counts(obj):
                                old = self._class_keys.get(obj)
                                if old is not None and old != key and self._rename_class(obj, old, key, project_id):
                                    done.append(key)
                                continue
                            self._instances.add(obj, counters.tick_for(project_id, key))
                            self._class_keys[obj] = key
                            done.append(key)
                        else:
                            self._not_counted(target, project_id)
                        continue
                    if type(obj) is FunctionType and "__wrapped__" not in obj.__dict__:
                        # Most targets: a plain function or method, its own body, compiled under
                        # its own key (what _compiled_codes finds, without its sets of ids).
                        code = obj.__code__
                        entry = counted.get(id(code))
                        if entry is not None and entry[0] is code and entry[1] == project_id and entry[2] == key:
                            if id(code) not in armed:
                                armed.add(id(code))
                                enabled.append(key)
                                done.append(key)
                            continue
                    found = self._compiled_codes(target, project_id)
                    if found is None:
                        self._not_counted(target, project_id)
                        continue
                    codes, old_keys = found
                    if old_keys and self._rename(codes, old_keys, key, project_id):
                        done.append(key)
                    if codes <= armed:
                        continue
                    enabled.append(key)
                    armed |= codes
                    done.append(key)
                except Exception:  # one target that cannot be counted is skipped, not the module
                    swallowed(f"counting {key}")
            counters.enable_keys(project_id, enabled)
        record(project_id, done)
        return done

    def _rename(self, codes, old_keys, key, project_id):
        """Report the counters of ``codes`` (compiled under ``old_keys``) under ``key``."""
        for old in old_keys:
            if not counters.rename(project_id, old, key):
                note(f"{old} stays counted under its own name: {key} has a counter already")
                return False
            renamed(project_id, old, key)
        for code_id in codes:
            code, _, _ = self._counted[code_id]
            self._counted[code_id] = (code, project_id, key)
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
            entry = self._counted.get(id(code)) if wanted == CALL else self._inits.get(id(code))
            if entry is not None and entry[0] is code:
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
            kind, _ = sites[0][int(found[1][len(PLACEHOLDER):])]
            if kind == wanted:
                return None
        if wanted == INIT:
            return f"{what} is not defined in a class body of its module, or takes no positional argument"
        return f"{what} is not a function its module's source defines at module or class level"

    def _init_token(self, value):
        func = _innermost(value)
        entry = self._inits.get(id(func.__code__)) if func is not None else None
        return entry[1] if entry is not None and entry[0] is func.__code__ else None

    def _new_lock(self):
        self._lock = RLock()



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


def _bind_tree(code, tree, values, rebuilt):
    """``code`` with the placeholders that ``tree`` locates replaced by ``values[placeholder
    number]`` (see ``_rewriter.rewrite``); only the code objects on the way to a placeholder are
    rebuilt, and each that holds one is added to ``rebuilt`` as ``(placeholder number, code)``."""
    consts = list(code.co_consts)
    own = None
    for index, sub in tree.items():
        if index < 0:
            for i, own in sub:
                consts[i] = values[own]
        else:
            consts[index] = _bind_tree(consts[index], sub, values, rebuilt)
    result = code.replace(co_consts=tuple(consts))
    if own is not None:
        rebuilt.append((own, result))
    return result


def _collect_sites(code, by_place):
    """Map ``(name, first line)`` of every code object holding a placeholder to ``(code, placeholder)``."""
    for value in code.co_consts:
        if type(value) is str and value.startswith(PLACEHOLDER):
            by_place[(code.co_name, code.co_firstlineno)] = (code, value)
        elif type(value) is CodeType:
            _collect_sites(value, by_place)


def replay(module, project, plan):
    """The targets that ``plan`` (see ``selection.plan_of``) names in ``module``, as ``selection.select``
    found them; None when the namespace is not what the plan saw (its names, the members of a
    class it uses, a target of another kind or name): then the caller selects afresh."""
    namespace = vars(module)
    names, classes, found = plan
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
    return targets


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
