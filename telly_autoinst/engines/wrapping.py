"""The wrapt engine: counts calls through wrapt wrappers patched into modules and class ``__dict__``s.

Class objects are never proxied (a proxied class breaks ``type(x) is C``, pickling of instances,
Enum iteration and ABCs): methods are patched in the class ``__dict__`` instead, with wrapt
outside ``classmethod``/``staticmethod`` (the only order that binds right on every Python), and
instantiation is observed by wrapping the package ``__init__`` that runs for the class (see
``_base.Instantiations``).

Every wrapper is built once per original object and kept in a registry, so an object reachable
under several names of the package gets the same wrapper, and a repeated ``instrument`` or an
``importlib.reload`` never stacks wrappers. The per-call path only ticks a precomputed counter
and calls through: the tick is the wrapper's ``enabled`` callable, which wrapt's C extension
evaluates and, as it returns False, follows by calling the original itself, so a counted call
runs no Python code of ours (instantiation observers are the exception: they look at ``self``).
"""

from __future__ import annotations

import threading

import wrapt

from .. import _env, counters
from ..selection import select
from ._base import Engine, Instantiations, record, renew_lock_after_fork


class _CountedBoundFunction(wrapt.BoundFunctionWrapper):
    """A counted function bound by attribute access; pickles and copies like a bound method."""

    def _rebind_args(self):
        # What a bound method reduces to: (getattr, (its __self__, its name)). For a staticmethod
        # or a function fetched from the class there is no __self__: the class takes its place.
        wrapped = self.__wrapped__
        target = getattr(wrapped, "__self__", None)
        if target is None:
            target = self._self_owner
        return target, wrapped.__name__

    def __reduce_ex__(self, protocol):
        return getattr, self._rebind_args()

    def __reduce__(self):
        return self.__reduce_ex__(2)

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        import copy  # only deep copies need it; the first watched import should not

        target, name = self._rebind_args()
        return getattr(copy.deepcopy(target, memo), name)


class _CountedFunction(wrapt.FunctionWrapper):
    """A counted function, method, classmethod or staticmethod, patched where the original was.

    wrapt proxies refuse to pickle or copy by design; a function is pickled by reference, so
    this one reduces to its qualified name at module level (multiprocessing spawn re-imports it)
    or to ``getattr(owner_class, name)`` inside a class, and copies to itself as functions do.
    """

    __bound_function_wrapper__ = _CountedBoundFunction

    def __reduce_ex__(self, protocol):
        place = _places.get(id(self))
        if place is None:
            # A string means "the global of this name in obj.__module__"; pickle checks that the
            # module attribute is this very wrapper.
            return self.__wrapped__.__qualname__
        return getattr, place

    def __reduce__(self):
        return self.__reduce_ex__(2)

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self


class _CountedInit(_CountedFunction):
    """A package ``__init__`` wrapped to observe instantiation (its token is the original)."""


# id(wrapper) -> (class, attribute name) for wrappers that live in a class __dict__. Kept
# beside the wrappers rather than on them: setting attributes on a proxy at wrap time costs
# more than the wrapper itself, on every one of thousands of callables at import.
# Wrappers are never freed (the engine's registry holds them), so an id stays theirs.
_places: dict[int, tuple[type, str]] = {}


def _call_through(wrapped, instance, args, kwargs):
    # Never reached while the counter's tick (the wrappers' ``enabled``) returns False; kept
    # so that a truthy return could only ever mean "call the original".
    return wrapped(*args, **kwargs)


def _count_instances(token, cached, resolve):
    def count_instance(wrapped, instance, args, kwargs):
        cls = type(instance)
        entry = cached(cls) or resolve(cls)
        if entry[0] is token:
            entry[1]()
        return wrapped(*args, **kwargs)

    return count_instance


def _set(owner, name, value):
    if isinstance(owner, type):
        # type.__setattr__ goes past a metaclass __setattr__ that forbids assignment.
        type.__setattr__(owner, name, value)
    else:
        vars(owner)[name] = value


