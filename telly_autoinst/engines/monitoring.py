"""The sys.monitoring engine (CPython 3.12+): counts calls from local PY_START events, changing no object.

A ``PY_START`` event is switched on (``sys.monitoring.set_local_events``) for each target's code
object only, so other code runs at full speed, and identity, pickling, ``type()`` and every
reference taken before instrumentation stay exact. The callback never returns ``DISABLE``:
that would stop the event for the code object after its first call, and every call counts.

What a code object cannot tell, this engine hands to the wrapt engine, so keys stay the same:

* a function whose code is not its own: a ``functools.wraps``-style wrapper (``__wrapped__``;
  e.g. ``singledispatch``), or one whose ``co_qualname`` differs from its ``__qualname__``;
* a code object shared by two function keys (the first key is moved to wrapt too), or by a
  function key and an initializer (the initializer keeps the code);
* an ``__init__`` that is decorated or takes no positional ``self``.

Such a hand-off imports wrapt, which this engine otherwise never needs.

Instantiation is observed through the package ``__init__``'s code (see ``_base.Instantiations``); it reads
``self`` from the starting frame (``f_locals``), which costs more than a plain call. Classes
without a package ``__init__`` have no instantiation key (``selection``), as with wrapt.

Tool ids: 3 and 4 are free by convention, 5 is taken only as a last resort; with none free,
``engines.make_engine`` falls back to the in-frame ``rewrite`` engine with a note. Debuggers,
coverage and profilers keep their own ids (0, 1, 2) and run alongside.

Generators, coroutines and async generators start (PY_START) at their first ``next``/``send``/
``await``, not when called: one that is created and never started is not counted, where wrapt
counts the call.
"""

import sys
import threading
import types

from .. import _env, counters
from ..selection import select
from ._base import Engine, Instantiations, record, renew_lock_after_fork

# Names for annotations only: never imported at run time (typing would cost an import).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_TOOL_NAME = "telly_autoinst"
# 0 debugger, 1 coverage, 2 profiler and 5 optimizer are the ids other tools ask for by number
# and fail without; 3 and 4 are nobody's. 5 is taken only as a last resort: nothing in the
# standard library uses it on 3.12/3.13.
_TOOL_IDS = (3, 4, 5)
# The claim of an initializer's code object (keys are dotted, so this never equals one).
_INIT = "__init__"


def claim(fallback):
    """``(MonitoringEngine, None)`` on a free tool id, else ``(None, reason)``.

    ``fallback()`` returns the engine that counts what sys.monitoring cannot (see ``engines.fallback``).
    """
    monitoring = sys.monitoring
    for tool in _TOOL_IDS:
        if monitoring.get_tool(tool) is not None:
            continue
        try:
            monitoring.use_tool_id(tool, _TOOL_NAME)
        except ValueError:  # taken between the check and the claim
            continue
        return MonitoringEngine(tool, fallback), None
    held = ", ".join(f"{tool}={monitoring.get_tool(tool)}" for tool in _TOOL_IDS)
    return None, f"no free sys.monitoring tool id ({held})"


def _own_code(func, initializer=False):
    """The code object that identifies ``func``, or None when its code is not its own."""
    if type(func) is not types.FunctionType or hasattr(func, "__wrapped__"):
        return None
    code = func.__code__
    if initializer:
        # Initializers are told apart by type(self), so a synthetic co_qualname (dataclasses) or a
        # function reused as __init__ is fine; the instance is the first positional parameter.
        return code if code.co_argcount >= 1 else None
    return code if code.co_qualname == func.__qualname__ else None


def _observe_init(code, cached, resolve, getframe=sys._getframe):
    argname = code.co_varnames[0]

    def observe():
        try:
            # Frames: 0 observe, 1 the monitoring callback, 2 the __init__ that is starting.
            cls = type(getframe(2).f_locals[argname])
            entry = cached(cls) or resolve(cls)
            if entry[0] is code:
                entry[1]()
        except Exception:  # an exception here would be raised inside the host's __init__
            _env.swallowed("observing an instantiation")

    return observe


