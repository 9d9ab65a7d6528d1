"""Call counts per (project, key): exact under threads, restarted from zero in a forked child.

Each key's counter is an ``itertools.count``; a call is counted by stepping it from C code that
holds the GIL from start to end, so concurrent calls never lose an increment and the per-call
path takes no lock. Reading a count also goes through ``next()`` (an ``itertools.count`` cannot
be read otherwise without the deprecated ``__reduce__``), so the steps spent on reading are
booked and subtracted. A key's book is a pair made at its first read (for an in-frame counter,
when selection enables it), not an object per counter: the in-frame engine makes a counter for
every function selection could pick as it imports, and many are never reported.

Limit: on a free-threaded build (3.13t) ``itertools.count`` is not atomic, so counts may be low.
"""

import itertools
import os

# The C modules behind threading and operator: a watched package that does not import those itself
# would pay for them at its first watched import (threading alone: +15M instructions on 3.11).
from _operator import not_
from _thread import RLock

# Re-entrant: a signal's handler flushes (see pipeline) in whatever thread the signal interrupts,
# and that thread may hold this lock (inside a watched import, while its counters are made): a
# plain lock would hang the process there, never to die of the signal.
_lock = RLock()
# project_id -> {key: itertools.count} of the keys reported; only ever grows (a key once
# counted stays known).
_counts: "dict[str, dict[str, itertools.count[int]]]" = {}
# project_id -> {key: itertools.count} stepped by in-frame code but not (yet) reported: the
# rewrite engine compiles a counter into every function that selection *could* pick, before the
# module has run; selection then enables the ones it picks (see steps_for and enable_keys).
_dormant: "dict[str, dict[str, itertools.count[int]]]" = {}
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
    return ticks_for(project_id, (key,))[0]


def ticks_for(project_id, keys):
    """:func:`tick_for` of each of ``keys``, in order, under one lock (the in-frame engine counts
    a module's classes together)."""
    with _lock:
        _enable(project_id, keys)  # in-frame code may step these keys' counters already
        counts = _counts.setdefault(project_id, {})
        ticks = []
        for key in keys:
            steps = counts.get(key)
            if steps is None:
                steps = counts[key] = itertools.count()
            # Steps the count and returns False, all in C: the wrapt engine passes it as a
            # wrapper's ``enabled`` callable, so wrapt counts and then calls the original straight
            # from C, with no Python frame of ours in between. (Two ticks over one count are both exact.)
            ticks.append(map(not_, steps).__next__)
        return ticks


def steps_for(project_id, keys):
    """The ``itertools.count`` of each of ``keys``, in order, that in-frame code steps to count a call.

    A key's steps are reported only once :func:`enable_keys` was called for it (or it got a
    tick from :func:`tick_for`): until then they are counted and ignored. One call per module,
    under one lock: the in-frame engine binds every counter of a module at once.
    """
    with _lock:
        live = _counts.get(project_id, {})
        dormant = _dormant.setdefault(project_id, {})
        found = []
        for key in keys:
            steps = live.get(key) or dormant.get(key)
            if steps is None:
                steps = dormant[key] = itertools.count()
            found.append(steps)
        return found


def enable_keys(project_id, keys):
    """Report these keys' calls from now on (calls made before, while their module ran, are not:
    the engines that instrument after the module ran never see those either)."""
    with _lock:
        _enable(project_id, keys)


def rename(project_id, old, new):
    """Report the calls that ``old``'s counter steps under ``new`` from now on, with those not yet
    taken; False (nothing changes) when ``new`` already has a counter of its own or ``old`` none.

    For a function that a package publishes under another name after its module ran (httpx sets
    ``__module__`` on its exports): one body, one counter, reported under the name selection gives.
    """
    with _lock:
        counts = _counts.setdefault(project_id, {})
        if new in counts:
            return False
        books = _books.setdefault(project_id, {})
        steps = counts.pop(old, None)
        if steps is not None:
            book = books.pop(old, None)
            if book is not None:
                books[new] = book
        else:
            steps = _dormant.get(project_id, {}).pop(old, None)
            if steps is None:
                return False
            _unread(books, new, steps, True)  # as _enable: what it counted while dormant stays unreported
        counts[new] = steps
        return True


def _enable(project_id, keys):
    # The caller holds _lock.
    dormant = _dormant.get(project_id)
    if not dormant:
        return
    counts = _counts.setdefault(project_id, {})
    books = _books.setdefault(project_id, {})
    for key in keys:
        steps = dormant.pop(key, None)
        if steps is not None:
            _unread(books, key, steps, True)  # what it counted so far stays unreported
            counts[key] = steps


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
    _lock = RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)
