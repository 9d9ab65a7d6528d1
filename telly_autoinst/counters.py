"""Call counts per (project, key): exact under threads, restarted from zero in a forked child.

Each key's counter is an ``itertools.count``; a call is counted by stepping it from C code that
holds the GIL from start to end, so concurrent calls never lose an increment and the per-call
path takes no lock. Reading a count also goes through ``next()`` (an ``itertools.count`` cannot
be read otherwise without the deprecated ``__reduce__``), so the steps spent on reading are
booked and subtracted. A key gets its book at its first read only: the in-frame engine makes
hundreds of counters per package as it imports, and most are read once, at exit.

Limit: on a free-threaded build (3.13t) ``itertools.count`` is not atomic, so counts may be low.
"""

import itertools
import operator
import os
import threading

_lock = threading.Lock()
# project_id -> {key: itertools.count}; only ever grows (a key once counted stays known).
_counts: "dict[str, dict[str, itertools.count[int]]]" = {}
# project_id -> {key: (steps spent on reads, calls already taken)}, from a key's first read on.
_books: "dict[str, dict[str, tuple[int, int]]]" = {}
_UNREAD = (0, 0)
# project_id -> {key: n}: counts whose delivery failed, re-added by the next take().
_returned: "dict[str, dict[str, int]]" = {}


def tick_for(project_id, key):
    """A zero-argument callable that counts one call of ``key`` for ``project_id`` and returns False.

    The same (project_id, key) always shares one counter, so a module reloaded or a key
    wrapped twice keeps adding to the same total.
    """
    with _lock:
        steps = _counter(_counts.setdefault(project_id, {}), key)
    # Steps the count and returns False, all in C: the wrapt engine passes it as a wrapper's
    # ``enabled`` callable, so wrapt counts and then calls the original straight from C, with no
    # Python frame of ours in between. (Two ticks over one count are both exact.)
    return map(operator.not_, steps).__next__


def steppers(project_id, keys):
    """For each of ``keys``, in order, a zero-argument callable in C (the bound ``__next__`` of the
    key's ``itertools.count``) that counts one call: what in-frame code calls.

    One call per module, under one lock: the in-frame engine arms a module's counters at once.
    """
    with _lock:
        counts = _counts.setdefault(project_id, {})
        return [_counter(counts, key).__next__ for key in keys]


def _counter(counts, key):
    """``counts[key]``, made when missing (the caller holds ``_lock``)."""
    steps = counts.get(key)
    if steps is None:
        steps = counts[key] = itertools.count()
    return steps


def _unread(books, key, steps, take):
    """Calls of one key counted and not yet taken; ``take`` marks them taken. Books the read's
    own step (the caller holds ``_lock``)."""
    reads, taken = books.get(key, _UNREAD)
    calls = next(steps) - reads
    books[key] = (reads + 1, calls if take else taken)
    return calls - taken


def take(project_id):
    """Counts since the previous take (only keys with calls), moving the baseline past them."""
    with _lock:
        stats = _returned.pop(project_id, {})
        books = _books.setdefault(project_id, {})
        for key, steps in _counts.get(project_id, {}).items():
            new = _unread(books, key, steps, True)
            if new:
                stats[key] = stats.get(key, 0) + new
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
        for project_id, counts in _counts.items():
            if project_id not in pending:
                books = _books.setdefault(project_id, {})
                if any(_unread(books, key, steps, False) for key, steps in counts.items()):
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
    for project_id, counts in _counts.items():
        books = _books.setdefault(project_id, {})
        for key, steps in counts.items():
            _unread(books, key, steps, True)
    _returned.clear()
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)
