"""The counting engines behind one small protocol, the factory that picks one, and what they did.

Three engines count the targets that ``telly_autoinst.selection`` picks, under the same keys:

* ``rewrite`` (every Python): counting statements compiled into the package's own functions as
  they are imported (``engines.rewrite``); counts in the function's own frame.
* ``monitoring`` (CPython 3.12+): local ``sys.monitoring`` ``PY_START`` events on the targets'
  code objects; also in frame, needs one of the six tool ids.
* ``wrapt`` (every Python, on request): ``wrapt.FunctionWrapper`` proxies patched into modules
  and class ``__dict__``s; a frame of ours sits between caller and function.

``auto`` (the default) is ``rewrite`` on every Python: on 3.12+ it measured cheaper per call
than ``monitoring`` and needs no tool id (README, "Engines"). It never imports wrapt: what it
cannot count in frame is not counted, and ``--dry-run`` says why (``Engine.explain``).

Each engine is a process-wide singleton, because what it patched or subscribed to is
process-wide too.
"""

import sys
from _thread import allocate_lock  # not threading: see counters

# The protocol and the record live in _base, which the engines import instead of this package.
from ._base import Engine, instrumented_keys, uncounted_keys  # noqa: F401  (the engines' interface, used by the finder and dryrun)

# The names a setting may use ("auto" picks one of the others).
ENGINES = ("auto", "rewrite", "monitoring", "wrapt")

_lock = allocate_lock()
_engines: "dict[str, Engine]" = {}
_chosen: "dict[str, str]" = {}  # setting value -> name of the engine make_engine gave for it


def make_engine(name="auto"):
    """``(engine, note)``: the engine called ``name``, or the in-frame one with a note saying why not."""
    engine, note = _make(name)
    _chosen[name] = engine.name
    return engine, note


def engine_name(name):
    """The name of the engine that a project with ``engine = name`` counts with in this process."""
    chosen = _chosen.get(name)
    if chosen is not None:
        return chosen
    if name == "wrapt" or (name == "monitoring" and sys.version_info >= (3, 12)):
        return name
    return "rewrite"


def _make(name):
    if name == "wrapt":
        return _wrapt(), None
    if name == "monitoring":
        if sys.version_info < (3, 12) or not hasattr(sys, "monitoring"):
            return _rewrite(), (
                "engine 'monitoring' needs Python 3.12+ (this is %d.%d); using 'rewrite'" % sys.version_info[:2])
        engine, note = _monitoring()
        return (engine, None) if engine is not None else (_rewrite(), f"{note}; using 'rewrite'")
    if name not in ("auto", "rewrite"):
        return _rewrite(), f"unknown engine {name!r}; using 'rewrite'"
    return _rewrite(), None


def fallback():
    """The engine that counts what sys.monitoring cannot tell apart (a code object that is not
    its function's own, or shared by two keys): the ``monitoring`` engine, asked for by name,
    hands those to wrapt. It has ``wrap_target(target, project)``. The default in-frame engine
    has none: what it cannot count is listed as not counted (``RewriteEngine.explain``)."""
    return _wrapt()


# Engines are imported on first use: wrapt costs tens of milliseconds and must never load at
# interpreter start.
def _wrapt():
    with _lock:
        if "wrapt" not in _engines:
            from .wrapping import WraptEngine

            _engines["wrapt"] = WraptEngine()
        return _engines["wrapt"]


def _rewrite():
    with _lock:
        if "rewrite" not in _engines:
            from .rewrite import RewriteEngine

            _engines["rewrite"] = RewriteEngine()
        return _engines["rewrite"]


def _monitoring():
    """``(engine, None)``, or ``(None, reason)`` when no sys.monitoring tool id is free."""
    with _lock:
        if "monitoring" not in _engines:
            from .monitoring import claim

            engine, note = claim(fallback)
            if engine is None:
                return None, note
            _engines["monitoring"] = engine
        return _engines["monitoring"], None

