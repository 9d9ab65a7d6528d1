"""What the engines share: the protocol, the record of what they counted, the targets they count, and instantiation.

Kept apart from ``engines/__init__`` (the factory) so that an engine never imports the package
that picks it: the factory imports the engines, never the other way round. ``selection`` makes
the targets and the engines count them, so their type lives here, where a warm import finds it
without loading selection itself (it replays a kept selection instead: ``rewrite.replay``). Each
module a warm run imports costs about half a million instructions whatever it holds, so what the
warm path needs is kept in few modules.
"""

import os
from _functools import partial  # type: ignore[import-not-found]  # C modules, not functools or threading (see counters)
from _thread import RLock, allocate_lock
from _weakref import ref

from .._record import record as _record_type

# Names for annotations only: never imported at run time (typing would cost an import).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# The rewrite's placeholders (``_rewriter`` writes them, ``rewrite`` binds them and caches the
# code with its ``sites``, ``(qualnames, calls, inits, placeholder tree)``: see
# ``_rewriter.rewrite``): the string constant PLACEHOLDER + str(n), which the engine replaces
# when it loads the code (no real constant starts with a NUL and this text).
PLACEHOLDER = "\x00telly_autoinst\x00"
CALL, INIT, TAIL = "call", "init", "tail"
# Where a function's counting statement puts its constant: the compiler makes a function's
# docstring, or None, its first constant (3.9 to 3.13), and the statement comes right after it.
# So whether a function's code counts, and under which key, is read from ``co_consts[1]``.
SITE_CONST = 1

_lock = allocate_lock()
# What types names them, without importing types (a module no start loads).
FunctionType: "Any" = type(lambda: None)
CodeType: "Any" = type((lambda: None).__code__)
# project_id -> set of keys instrumented in this process, by any engine.
_instrumented: "dict[str, set[str]]" = {}
# project_id -> {key: why}: selected targets an engine could not count.
_uncounted: "dict[str, dict[str, str]]" = {}


class Engine:
    """What the finder and the dry-run need from an engine (a plain class rather than a
    typing.Protocol, whose import would cost more than the engine on the first watched import)."""

    name: "str | None" = None

    def instrument(self, module, project):
        """Count ``module``'s targets; return the keys newly instrumented by this call.

        Idempotent: a second call on the same module object, or a call after
        ``importlib.reload``, never double-counts; a repeated call returns ``[]``.
        """
        raise NotImplementedError

    def explain(self, target):
        """``(engine name, None)`` for the engine that counts ``target``, or ``(None, why)`` when
        none does: what ``--dry-run`` lists, decided as :meth:`instrument` decides it."""
        return self.name, None

    def loader_for(self, spec, project):
        """A loader that runs ``spec``'s module already instrumented, or None: then the module
        runs as usual and :meth:`instrument` is called once it has run."""
        return None


def restore_loader(module, loader):
    """Put the real loader back on ``module`` before its code runs (``importlib.resources`` and
    ``pkgutil.get_data`` read it from the module while it executes), so that code reading
    ``__loader__`` or ``__spec__.loader`` sees no trace of an engine's loader."""
    try:
        module.__loader__ = loader
    except Exception:  # a module type that refuses the attribute: nothing to restore
        pass
    spec = getattr(module, "__spec__", None)
    if spec is not None:
        try:
            spec.loader = loader
        except Exception:  # some native specs refuse attribute assignment
            pass


def renew_lock_after_fork(engine):
    """Give ``engine`` a new ``_lock`` in a forked child: a fork during an import must not leave it held.

    The handler holds the engine weakly. An engine holds every function and class it counts, and
    what a fork handler holds lives into the interpreter's last stage of shutdown, where freeing
    it cost a warm click run 0.15M instructions more on 3.11.
    """
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=partial(_renew_lock, ref(engine)))


def _renew_lock(reference):
    engine = reference()
    if engine is not None:
        engine._lock = RLock()


def record(project_id, keys):
    """Remember ``keys`` as instrumented for ``project_id`` (called by the engines)."""
    with _lock:
        _instrumented.setdefault(project_id, set()).update(keys)


def renamed(project_id, old, new):
    """``old`` is counted as ``new`` from now on (a function published under another name)."""
    with _lock:
        keys = _instrumented.setdefault(project_id, set())
        keys.discard(old)
        keys.add(new)


def not_counted(project_id, key, why):
    """Remember that ``key`` was selected but cannot be counted, and why (called by the engines)."""
    with _lock:
        _uncounted.setdefault(project_id, {})[key] = why


def uncounted_keys(project_id):
    """``{key: why}`` of the selected keys that no engine counts for ``project_id`` in this process."""
    with _lock:
        return dict(_uncounted.get(project_id, {}))


def instrumented_keys(project_id):
    """Every key instrumented for ``project_id`` in this process so far (any engine)."""
    with _lock:
        return set(_instrumented.get(project_id, ()))


# -- selection's targets (selection picks them, each engine counts them, a warm import replays them)

# A record (see _record), not typing.NamedTuple: typing costs more to import than selecting a whole module.
_TargetFields: "Any" = _record_type("Target", "key kind owner name obj init_owner", defaults=(None,))


class Target(_TargetFields):
    """One counted object: its key, its kind ("function", "method", "classmethod",
    "staticmethod", "property" or "class"), and where it lives.

    ``owner.__dict__[name]`` holds ``obj`` (for ``kind == "class"``, ``obj`` is the class and
    ``init_owner`` the class whose ``__dict__`` holds the ``__init__`` that observes it).
    """

    __slots__ = ()


# Selection makes a Target for every counted object of a watched package: from all six fields
# at once, in C, rather than through the record's keyword-aware ``__new__``.
make_target = partial(tuple.__new__, Target)
ABSENT = object()  # what a namespace lookup finds where the name is gone


