"""What the engines share: the protocol they implement, and the record of what they counted or could not.

Kept apart from ``engines/__init__`` (the factory) so that an engine never imports the package
that picks it: the factory imports the engines, never the other way round.
"""

import threading

_lock = threading.Lock()
# project_id -> set of keys instrumented in this process, by any engine.
_instrumented: "dict[str, set[str]]" = {}
# project_id -> {key: why}: selected targets an engine could not count.
_uncounted: "dict[str, dict[str, str]]" = {}


class Engine:
    """What control and the dry-run need from an engine (a plain class rather than a
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
