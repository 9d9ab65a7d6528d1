"""The exit side of a watched process: when reports leave, the flush, and the hand-off to the spool and its sender.

One module on purpose, although rule 1 would split it by the "and"s: on a warm run each client
module imported costs about as much as the work it holds (~0.46M instructions on 3.11 for the
import machinery alone, against ~4.8M for the whole exit side when it was spread over seven
modules). So activation imports this module only, and the default exit (``http_async`` storage,
no TELLY_SHOW_ME) imports nothing more: the triggers, the flush, the capture of what only the
host knows, the counts entry and the start of the detached sender when one is due are all here
(how to start it, ``_launch``, is loaded by the exits that start one: at most one a minute). What only other
paths need is imported where those paths branch off: ``transport`` (the host builds the
report for TELLY_SHOW_ME, ``http`` and ``file`` storage), ``spool`` (a report lost; the sender's
side of the spool: reading, merging, caps), ``consent`` and ``engines`` (when the caller passes
no verdict or engine name). None of those imports this module, so the import graph has no
cycle; ``preview`` (the ``show`` command), ``purge`` and the tests import from here what they
share with the exit.

Nothing here runs before a watched module was instrumented: ``finder`` calls :func:`activate`
once, passing in this process's settings and a way to read its projects, which captures the run
mode and installs the triggers. This module never imports ``finder``.

**Triggers.** Normal exit (atexit), SIGTERM/SIGINT/SIGHUP, a daemon timer, forked children and
multiprocessing workers. Signals: only TERM, INT and HUP, and only where the current handler is
the default or a Python callable (never where the host chose SIG_IGN or a C handler). Our
handler flushes, then chains: a Python handler is called as if we were not there; the default
action is restored and the signal re-raised, so the exit status is exactly what it would have
been without us.

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

**The hand-off.** Building a report on the host's exit path cost ~6 ms of a short program's run:
every distribution's METADATA, /proc, the salt and its HMACs, a JSON writer, gzip, and the
modules behind them. With the default storage the host therefore only :func:`capture`\\ s, as
plain data, what the sender cannot learn for itself: the project's settings as this process
resolved them, the engine that counted, the user's salt type and plaintext agreement, the
trigger, the time, how the interpreter was started (knowable only while ``__main__`` is intact)
and the counts. :func:`enqueue_counts` writes that down, and the detached sender turns it into
the report with ``report.assemble``: the function the host itself uses when it must build the
report (TELLY_SHOW_ME, ``http`` and ``file`` storage), so both ways give the same report. Level I
facts and Level II hashes come out the same in the sender: same machine, same user, same
environment, and the host's import path.
"""

# The C module, not ``signal``: its IntEnum set-up costs more than the rest of the hand-off, and
# the handlers it reads and installs are the same objects (SIG_DFL and SIG_IGN are plain ints).
import _signal  # type: ignore[import-not-found]  # no typeshed stub for the C module
import atexit
import os
import sys
import time
from _thread import allocate_lock, get_ident  # not threading: see counters

from . import __version__, _env
from ._statefile import private_dir, try_lock, write_atomic

# Names for annotations only: never imported at run time (typing would cost an import).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# The spool's names, as literals: importing ``_contract`` would cost the exit one more module.
# tests/test_contract.py checks that each equals the contract's.
FILE_SPOOL_DIR = "spool"
FILE_SPOOL_LOCK = ".sender.lock"
FILE_SPOOL_STAMP = ".sender.started"
FILE_COUNTS_SUFFIX = ".counts"
FILE_COUNTS_MAGIC = "telly-counts 1\n"
_COUNTS_MAGIC = FILE_COUNTS_MAGIC.encode("ascii")

# A host exiting within this many seconds of the last sender's start starts none: its entry waits
# for the first exit after that (or is picked up by a sender still running). A short program run
# hundreds of times a day thus starts at most one sender a minute, and every queued report leaves
# at the first exit of a watched program at least this long after the previous sender started.
# The contract's RETRY_SENDER_INTERVAL_SEC, as a literal like the names above.
SENDER_INTERVAL_SEC = 60.0