def in_package(module, roots):
    """Whether the module name ``module`` is one of ``roots`` or inside one."""
    if not isinstance(module, str):
        return False
    # A loop, not any() over a generator: closing a generator that stopped early raises
    # GeneratorExit inside it, and a warm import asks this for every counted class.
    for root in roots:
        if module == root or module.startswith(root + "."):
            return True
    return False


def unwrapped(obj):
    """The function at the end of ``obj``'s ``__wrapped__`` chain (``obj`` itself for a plain
    function); None when that is no Python function.

    ``__wrapped__`` is read from the instance ``__dict__`` only, where ``functools.update_wrapper``
    puts it: ``getattr`` would run the ``__getattr__`` of every constant and typing alias in the
    module, which costs more than selecting it.
    """
    for _ in range(100):  # a __wrapped__ cycle must not hang selection
        if type(obj) is FunctionType:  # the common case, first
            wrapped = obj.__dict__.get("__wrapped__")
            if wrapped is None:
                return obj
            obj = wrapped
            continue
        # What vars() reads, without raising (and catching) a TypeError for every constant.
        namespace = getattr(obj, "__dict__", None)
        if namespace is None:  # no __dict__: an int, a str, a C function
            return None
        wrapped = namespace.get("__wrapped__")
        if wrapped is None:
            return obj if isinstance(obj, FunctionType) else None
        if isinstance(obj, type):
            return None
        obj = wrapped
    return None


def package_init_owner(cls, roots):
    """The first class in ``cls.__mro__`` whose own ``__init__`` is a function of one of ``roots``.

    Foreign initializers (``object``, C types, other packages) are skipped rather than ending the
    search, because a cooperative one still calls ``super().__init__()`` into the package's.
    """
    for klass in cls.__mro__:
        init = vars(klass).get("__init__")
        if init is None or not isinstance(init, FunctionType):
            continue
        if in_package(getattr(init, "__module__", None), roots):
            return klass
    return None


# -- instantiation: which class one ``Cls(...)`` counts under, seen from inside a package ``__init__``
#
# Engines observe instantiation through the package's ``__init__`` functions, which also run for
# subclasses and for ``super().__init__()`` chains. For one ``Cls(...)`` call exactly one count is
# wanted, under the right key:
#
# * the ``__init__`` that counts is the *first package initializer* in ``type(self).__mro__``
#   (so ``super().__init__()`` into a base's initializer counts nothing more);
# * the key is the nearest *counted* class in ``type(self).__mro__``: ``Sub(Base)`` without an
#   ``__init__`` of its own counts as ``Sub``; a user's subclass outside the package, a private
#   or excluded class count as their nearest counted base.
#
# Both answers are cached per type: strongly for counted classes (they live as long as their
# module), weakly for other types (a user's dynamically created classes must stay collectable).
#
# Known limit: an explicit ``Cls.__init__(obj, ...)`` on an existing object looks exactly like an
# instantiation from inside ``__init__``, and is counted as one.

_NOTHING = (None, None)


class Instantiations:
    """Counted classes and the per-type resolution used by ``__init__`` observers.

    ``token_of(init)`` tells whether a value found in a class ``__dict__['__init__']`` is a
    package initializer this engine observes, and returns its token (what the observer compares
    against: the original function for wrapt, the code object for sys.monitoring).
    """

    def __init__(self, token_of):
        self._token_of = token_of
        self._ticks = {}  # counted class -> tick
        self._resolved: dict[type, Any] = {}  # counted class -> (token, tick)
        # weak reference to another type -> (token, tick): what a WeakKeyDictionary keeps, without
        # importing weakref (a module no start loads); a reference removes its entry when its type dies.
        self._others: "dict[Any, Any]" = {}
        # The per-call path reads this bound method: ``_resolved`` is cleared in place, never replaced.
        self.cached = self._resolved.get

    def add(self, cls, tick):
        """Count instantiations of ``cls`` with ``tick``; earlier resolutions may change, so forget them."""
        self.add_all(((cls, tick),))

    def add_all(self, ticks):
        """:meth:`add` for each ``(cls, tick)`` of ``ticks``, forgetting once."""
        self._ticks.update(ticks)
        self.forget()

    def counts(self, cls):
        """Whether instantiations of ``cls`` are counted already (instrumenting is idempotent)."""
        return cls in self._ticks

    def forget(self):
        """Drop cached resolutions (a new class or initializer may change them)."""
        self._resolved.clear()
        self._others.clear()

    def _dropped(self, reference):
        """A type in ``_others`` died: its entry goes (called by the weak reference)."""
        self._others.pop(reference, None)

    def resolve(self, cls):
        """``(token, tick)`` for an instance of ``cls``; ``(None, None)`` when nothing counts it.

        Runs inside the host's ``__init__`` call, so it never raises: whatever cannot be
        resolved is simply not counted.
        """
        try:
            found = self._others.get(ref(cls))  # a live reference hashes and compares as its type
            if found is not None:
                return found
        except TypeError:  # a type that cannot be weakly referenced
            pass
        entry = _NOTHING
        try:
            mro = cls.__mro__
            tick = next((self._ticks[k] for k in mro if k in self._ticks), None)
            if tick is not None:
                for klass in mro:
                    token = self._token_of(vars(klass).get("__init__"))
                    if token is not None:
                        entry = (token, tick)
                        break
            if cls in self._ticks:
                self._resolved[cls] = entry
            else:
                self._others[ref(cls, self._dropped)] = entry
        except Exception:  # e.g. not weak-referenceable: resolved again next time
            pass
        return entry
