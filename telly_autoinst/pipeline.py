"""Flush orchestration: one report per project with counts, consent checked, shown if asked, handed to the transport.

Nothing here runs before a watched module was instrumented: ``finder`` calls :func:`activate`
once, passing in this process's settings and a way to read its projects, which captures the run
mode and installs the triggers. This module never imports ``finder``.
"""

import os
import sys
import threading

from . import _debug

# Names for annotations only: never imported at run time (typing would cost an import).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_lock = threading.Lock()
_owner = None  # thread id of the flush in progress
_deferred_signals: "list[int]" = []
_process: "Any" = None  # ProcessSettings, passed in by activate()
_projects: "Any" = None  # callable returning the active projects by project id
_by_distribution: "Any" = None  # callable splitting a project id's counts by distribution
_may_send: "Any" = None  # callable: whether a project's report may leave now
_interpreter: "Any" = None  # captured at activation, while __main__ and sys.argv are still the program's


def activate(process, projects, by_distribution=None, may_send=None):
    """Install the triggers (atexit, signals, timer, fork) once per process.

    ``process`` is this process's ProcessSettings; ``projects()`` returns the active projects by
    project id (called at each flush: ``instrument()`` may add one later);
    ``by_distribution(project_id, stats)`` splits one project id's counts into
    ``[(project, stats)]``, one per distribution that shares the id (each gets its own report);
    ``may_send(project)`` says whether its report may leave now (by default the consent decision).
    """
    global _process, _projects, _by_distribution, _may_send, _interpreter
    if _process is not None:
        return
    from . import triggers
    from ._runinfo import interpreter

    _interpreter = interpreter()
    _process, _projects, _by_distribution, _may_send = process, projects, by_distribution, may_send
    triggers.install(process, flush, defer_signal)


def flush(trigger="manual", exit_signal=None):
    """Send (or hand off) every project's counts now; returns how many reports were handed over.

    Public API for programs whose exit path skips atexit (``os._exit``, some servers). Never
    raises: a failure is recorded as a loss and, with TELLY_DEBUG=1, printed to stderr.
    """
    global _owner
    if _process is None:
        return 0  # nothing was ever instrumented, so nothing can be pending
    from . import counters

    if not counters.pending_projects():
        return 0  # checked before any settings, discovery or transport is touched
    # A signal handler may run on a thread that is itself inside a flush (see defer_signal);
    # a flush on another thread (the timer) is worth a short wait before the process dies.
    if not _lock.acquire(timeout=2 if trigger == "signal" else 10):
        return 0
    _owner = threading.get_ident()
    try:
        return _flush(trigger, exit_signal)
    except Exception:
        _debug.swallowed("flush")
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
    if _owner == threading.get_ident():
        _deferred_signals.append(signum)
        return True
    return False


def _flush(trigger, exit_signal):
    from . import counters

    projects = _projects()
    transport = None
    handed = 0
    for project_id in counters.pending_projects():
        if project_id not in projects:
            continue
        taken = counters.take(project_id)
        parts = _by_distribution(project_id, taken) if _by_distribution else [(projects[project_id], taken)]
        for project, stats in parts:
            transport, delivered = _hand_over(project or projects[project_id], stats, trigger, exit_signal,
                                              transport)
            handed += delivered
    return handed


def _hand_over(project, stats, trigger, exit_signal, transport):
    """Send or hand off one report; returns (the transport, made on first use, 1 if handed over)."""
    from . import _handoff, counters, spool
    from .transport import make_transport

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
        return transport, 0
    if transport is None:
        transport = make_transport(process)
    captured = _handoff.capture(project, stats, trigger=trigger, exit_signal=exit_signal,
                                salt_type=process.salt_type, interpreter=_interpreter,
                                plaintext_accepted=process.accept_level2_plaintext)
    url = project.collector_url(process)
    optin = process.optin_only or project.mode == "optin"
    try:
        if transport.takes_counts and not process.show_me:
            # The default: the detached sender builds the report, off the host's exit path.
            outcome = transport.hand_off(url, project_id, captured, optin=optin)
        else:
            from .report import assemble, encode

            body = encode(assemble(captured))
            if process.show_me:
                _show(body)
            outcome = transport.deliver(url, project_id, body, captured["report_id"], optin=optin)
    except Exception as exc:  # the transport boundary: a bug there must not lose the rest
        _debug.swallowed(f"delivering the report of {project_id}")
        outcome = None
        reason = f"transport-error:{type(exc).__name__}"
    else:
        reason = outcome.reason
    if outcome is not None and outcome.delivered:
        return transport, 1
    if outcome is not None and outcome.retry and trigger in ("manual", "timer"):
        # The process goes on: the counts ride along with the next report.
        counters.give_back(project_id, stats)
    else:
        spool.record_loss(reason, project_id, spool.default_dir(process.spool_dir))
    return transport, 0


def _show(body):
    """TELLY_SHOW_ME: the exact bytes that are sent, on stderr (stdout belongs to the program)."""
    try:
        sys.stderr.flush()
        buffer = getattr(sys.stderr, "buffer", None)
        if buffer is not None:
            buffer.write(body)
            buffer.flush()
        else:
            sys.stderr.write(body.decode("ascii"))
            sys.stderr.flush()
    except Exception:
        _debug.swallowed("TELLY_SHOW_ME printing")


def preview(environ=None):
    """What `show` prints, as data: each known project's envelope and the reports waiting in the spool.

    A new process has counted nothing yet, so each project's report is built with empty
    ``stats``: everything else in it is exactly what this user's reports carry.
    """
    import json

    from . import consent, spool
    from .report import build
    from .settings import process_settings

    process = process_settings(environ=environ)
    envelopes = []
    for project_id, project in sorted(consent.known_projects().items()):
        if project is None:
            continue
        decision = consent.decide(project, process, environ, show_notice=False)
        envelopes.append({
            "project_id": project_id,
            "would_send": decision.send,
            "why": decision.reason,
            "endpoint": project.collector_url(process),
            "report": build(project, {}, trigger="manual", salt_type=process.salt_type,
                            plaintext_accepted=process.accept_level2_plaintext),
        })
    directory = spool.default_dir(process.spool_dir)
    queued = []
    for name in spool.entries(directory) if directory else []:
        try:
            if spool.is_counts(name):
                # Counts the sender has yet to build into a report: shown as it will build it.
                from ._http import reports_url
                from .report import assemble

                entry = spool.read_counts(directory, name)
                queued.append({"file": name, "url": reports_url(entry["url"]), "attempts": 0,
                               "report": assemble(entry["captured"])})
                continue
            header, body = spool.read(directory, name)
            queued.append({"file": name, "url": header["url"], "attempts": header["attempts"],
                           "report": json.loads(body)})
        except (OSError, ValueError):
            _debug.swallowed(f"reading spool entry {name}")
            continue
    return {"projects": envelopes, "queued": queued, "spool": directory}


def _reset_after_fork_in_child():
    # Another thread may have held the lock at fork time; the child has only this thread.
    global _lock, _owner
    _lock = threading.Lock()
    _owner = None
    del _deferred_signals[:]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork_in_child)
