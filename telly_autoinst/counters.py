"""Call counts per (project, key): exact under threads, restarted from zero in a forked child.

Each counter is an ``itertools.count``; a call is counted by stepping it from C code that holds
the GIL from start to end, so concurrent calls never lose an increment and the per-call path
takes no lock. Reading a count also goes through ``next()`` (an ``itertools.count`` cannot be
read otherwise without the deprecated ``__reduce__``), so every counter remembers how many of
its steps were reads and subtracts them.

Limit: on a free-threaded build (3.13t) ``itertools.count`` is not atomic, so counts may be low.
"""

import itertools
import operator
import os
import threading

_lock = threading.Lock()
# project_id -> {key: _Counter}; only ever grows (a key once counted stays known).
_projects: "dict[str, dict[str, _Counter]]" = {}
# project_id -> {key: _Counter} stepped by in-frame code but not (yet) reported: the rewrite
# engine compiles a counter into every function that selection *could* pick, before the module
# has run; selection then enables the ones it picks (see steps_for and enable_keys).
_dormant: "dict[str, dict[str, _Counter]]" = {}
# project_id -> {key: n}: counts whose delivery failed, re-added by the next take().
_returned: "dict[str, dict[str, int]]" = {}


class _Counter:
    """One counter: the ``itertools.count`` the wrappers tick, and the bookkeeping of reads."""

    __slots__ = ("steps", "tick", "reads", "baseline")

    def __init__(self):
        self.steps = itertools.count()
        # Made by tick_for when an engine asks for it: the in-frame engine compiles hundreds of
        # counters per package and never needs one.
        self.tick = None
        self.reads = 0  # steps spent on reading, not on calls
        self.baseline = 0  # calls already taken

    def calls(self):
        """Calls counted so far (the caller holds ``_lock``)."""
        value = next(self.steps) - self.reads
        self.reads += 1
        return value


def tick_for(project_id, key):
    """A zero-argument callable that counts one call of ``key`` for ``project_id`` and returns False.

    The same (project_id, key) always shares one counter, so a module reloaded or a key
    wrapped twice keeps adding to the same total.
    """
    counters = _projects.get(project_id)
    counter = counters.get(key) if counters is not None else None
    if counter is None:
        enable_keys(project_id, (key,))  # in-frame code may step this key's counter already
        with _lock:
            counters = _projects.setdefault(project_id, {})
            counter = counters.get(key)
            if counter is None:
                counter = counters[key] = _Counter()
    tick = counter.tick
    if tick is None:
        # Steps the count and returns False, all in C: the wrapt engine passes it as a wrapper's
        # ``enabled`` callable, so wrapt counts and then calls the original straight from C,
        # with no Python frame of ours in between. (Two threads racing here make two ticks over
        # the same count: both exact.)
        tick = counter.tick = map(operator.not_, counter.steps).__next__
    return tick


def steps_for(project_id, keys):
    """The ``itertools.count`` of each of ``keys``, in order, that in-frame code steps to count a call.

    A key's steps are reported only once :func:`enable_keys` was called for it (or it got a
    tick from :func:`tick_for`): until then they are counted and ignored. One call per module,
    under one lock: the in-frame engine binds every counter of a module at once.
    """
    with _lock:
        live = _projects.get(project_id, {})
        dormant = _dormant.setdefault(project_id, {})
        found = []
        for key in keys:
            counter = live.get(key) or dormant.get(key)
            if counter is None:
                counter = dormant[key] = _Counter()
            found.append(counter.steps)
        return found


def enable_keys(project_id, keys):
    """Report these keys' calls from now on (calls made before, while their module ran, are not:
    the engines that instrument after the module ran never see those either)."""
    with _lock:
        dormant = _dormant.get(project_id)
        if not dormant:
            return
        live = None
        for key in keys:
            counter = dormant.pop(key, None)
            if counter is None:
                continue
            counter.baseline = counter.calls()
            if live is None:
                live = _projects.setdefault(project_id, {})
            live[key] = counter


def take(project_id):
    """Counts since the previous take (only keys with calls), moving the baseline past them."""
    with _lock:
        stats = _returned.pop(project_id, {})
        for key, counter in _projects.get(project_id, {}).items():
            calls = counter.calls()
            if calls > counter.baseline:
                stats[key] = stats.get(key, 0) + calls - counter.baseline
                counter.baseline = calls
        return stats


def give_back(project_id, stats):
    """Re-add counts that were taken but could not be delivered, so the next take sends them."""
    with _lock:
        returned = _returned.setdefault(project_id, {})
        for key, count in stats.items():
            if isinstance(count, int) and count > 0:
                returned[key] = returned.get(key, 0) + count


def pending_projects():
    """Projects with counts not yet taken (given-back counts included)."""
    with _lock:
        pending = {project_id for project_id, stats in _returned.items() if stats}
        for project_id, counters in _projects.items():
            if project_id not in pending and any(c.calls() > c.baseline for c in counters.values()):
                pending.add(project_id)
        return sorted(pending)


def _before_fork():
    # Hold the lock across fork so the child never inherits it locked by a thread that does
    # not exist there.
    _lock.acquire()


def _after_fork_in_parent():
    _lock.release()


def _after_fork_in_child():
    global _lock
    # The child reports only its own calls: what the parent counted stays the parent's.
    for counters in _projects.values():
        for counter in counters.values():
            counter.baseline = counter.calls()
    _returned.clear()
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)
