"""When reports leave: normal exit, SIGTERM/SIGINT/SIGHUP, a daemon timer, forked children, multiprocessing workers.

Signals: only TERM, INT and HUP, and only where the current handler is the default or a Python
callable (never where the host chose SIG_IGN or a C handler). Our handler flushes, then chains:
a Python handler is called as if we were not there; the default action is restored and the
signal re-raised, so the exit status is exactly what it would have been without us.

Multiprocessing workers end with ``os._exit`` (no atexit). Their ``Process._bootstrap`` calls
``multiprocessing.util._exit_function()`` just before, looked up on the module at call time, so
wrapping that attribute lets each worker flush its own counts (fork, spawn and forkserver
alike). Workers get no signal handler of ours: a Python-level handler can miss a signal that
lands just before a blocking C call such as ``SemLock.acquire`` (CPython runs handlers only on
EINTR there), and ``Pool.terminate()`` hits idle workers exactly there, so the worker would
hang instead of dying. A worker killed by ``terminate()`` therefore loses its counts since its
last report; ``pool.close(); pool.join()`` lets workers exit normally and report. A bare
``os.fork()`` child that leaves with ``os._exit`` reports nothing unless it calls
``telly_autoinst.flush()`` first.
"""

# The C module, not ``signal``: its IntEnum set-up costs more than the rest of the hand-off, and
# the handlers it reads and installs are the same objects (SIG_DFL and SIG_IGN are plain ints).
import _signal  # type: ignore[import-not-found]  # no typeshed stub for the C module
import atexit
import os
import sys
import threading

from . import _debug

# Names for annotations only: never imported at run time (typing would cost an import).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SIGNALS = tuple(getattr(_signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(_signal, name))

_flush: "Any" = None
_defer_signal: "Any" = None
_process: "Any" = None
_previous: "dict[int, Any]" = {}
_installed = False
_in_fork_child = False
_forking = False
_signals_off = False  # a multiprocessing worker: signals are left to their previous handlers
_timer_stop: "Any" = None


def install(process, flush, defer_signal):
    """Register every trigger that ``process`` settings allow; safe to call once per process.

    ``flush(trigger=..., exit_signal=...)`` sends the reports; ``defer_signal(signum)`` returns
    True when the signal landed inside a flush on this thread and will be re-raised after it.
    Both are passed in, so this module never imports the pipeline that uses it.
    """
    global _flush, _defer_signal, _process, _installed
    if _installed:
        return
    _installed = True
    _flush, _defer_signal, _process = flush, defer_signal, process
    atexit.register(_at_exit)
    # TELLY_EXIT_SIGNAL_ONLY: report only at normal exit (the documented meaning; the original
    # did the opposite), so no signal is trapped and no timer runs.
    if not process.exit_signal_only:
        if not _in_multiprocessing_child():
            _install_signals()
        if process.timer:
            _start_timer()
    _wrap_multiprocessing_exit()
    if hasattr(os, "register_at_fork"):
        # Registered after counters' hooks, so our "before" runs first and our "after" runs last:
        # _forking spans exactly the window in which the counters' lock is held across fork.
        os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                            after_in_child=_after_fork_in_child)


def _exit_trigger():
    return "fork" if _in_fork_child else "exit"


def _at_exit():
    if _timer_stop is not None:
        _timer_stop.set()
    _flush(trigger=_exit_trigger())


def _install_signals():
    # signal.signal only works on the main thread; a package first imported from another
    # thread gets atexit and the timer, not signals.
    if threading.current_thread() is not threading.main_thread():
        _debug.note("no signal handler: the first watched import ran outside the main thread")
        return
    for signum in SIGNALS:
        try:
            current = _signal.getsignal(signum)
        except (ValueError, OSError):
            _debug.swallowed(f"reading the handler of signal {signum}")
            continue
        # None: installed from C (we cannot chain to it). SIG_IGN: the host wants it ignored.
        if current is None or _is_handler(current, _signal.SIG_IGN) or current is _on_signal:
            continue
        if not _is_handler(current, _signal.SIG_DFL) and not callable(current):
            continue
        try:
            _signal.signal(signum, _on_signal)
        except (ValueError, OSError):
            _debug.swallowed(f"installing a handler for signal {signum}")
            continue
        _previous[signum] = current