SIGNALS = tuple(getattr(_signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(_signal, name))

_lock = allocate_lock()
_owner = None  # thread id of the flush in progress
_deferred_signals: "list[int]" = []
_process: "Any" = None  # ProcessSettings, passed in by activate()
_projects: "Any" = None  # callable returning the active projects by project id
_by_distribution: "Any" = None  # callable splitting a project id's counts by distribution
_may_send: "Any" = None  # callable: whether a project's report may leave now
_engine_name: "Any" = None  # callable: the name of the engine that counted a project
_counters: "Any" = None  # the call counts: pending_projects(), take(project_id), give_back(project_id, stats)
_interpreter: "Any" = None  # captured at activation, while __main__ and sys.argv are still the program's
_child = None  # the sender this process started last (a pid, or a Popen)

# Triggers' state.
_previous: "dict[int, Any]" = {}
_in_fork_child = False
_forking = False
_signals_off = False  # a multiprocessing worker: signals are left to their previous handlers
_timer_stop: "Any" = None


def activate(process, projects, by_distribution=None, may_send=None, engine_name=None, counters=None):
    """Install the triggers (atexit, signals, timer, fork) once per process.

    ``process`` is this process's ProcessSettings; ``projects()`` returns the active projects by
    project id (called at each flush: ``instrument()`` may add one later);
    ``by_distribution(project_id, stats)`` splits one project id's counts into
    ``[(project, stats)]``, one per distribution that shares the id (each gets its own report);
    ``may_send(project)`` says whether its report may leave now (by default the consent decision);
    ``engine_name(project)`` names the engine that counted it (by default ``engines.engine_name``);
    ``counters`` holds the call counts (by default the ``counters`` module).
    """
    global _process, _projects, _by_distribution, _may_send, _engine_name, _counters, _interpreter
    if _process is not None:
        return
    _interpreter = describe_interpreter()
    _projects, _by_distribution, _may_send, _engine_name = projects, by_distribution, may_send, engine_name
    _counters = counters
    _process = process
    _install(process)


def flush(trigger="manual", exit_signal=None):
    """Send (or hand off) every project's counts now; returns how many reports were handed over.

    Public API for programs whose exit path skips atexit (``os._exit``, some servers). Never
    raises: a failure is recorded as a loss and, with TELLY_DEBUG=1, printed to stderr.
    """
    global _owner
    if _process is None:
        return 0  # nothing was ever instrumented, so nothing can be pending
    if not _counts().pending_projects():
        return 0  # checked before any settings, discovery or transport is touched
    # A signal handler may run on a thread that is itself inside a flush (see defer_signal);
    # a flush on another thread (the timer) is worth a short wait before the process dies.
    if not _lock.acquire(timeout=2 if trigger == "signal" else 10):
        return 0
    _owner = get_ident()
    try:
        return _flush(trigger, exit_signal)
    except Exception:
        _env.swallowed("flush")
        return 0
    finally:
        _owner = None
        _lock.release()
        while _deferred_signals:
            # Re-raised now that the report is out; the handler then chains as usual.
            os.kill(os.getpid(), _deferred_signals.pop(0))


def defer_signal(signum):
    """True (and the signal is re-raised when the flush ends) if this thread is inside a flush.

    Without this, a SIGTERM landing during the exit flush (e.g. ``Pool.terminate()`` hitting a
    worker that is already exiting) would kill the process halfway through its report.
    """
    if _owner == get_ident():
        _deferred_signals.append(signum)
        return True
    return False


def _counts():
    if _counters is not None:
        return _counters
    from . import counters  # loaded already wherever anything was counted

    return counters


def _flush(trigger, exit_signal):
    counters = _counts()
    projects = _projects()
    made: "dict[str, Any]" = {}  # found on first use by this flush: the spool directory
    handed = 0
    for project_id in counters.pending_projects():
        if project_id not in projects:
            continue
        taken = counters.take(project_id)
        parts = _by_distribution(project_id, taken) if _by_distribution else [(projects[project_id], taken)]
        for project, stats in parts:
            handed += _hand_over(project or projects[project_id], stats, trigger, exit_signal, made)
    return handed


def _hand_over(project, stats, trigger, exit_signal, made):
    """Hand off or send one report; returns 1 if it was handed over, else 0."""
    process = _process
    project_id = project.project_id
    if _may_send is not None:
        allowed = _may_send(project)
    else:
        from .consent import decide

        allowed = decide(project, process).send
    if not allowed or not stats:
        # Consent withdrawn during the run (optout, ~/.telly_disable): the counts are dropped,
        # and no "opted out" event is ever sent.
        return 0
    if "spool" not in made:
        made["spool"] = default_dir(process.spool_dir)
    captured = capture(project, stats, trigger=trigger, exit_signal=exit_signal, salt_type=process.salt_type,
                       interpreter=_interpreter, plaintext_accepted=process.accept_level2_plaintext,
                       engine=_engine_name(project) if _engine_name is not None else None)
    url = project.collector_url(process)
    optin = process.optin_only or project.mode == "optin"
    try:
        if process.storage_type in ("file", "http") or process.show_me:
            from .transport import deliver_built

            outcome = deliver_built(process, made["spool"], url, captured, optin=optin, spawn=spawn)
            delivered, retry, reason = outcome.delivered, outcome.retry, outcome.reason
        else:
            # The default: the detached sender builds the report, off the host's exit path.
            reason = hand_off(made["spool"], url, project_id, captured, optin=optin, timeout=process.http_timeout)
            delivered, retry = reason is None, False
    except Exception as exc:  # the transport boundary: a bug there must not lose the rest
        _env.swallowed(f"delivering the report of {project_id}")
        delivered, retry, reason = False, False, f"transport-error:{type(exc).__name__}"
    if delivered:
        return 1
    if retry and trigger in ("manual", "timer"):
        # The process goes on: the counts ride along with the next report.
        _counts().give_back(project_id, stats)
    else:
        from .spool import record_loss

        record_loss(reason, project_id, made["spool"])
    return 0


def _reset_after_fork_in_child():
    # Another thread may have held the lock at fork time; the child has only this thread.
    global _lock, _owner
    _lock = allocate_lock()
    _owner = None
    del _deferred_signals[:]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork_in_child)