class MonitoringEngine(Engine):
    """Counts the selected targets of a module with sys.monitoring local PY_START events."""

    name = "monitoring"

    def __init__(self, tool, fallback):
        self.tool = tool
        self._fallback = fallback
        self._lock = threading.RLock()
        renew_lock_after_fork(self)
        # Keyed by id(code): equal code objects of different functions (same name, line and
        # body in two modules) compare equal, and each must keep its own claim.
        self._handlers: dict[int, Any] = {}  # id(code) -> zero-argument callable run at each PY_START
        self._claims = {}  # id(code) -> (claim, target, project, code); claim: a key or _INIT
        self._shared = {}  # id(code) -> code found under two claims; counted by wrapt instead
        self._instances = Instantiations(self._init_token)
        handler_for = self._handlers.get
        monitoring = sys.monitoring

        def on_start(code, instruction_offset):
            handler = handler_for(id(code))
            if handler is not None:
                handler()

        monitoring.register_callback(tool, monitoring.events.PY_START, on_start)

    def instrument(self, module, project):
        """Watch ``module``'s targets; return the keys newly instrumented (``[]`` when repeated)."""
        done = []
        with self._lock:
            for target in select(module, project):
                try:
                    if self._watch(target, project):
                        done.append(target.key)
                except Exception:  # one target that cannot be watched is skipped, not the module
                    _env.swallowed(f"watching {target.key}")
                    continue
        record(project.project_id, done)
        return done

    def explain(self, target):
        """``("wrapt", None)`` for a target whose code object is not its own (handed to wrapt),
        else ``("monitoring", None)`` (a code object shared by two keys is found only as they run)."""
        if target.kind == "class":
            code = _own_code(vars(target.init_owner).get("__init__"), initializer=True)
        else:
            code = _own_code(target.obj.__func__ if target.kind in ("classmethod", "staticmethod") else target.obj)
        return ("wrapt" if code is None else self.name), None

    def _watch(self, target, project):
        if target.kind == "class":
            if self._instances.counts(target.obj):
                return False
            init = vars(target.init_owner).get("__init__")
            code = _own_code(init, initializer=True)
            if code is None or not self._claim(code, _INIT, target, project):
                return self._by_wrapt(target, project)
            if id(code) not in self._handlers:
                self._subscribe(code, _observe_init(code, self._instances.cached, self._instances.resolve))
            self._instances.add(target.obj, counters.tick_for(project.project_id, target.key))
            return True
        func = target.obj.__func__ if target.kind in ("classmethod", "staticmethod") else target.obj
        code = _own_code(func)
        if code is None or not self._claim(code, target.key, target, project):
            return self._by_wrapt(target, project)
        if id(code) in self._handlers:  # the same function again: a repeated instrument call
            return False
        self._subscribe(code, counters.tick_for(project.project_id, target.key))
        return True

    def _claim(self, code, claim, target, project):
        """True when ``code`` is free or already ``claim``'s; False sends ``target`` to wrapt."""
        if id(code) in self._shared:
            return False
        held = self._claims.setdefault(id(code), (claim, target, project, code))
        if held[0] == claim:
            return True
        if claim != _INIT and held[0] == _INIT:
            # An initializer tells its classes apart by type(self), not by code: it keeps the code.
            return False
        # One code object, two function keys (or a function key that an initializer now needs):
        # its events cannot say which was called, so the function key(s) go to wrapt.
        self._handlers.pop(id(code), None)
        self._by_wrapt(held[1], held[2])
        if claim == _INIT:
            self._claims[id(code)] = (claim, target, project, code)
            return True
        self._shared[id(code)] = code
        del self._claims[id(code)]
        sys.monitoring.set_local_events(self.tool, code, 0)
        return False

    def _subscribe(self, code, handler):
        self._handlers[id(code)] = handler
        events = sys.monitoring.get_local_events(self.tool, code)
        sys.monitoring.set_local_events(self.tool, code, events | sys.monitoring.events.PY_START)

    def _by_wrapt(self, target, project):
        return self._fallback().wrap_target(target, project)

    def _init_token(self, value):
        code = getattr(value, "__code__", None)
        held = self._claims.get(id(code))
        return code if held is not None and held[3] is code and held[0] == _INIT else None
