"""What the host hands over at exit: its counts with what only it knows, and a detached sender started.

Building a report on the host's exit path cost ~6 ms of a short program's run (issue 8): every
distribution's METADATA, /proc, the salt and its HMACs, a JSON writer, gzip, and the modules
behind them. With the default storage the host therefore only :func:`capture`\\ s, as plain
data, what the sender cannot learn for itself: the project's settings as this process resolved
them, the engine that counted, the user's salt type and plaintext agreement, the trigger, the
time, how the interpreter was started (knowable only while ``__main__`` is intact) and the
counts. ``spool.enqueue_counts`` writes that down, and the detached sender turns it into the
report with ``report.assemble``: the function the host itself uses when it must build the report
(TELLY_SHOW_ME, ``http`` and ``file`` storage), so both ways give the same report. Level I facts
and Level II hashes come out the same in the sender: same machine, same user, same environment,
and the host's import path.

This module is on the exit path: it imports nothing beyond what the host has already loaded.
"""

import os
import sys
import time

from . import __version__, _debug, spool

_child = None  # the sender this process started last (a pid, or a Popen)
# A host exiting within this many seconds of the last sender's start starts none: its entry waits
# for the first exit after that (or is picked up by a sender still running). A short program run
# hundreds of times a day thus starts at most one sender a minute, and every queued report leaves
# at the first exit of a watched program at least this long after the previous sender started.
SENDER_INTERVAL_SEC = 60.0


class Outcome:
    """What happened to one delivery attempt (a post, a hand-off to the spool, a file)."""

    __slots__ = ("delivered", "retry", "reason", "retry_after")

    def __init__(self, delivered, retry=False, reason="ok", retry_after=None):
        self.delivered = delivered
        self.retry = retry
        self.reason = reason
        self.retry_after = retry_after

    def __repr__(self):
        return f"Outcome(delivered={self.delivered}, retry={self.retry}, reason={self.reason!r})"


def report_id():
    """A random UUID4 as 32 hex digits, without importing uuid on the exit path."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw.hex()


def capture(project, stats, *, trigger, exit_signal=None, salt_type="random_uuid4", interpreter=None,
            plaintext_accepted=False):
    """What ``report.assemble`` needs from this process, as str/int/float/bool/None and dicts of them.

    ``interpreter`` may be captured earlier (at activation) because the run mode is only
    knowable while ``__main__`` is still intact.
    """
    from .engines import engine_name  # loaded already where anything was counted; not for the sender

    if interpreter is None:
        from ._runinfo import interpreter as current

        interpreter = current()
    return {
        "report_id": report_id(),
        "project_id": project.project_id,
        "distribution": project.distribution or (project.packages[0] if project.packages else None),
        "level2": bool(project.level2),
        "level2_plaintext": bool(project.level2_plaintext),
        "plaintext_accepted": bool(plaintext_accepted),
        "salt_type": salt_type,
        "engine": engine_name(project.engine),
        "client_version": __version__,
        "trigger": trigger,
        "exit_signal": exit_signal,
        "created_at": time.time(),
        "interpreter": dict(interpreter),
        "stats": {key: int(count) for key, count in stats.items() if count > 0},
    }


def _busy(directory):
    """True when a sender already holds the spool's lock (it will pick up what was just queued)."""
    fd = spool.try_lock(directory)
    if fd is None:
        return True
    os.close(fd)
    return False


def _inheritable_fds():
    """Descriptors above stdio that a child would inherit (the host may have marked some so)."""
    for listing in ("/proc/self/fd", "/dev/fd"):
        try:
            names = os.listdir(listing)
        except OSError:
            continue
        fds = []
        for name in names:
            try:
                fd = int(name)
                if fd > 2 and os.get_inheritable(fd):
                    fds.append(fd)
            except (ValueError, OSError):  # the listing's own descriptor, closed by now
                continue
        return fds
    return None


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