# Triggers: when reports leave (see the module docstring).


def _install(process):
    """Register every trigger that ``process`` settings allow (called once per process)."""
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
    flush(trigger=_exit_trigger())


def _install_signals():
    # signal.signal only works on the main thread; a package first imported from another
    # thread gets atexit and the timer, not signals.
    if not _on_main_thread():
        _env.note("no signal handler: the first watched import ran outside the main thread")
        return
    for signum in SIGNALS:
        try:
            current = _signal.getsignal(signum)
        except (ValueError, OSError):
            _env.swallowed(f"reading the handler of signal {signum}")
            continue
        # None: installed from C (we cannot chain to it). SIG_IGN: the host wants it ignored.
        if current is None or _is_handler(current, _signal.SIG_IGN) or current is _on_signal:
            continue
        if not _is_handler(current, _signal.SIG_DFL) and not callable(current):
            continue
        try:
            _signal.signal(signum, _on_signal)
        except (ValueError, OSError):
            _env.swallowed(f"installing a handler for signal {signum}")
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
        if defer_signal(signum):
            return None
        try:
            flush(trigger="signal", exit_signal=int(signum))
        except Exception:
            _env.swallowed("the signal flush")
    if callable(previous):
        return previous(signum, frame)
    # Default action: put it back and re-raise, so the process dies of this signal as it would have.
    _signal.signal(signum, _signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    return None


def _on_main_thread():
    """Whether this is the interpreter's main thread. Where threading is not loaded, no
    ``threading.Thread`` ever ran, so this is the main thread (but for threads a C extension or
    ``_thread`` started: ``signal.signal`` refuses there, and the refusal is caught)."""
    threading = sys.modules.get("threading")
    return threading is None or threading.current_thread() is threading.main_thread()


def _start_timer():
    global _timer_stop
    import threading  # only for the timer, off by default: see counters

    stop = threading.Event()
    interval = _process.timer_interval_sec

    def run():
        # Event.wait, not sleep: the exit handler sets the event so no timer flush races the exit flush.
        while not stop.wait(interval):
            flush(trigger="timer")

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
            flush(trigger=_exit_trigger())
        except Exception:
            _env.swallowed("the multiprocessing worker's flush")
        return original(*args, **kwargs)

    _exit_function._telly_wrapped = True  # type: ignore[attr-defined]
    util._exit_function = _exit_function  # type: ignore[attr-defined]  # private, absent from typeshed
    # Run by every worker's Process._bootstrap before its target (fork, spawn and forkserver).
    util.register_after_fork(_MARKER, _leave_signals_alone)


def _swap_handlers(ours):
    """Put the previous handlers back (ours=False) or ours again (ours=True), main thread only."""
    if not _on_main_thread() or (ours and _signals_off):
        return
    for signum, previous in _previous.items():
        try:
            current = _signal.getsignal(signum)
            if not ours and current is _on_signal:
                _signal.signal(signum, previous)
            elif ours and (current is previous or _is_handler(current, previous)):
                _signal.signal(signum, _on_signal)
        except (ValueError, OSError):
            _env.swallowed(f"swapping the handler of signal {signum} around fork")
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


# What the host hands over: its counts with what only it knows (see the module docstring).


def report_id():
    """A random UUID4 as 32 hex digits, without importing uuid on the exit path."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw.hex()


def capture(project, stats, *, trigger, exit_signal=None, salt_type="random_uuid4", interpreter=None,
            plaintext_accepted=False, engine=None):
    """What ``report.assemble`` needs from this process, as str/int/float/bool/None and dicts of them.

    ``interpreter`` may be captured earlier (at activation) because the run mode is only
    knowable while ``__main__`` is still intact. ``plaintext_accepted`` is the user's side of
    plaintext Level II (TELLY_LEVEL2_PLAINTEXT); with the author's ``level2_plaintext`` the report
    adds ``level2_plaintext`` beside the hashes, which the collector keeps only if its project
    agreed too. ``engine``: the name of the engine that counted (by default
    ``engines.engine_name`` of the project's setting).
    """
    if engine is None:
        from .engines import engine_name  # loaded already where anything was counted; not for the sender

        engine = engine_name(project.engine)
    if interpreter is None:
        interpreter = describe_interpreter()
    return {
        "report_id": report_id(),
        "project_id": project.project_id,
        "distribution": project.distribution or (project.packages[0] if project.packages else None),
        "level2": bool(project.level2),
        "level2_plaintext": bool(project.level2_plaintext),
        "plaintext_accepted": bool(plaintext_accepted),
        "salt_type": salt_type,
        "engine": engine,
        "client_version": __version__,
        "trigger": trigger,
        "exit_signal": exit_signal,
        "created_at": time.time(),
        "interpreter": dict(interpreter),
        "stats": {key: int(count) for key, count in stats.items() if count > 0},
    }


def describe_interpreter():
    """Implementation, version and how this interpreter was started (script, module, command, repl, jupyter)."""
    return {
        "implementation": sys.implementation.name,
        "version": python_version(),
        "mode": _run_mode(),
    }


def python_version():
    """What platform.python_version() returns, without importing platform (~2 ms on the exit path)."""
    info = sys.version_info
    version = f"{info.major}.{info.minor}.{info.micro}"
    if info.releaselevel != "final":
        version += {"alpha": "a", "beta": "b", "candidate": "rc"}.get(info.releaselevel, "") + str(info.serial)
    return version


def _run_mode():
    # Jupyter and IPython kernels import ipykernel; a plain IPython shell only defines get_ipython.
    if "ipykernel" in sys.modules:
        return "jupyter"
    mode = _ipython_mode() if "IPython.terminal.ipapp" in sys.modules else None
    if mode is not None:
        return mode
    if sys.flags.interactive or hasattr(sys, "ps1"):
        return "repl"
    argv0 = sys.argv[0] if getattr(sys, "argv", None) else ""
    if argv0 == "-c":
        return "command"
    main = sys.modules.get("__main__")
    if main is not None and getattr(main, "__spec__", None) is not None:
        return "module"
    if argv0 in ("", "-"):
        return "repl" if sys.stdin is not None and sys.stdin.isatty() else "unknown"
    if argv0:
        return "script"
    return "unknown"


def _ipython_mode():
    """The mode of the ``ipython`` command, from its application's settings; None when it is not
    running (IPython imported by a program).

    ``ipython FILE``, ``ipython -c CODE`` and ``ipython -m MOD`` run like python's script, command
    and module, although IPython sets ``sys.ps1`` for them too; the shell, or ``-i``, is a repl.
    """
    app_class = getattr(sys.modules.get("IPython.terminal.ipapp"), "TerminalIPythonApp", None)
    try:
        if app_class is None or not app_class.initialized():
            return None
        app = app_class.instance()
        if getattr(app, "force_interact", False):
            return "repl"
        for attribute, mode in (("file_to_run", "script"), ("code_to_run", "command"), ("module_to_run", "module")):
            if getattr(app, attribute, None):
                return mode
    except Exception:  # another IPython's internals: it is IPython's shell all the same
        pass
    return "repl"


def default_dir(spool_dir=None):
    """TELLY_SPOOL_DIR, else ``spool`` under the client's cache directory; None without a home."""
    if spool_dir:
        return spool_dir
    from .index import cache_dir

    base = cache_dir()
    return None if base is None else os.path.join(base, FILE_SPOOL_DIR)


def hand_off(directory, url, project_id, captured, optin=False, timeout=3.0):
    """Queue :func:`capture`'s data for the detached sender to build the report from, and start the
    sender when due (the default exit path); None once queued, else why it could not be (a loss).

    ``url`` is the collector's base URL. Never waits on the network.
    """
    if not url:
        return "no-endpoint"
    if not directory:
        return "no-spool-dir"
    try:
        enqueue_counts(directory, url, project_id, captured, optin=optin)
    except OSError as exc:
        return f"spool-error:{exc.__class__.__name__}"
    # Every sender enforces the caps as it takes the spool, so the host leaves them to the one it
    # starts, the one draining, or the next one (at most SENDER_INTERVAL_SEC on): listing and
    # stat'ing a full spool (500 entries while a collector is down) at every exit would be the
    # host's time.
    spawn(directory, timeout)
    return None


def enqueue_counts(directory, url, project_id, captured, optin=False):
    """Store one project's captured counts for the sender to build the report from; returns the entry's name.

    The entry's format is ``spool``'s (its docstring): ``url`` is the collector's base URL;
    ``captured`` is :func:`capture`'s plain data. Written with ``ascii()``, which the host has
    for free, and read back with ``ast.literal_eval``, which evaluates nothing.
    """
    private_dir(directory)
    entry = {"url": url, "project_id": project_id, "optin": bool(optin), "captured": captured}
    name = f"{time.time_ns():020d}-{captured['report_id']}{FILE_COUNTS_SUFFIX}"
    write_atomic(os.path.join(directory, name), _COUNTS_MAGIC + ascii(entry).encode("ascii"))
    return name


def sender_ran_within(directory, seconds):
    """Whether a sender took the spool less than ``seconds`` ago (one ``stat`` of the stamp that
    ``spool.stamp_sender`` touches).

    A stamp in the future (the clock was set back) counts as old, so it can never silence the
    senders for longer than ``seconds``.
    """
    try:
        age = time.time() - os.stat(os.path.join(directory, FILE_SPOOL_STAMP)).st_mtime
    except OSError:
        return False
    return 0 <= age < seconds


def _busy(directory):
    """True when a sender already holds the spool's lock (it will pick up what was just queued)."""
    fd = try_lock(os.path.join(directory, FILE_SPOOL_LOCK))
    if fd is None:
        return True
    os.close(fd)
    return False


def _running(child):
    """Whether a sender started by :func:`spawn` still runs (a finished one is reaped here)."""
    if child is None:
        return False
    if not isinstance(child, int):
        return child.poll() is None
    try:
        return os.waitpid(child, os.WNOHANG)[0] == 0
    except ChildProcessError:  # reaped elsewhere (a host's SIGCHLD handler)
        return False


def spawn(directory, timeout=3.0):
    """Start the detached sender (``telly_autoinst.sender``) for ``directory`` unless one drains it or ran recently.

    "Recently" is within SENDER_INTERVAL_SEC of a sender taking the spool's lock (one ``stat``).

    Started by ``_launch.start`` in ``/``, in a new session, with stdio on /dev/null and no
    inherited descriptors: the host's exit never waits for it, a Ctrl-C in the host's terminal
    never reaches it, it can never write into the host's pipes, and nothing of the host's
    directory runs in it. A finished sender is reaped before the next one starts, so a
    long-running host keeps no zombie.
    """
    global _child
    if _running(_child) or sender_ran_within(directory, SENDER_INTERVAL_SEC) or _busy(directory):
        return None
    # Only an exit that starts a sender (at most one a minute) loads how to start it: ~0.3M
    # instructions at every warm run's activation if it were here.
    from ._launch import start

    _child = start(directory, timeout)
    return _child