class WraptEngine(Engine):
    """Counts the selected targets of a module with wrapt wrappers."""

    name = "wrapt"

    def __init__(self):
        # Imports run in several threads; one module is instrumented at a time.
        self._lock = threading.RLock()
        renew_lock_after_fork(self)
        # id(original) -> (original, wrapper, project_id); holding the original keeps the id valid.
        self._wrappers = {}
        self._instances = Instantiations(self._init_token)

    def instrument(self, module, project):
        """Wrap ``module``'s targets; return the keys newly instrumented (``[]`` when repeated)."""
        targets = select(module, project)
        done = []
        with self._lock:
            for target in targets:
                try:
                    if self.wrap_target(target, project):
                        done.append(target.key)
                except Exception:  # one attribute that resists patching is skipped, not the module
                    _env.swallowed(f"wrapping {target.key}")
                    continue
            classes = {id(t.owner): t.owner for t in targets if isinstance(t.owner, type)}
            for owner in [module, *classes.values()]:
                self._share(owner, project.project_id)
        record(project.project_id, done)
        return done

    def wrap_target(self, target, project):
        """Instrument one target; False when it is already instrumented or cannot be."""
        if target.kind == "class":
            return self._count_class(target, project)
        if target.kind == "property":
            return self._count_property(target, project)
        owner, name, original = target.owner, target.name, target.obj
        if vars(owner).get(name) is not original or type(original) in (_CountedFunction, _CountedInit):
            return False
        wrapper = self._existing(original, _CountedFunction)
        if wrapper is None:
            tick = counters.tick_for(project.project_id, target.key)
            # The count happens in ``enabled``, evaluated by wrapt at each call before anything
            # else; it returns False, so wrapt then calls the original directly.
            wrapper = _CountedFunction(original, _call_through, tick)
        _set(owner, name, wrapper)
        self._wrappers[id(original)] = (original, wrapper, project.project_id)
        if isinstance(owner, type):
            _places.setdefault(id(wrapper), (owner, name))
        return True

    def _count_property(self, target, project):
        """A new property whose accessors are counted wrappers (a property object is immutable)."""
        owner, name, prop = target.owner, target.name, target.obj
        accessors = (prop.fget, prop.fset, prop.fdel)
        if vars(owner).get(name) is not prop or any(type(f) is _CountedFunction for f in accessors):
            return False
        tick = counters.tick_for(project.project_id, target.key)
        fget, fset, fdel = (None if f is None else _CountedFunction(f, _call_through, tick) for f in accessors)
        _set(owner, name, property(fget, fset, fdel, prop.__doc__))
        return True

    def _count_class(self, target, project):
        cls, init_owner = target.obj, target.init_owner
        if self._instances.counts(cls):
            return False
        init = vars(init_owner).get("__init__")
        if type(init) is not _CountedInit:
            if type(init) is _CountedFunction:
                return False
            wrapper = self._existing(init, _CountedInit)
            if wrapper is None:
                observe = _count_instances(init, self._instances.cached, self._instances.resolve)
                wrapper = _CountedInit(init, observe)
            _set(init_owner, "__init__", wrapper)
            # setdefault: a function that is also counted as itself keeps that wrapper for aliases.
            self._wrappers.setdefault(id(init), (init, wrapper, project.project_id))
            _places.setdefault(id(wrapper), (init_owner, "__init__"))
        self._instances.add(cls, counters.tick_for(project.project_id, target.key))
        return True

    def _existing(self, original, kind):
        entry = self._wrappers.get(id(original))
        if entry is not None and entry[0] is original and type(entry[1]) is kind:
            return entry[1]
        return None

    def _share(self, owner, project_id):
        """Point every other name in ``owner`` that holds an original of this project at its wrapper."""
        for name, value in list(vars(owner).items()):
            entry = self._wrappers.get(id(value))
            if entry is not None and entry[0] is value and entry[2] == project_id:
                try:
                    _set(owner, name, entry[1])
                except Exception:  # e.g. a read-only class: the alias keeps counting nothing
                    _env.swallowed(f"pointing the alias {name} at its wrapper")
                    continue

    def _init_token(self, value):
        return value.__wrapped__ if type(value) is _CountedInit else None