def _is_handler(current, constant):
    """Whether ``current`` is the SIG_DFL or SIG_IGN ``constant`` (ints, or IntEnums from ``signal``)."""
    return type(current) is not bool and isinstance(current, int) and current == constant


def _on_signal(signum, frame):
    previous = _previous.get(signum, _signal.SIG_DFL)
    # A signal can land inside fork (e.g. Pool.terminate() hitting a worker still being born),
    # while the counters' lock is held across the fork: flushing there would deadlock forever.
    if not _forking:
        if _defer_signal(signum):
            return None
        try:
            _flush(trigger="signal", exit_signal=int(signum))
        except Exception:
            _debug.swallowed("the signal flush")
    if callable(previous):
        return previous(signum, frame)
    # Default action: put it back and re-raise, so the process dies of this signal as it would have.
    _signal.signal(signum, _signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    return None


def _start_timer():
    global _timer_stop
    stop = threading.Event()
    interval = _process.timer_interval_sec

    def run():
        # Event.wait, not sleep: the exit handler sets the event so no timer flush races the exit flush.
        while not stop.wait(interval):
            _flush(trigger="timer")

    thread = threading.Thread(target=run, name="telly_autoinst-timer", daemon=True)
    thread.start()
    _timer_stop = stop


class _Marker:
    """Owner of our entry in multiprocessing's after-fork registry (a weak-value mapping)."""


_MARKER = _Marker()


def _in_multiprocessing_child():
    process = sys.modules.get("multiprocessing.process")
    if process is None:
        return False
    # parent_process() is set once Process._bootstrap runs; before that, a spawn or forkserver
    # child is "_inheriting" while it imports __mp_main__ and unpickles its target (when the
    # watched package is usually imported). Spawned workers never run the after-fork registry.
    return process.parent_process() is not None or bool(getattr(process.current_process(), "_inheriting", False))


def _leave_signals_alone(_marker=None):
    """In a multiprocessing worker: previous handlers back for good (see the module docstring)."""
    global _signals_off
    _signals_off = True
    _swap_handlers(ours=False)


def _wrap_multiprocessing_exit():
    """Make multiprocessing workers flush before their ``os._exit`` and run without our signal handlers."""
    util = sys.modules.get("multiprocessing.util")
    if util is None or getattr(util._exit_function, "_telly_wrapped", False):
        return
    original = util._exit_function

    def _exit_function(*args, **kwargs):
        # In the parent this attribute is never called: its atexit holds the original function.
        try:
            _flush(trigger=_exit_trigger())
        except Exception:
            _debug.swallowed("the multiprocessing worker's flush")
        return original(*args, **kwargs)

    _exit_function._telly_wrapped = True  # type: ignore[attr-defined]
    util._exit_function = _exit_function  # type: ignore[attr-defined]  # private, absent from typeshed
    # Run by every worker's Process._bootstrap before its target (fork, spawn and forkserver).
    util.register_after_fork(_MARKER, _leave_signals_alone)


def _swap_handlers(ours):
    """Put the previous handlers back (ours=False) or ours again (ours=True), main thread only."""
    if threading.current_thread() is not threading.main_thread() or (ours and _signals_off):
        return
    for signum, previous in _previous.items():
        try:
            current = _signal.getsignal(signum)
            if not ours and current is _on_signal:
                _signal.signal(signum, previous)
            elif ours and (current is previous or _is_handler(current, previous)):
                _signal.signal(signum, _on_signal)
        except (ValueError, OSError):
            _debug.swallowed(f"swapping the handler of signal {signum} around fork")
            continue


def _before_fork():
    # CPython drops a signal that reaches a child before its after-fork clean-up, so a Python
    # handler inherited across fork can swallow e.g. Pool.terminate()'s SIGTERM to a worker
    # still being born, which then blocks forever. During fork the previous handlers (usually
    # SIG_DFL, which the kernel applies at once) are in place; ours return afterwards.
    global _forking
    _forking = True
    _swap_handlers(ours=False)


def _after_fork_in_parent():
    global _forking
    _swap_handlers(ours=True)
    _forking = False


def _after_fork_in_child():
    global _in_fork_child, _forking
    _in_fork_child = True
    _swap_handlers(ours=True)
    _forking = False
    # The timer thread did not survive the fork; a long-running child gets its own.
    if _process is not None and _process.timer and not _process.exit_signal_only:
        _start_timer()
    _wrap_multiprocessing_exit()