def _start(argv, env):
    """Start a detached child: new session, stdio on /dev/null, no inherited descriptor.

    ``os.posix_spawn`` where it can: ``subprocess`` imports ``locale`` and ``re`` (several ms
    on the host's exit path, issue 8) and its Popen warns at exit (ResourceWarning) for a child
    that outlives it, which a detached sender does on purpose. Returns a pid, or a Popen.
    """
    fds = _inheritable_fds()
    if hasattr(os, "posix_spawn") and fds is not None:
        actions: list[tuple] = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, flags, 0)
                                for fd, flags in ((0, os.O_RDONLY), (1, os.O_WRONLY), (2, os.O_WRONLY))]
        actions += [(os.POSIX_SPAWN_CLOSE, fd) for fd in fds]
        try:
            return os.posix_spawn(argv[0], argv, env, file_actions=actions, setsid=True)
        except (OSError, NotImplementedError, TypeError):  # e.g. no POSIX_SPAWN_SETSID in this libc
            _debug.swallowed("starting the sender with posix_spawn")
    import subprocess

    class _DetachedPopen(subprocess.Popen):
        def __del__(self):  # the child outlives this object on purpose: no ResourceWarning
            pass

    return _DetachedPopen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          close_fds=True, start_new_session=True, cwd="/", env=env)


def _forwarded_path():
    """The host's import path as far as the sender may trust it: absolute directories only, without
    the host's working directory, its script's directory or ``PYTHONPATH``.

    The sender needs the site directories (``requests``, and the distributions whose versions
    it reports), not the places a host program happens to run from: a ``random.py`` or a
    ``telly_autoinst/`` there must never run in the background as this user.
    """
    untrusted = {os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p}
    try:
        untrusted.add(os.getcwd())
    except OSError:  # the host's directory was removed under it
        pass
    if sys.path and not (sys.flags.isolated or getattr(sys.flags, "safe_path", False)):
        untrusted.add(os.path.abspath(sys.path[0] or os.curdir))  # the script's directory, or '' for -c/-m
    return [p for p in sys.path if p and os.path.isabs(p) and p not in untrusted and os.path.isdir(p)]


# The code ``python -I -S -c`` runs: -I ignores every PYTHON* variable and puts neither the working
# directory nor a script's on sys.path, -S skips site (no .pth, no hook in the sender itself). The
# working directory is set before anything is imported, and the package's directories are
# appended after the standard library's, so nothing found there can shadow a standard module.
_LAUNCH = ("import os,sys;os.chdir('/');sys.path+={path!r};"
           "from telly_autoinst.sender import main;sys.exit(main(detached=True))")


def sender_argv(directory, *args):
    """The detached sender's command line for the spool ``directory`` (``args``: timeout, run deadline)."""
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = list(dict.fromkeys([package_root] + _forwarded_path()))
    return [sys.executable, "-I", "-S", "-c", _LAUNCH.format(path=path), os.path.abspath(directory), *args]


def spawn(directory, timeout=3.0):
    """Start the detached sender (``telly_autoinst.sender``) for ``directory`` unless one drains it or ran recently.

    "Recently" is within SENDER_INTERVAL_SEC of a sender taking the spool's lock (one ``stat``).

    Started by :func:`sender_argv` in ``/``, in a new session, with stdio on /dev/null and no
    inherited descriptors: the host's exit never waits for it, a Ctrl-C in the host's terminal
    never reaches it, it can never write into the host's pipes, and nothing of the host's
    directory runs in it. A finished sender is reaped before the next one starts, so a
    long-running host keeps no zombie.
    """
    global _child
    if _running(_child) or spool.sender_ran_within(directory, SENDER_INTERVAL_SEC) or _busy(directory):
        return None
    env = dict(os.environ)
    for name in ("PYTHONPATH", "PYTHONSTARTUP"):
        env.pop(name, None)  # -I ignores them already; nothing the sender starts inherits them either
    _child = _start(sender_argv(directory, repr(float(timeout))), env)
    return _child
