"""The counting engines behind one small protocol, the factory that picks one, and what they did.

Two engines count the targets that ``telly_autoinst.selection`` picks, under the same keys:

* ``wrapt`` (default, every Python): patches functions and the methods in class ``__dict__``s
  with ``wrapt.FunctionWrapper`` subclasses; class objects themselves are never proxied.
* ``monitoring`` (CPython 3.12+): local ``sys.monitoring`` ``PY_START`` events on the targets'
  code objects; changes no object. It hands to ``wrapt`` the few targets whose code object does
  not identify them (decorated functions, shared code).

Each engine is a process-wide singleton, because what it patched or subscribed to is
process-wide too.
"""

from __future__ import annotations

import sys
import threading

__all__ = ["Engine", "make_engine", "instrumented_keys"]

_lock = threading.Lock()
_engines: dict[str, Engine] = {}
# project_id -> set of keys instrumented in this process, by any engine.
_instrumented: dict[str, set[str]] = {}


class Engine:
    """What control and the dry-run need from an engine (a plain class rather than a
    typing.Protocol, whose import would cost more than the engine on the first watched import)."""

    name: str | None = None

    def instrument(self, module, project):
        """Count ``module``'s targets; return the keys newly instrumented by this call.

        Idempotent: a second call on the same module object, or a call after
        ``importlib.reload``, never double-counts; a repeated call returns ``[]``.
        """
        raise NotImplementedError


def make_engine(name="wrapt"):
    """``(engine, note)``: the engine called ``name``, or wrapt with a note saying why not."""
    if name == "monitoring":
        if sys.version_info < (3, 12) or not hasattr(sys, "monitoring"):
            return _wrapt(), (
                "engine 'monitoring' needs Python 3.12+ (this is %d.%d); using 'wrapt'" % sys.version_info[:2])
        engine, note = _monitoring()
        return (engine, None) if engine is not None else (_wrapt(), note)
    if name != "wrapt":
        return _wrapt(), f"unknown engine {name!r}; using 'wrapt'"
    return _wrapt(), None


def instrumented_keys(project_id):
    """Every key instrumented for ``project_id`` in this process so far (any engine)."""
    with _lock:
        return set(_instrumented.get(project_id, ()))


# Engines are imported on first use: wrapt costs tens of milliseconds and must never load at
# interpreter start.
def _wrapt():
    with _lock:
        if "wrapt" not in _engines:
            from .wrapping import WraptEngine

            _engines["wrapt"] = WraptEngine()
        return _engines["wrapt"]


def _monitoring():
    """``(engine, None)``, or ``(None, reason)`` when no sys.monitoring tool id is free."""
    with _lock:
        if "monitoring" not in _engines:
            from .monitoring import claim

            engine, note = claim()
            if engine is None:
                return None, note
            _engines["monitoring"] = engine
        return _engines["monitoring"], None


def _record(project_id, keys):
    """Remember ``keys`` as instrumented for ``project_id`` (called by the engines)."""
    with _lock:
        _instrumented.setdefault(project_id, set()).update(keys)
