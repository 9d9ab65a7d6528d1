"""The detached process that drains the spool: bounded retries with backoff, Retry-After honoured, one at a time.

Started by :func:`spawn` as ``python -S`` (no ``site``, so no ``.pth`` and no hook in the sender
itself) in a new session, with stdio on /dev/null and no inherited descriptors: the host's exit
never waits for it, a Ctrl-C in the host's terminal never reaches it, and it can never write
into the host's pipes.
"""

import os
import random
import signal
import sys
import time

from . import _debug, spool
from ._http import post
from ._statefile import open_lock

_LOCK_NAME = ".sender.lock"
# Attempts within one sender run, and over a report's life across runs.
ATTEMPTS_PER_RUN = 3
MAX_ATTEMPTS = 12
BACKOFF_BASE_SEC = 0.5
# A Retry-After longer than this is not waited for: the report waits in the spool for a later run.
MAX_WAIT_SEC = 30.0
# One wall-clock budget for a whole sender run (every pass, request, wait and read), so a dead,
# slow or hostile endpoint can never keep the sender alive, or the spool locked, for longer.
RUN_DEADLINE_SEC = 120.0
REQUEST_TIMEOUT_SEC = 3.0  # when the spawner passes none; it passes TELLY_HTTP_TIMEOUT

_child = None


class _DeadlineExceeded(BaseException):
    """Raised by the sender's SIGALRM at its run deadline, from wherever it is blocked.

    A BaseException, so that no ``except Exception`` in requests or urllib3 can swallow it.
    """


def _try_lock(directory):
    """An exclusive, non-blocking lock on the spool; None when another sender holds it."""
    fd = open_lock(os.path.join(directory, _LOCK_NAME))
    try:
        import fcntl
    except ImportError:  # Windows: no flock; the spool's atomic renames keep concurrent senders safe.
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


class _Consent:
    """Asks again, for each queued report, whether it may still leave: the user may have opted out
    (``optout PROJECT_ID``, ``disable``, TELLY_DISABLE/DO_NOT_TRACK) since it was queued."""

    def __init__(self):
        from . import consent
        from .errors import ConfigError
        from .settings import process_settings

        self._consent = consent
        try:
            self._process = process_settings()
        except ConfigError:
            # A broken user config must not make the sender more permissive than the
            # environment alone: TELLY_OPTIN still counts.
            _debug.swallowed("the sender reading the user config")
            self._process = process_settings(user_config={})

    def refusal(self, header):
        return self._consent.refusal_at_send(header.get("project_id"), bool(header.get("optin")), self._process)


def _drop(directory, name, reason, project_id):
    try:
        os.unlink(os.path.join(directory, name))
    except FileNotFoundError:
        return
    spool.record_loss(reason, project_id, directory)


def _attempt(directory, name, header, body, timeout, sleep, deadline):
    """Try one report up to ATTEMPTS_PER_RUN times; returns True when it left the spool."""
    for attempt in range(ATTEMPTS_PER_RUN):
        header["attempts"] = header.get("attempts", 0) + 1
        try:
            outcome = post(header["url"], body, timeout, deadline)
        except _DeadlineExceeded:
            # Cut off mid-request: count the attempt, so an endpoint that never answers cannot
            # hold this report (and every report behind it) for ever.
            header["not_before"] = time.time() + BACKOFF_BASE_SEC * (2 ** attempt)
            spool.rewrite(directory, name, header, body)
            raise
        if outcome.delivered:
            os.unlink(os.path.join(directory, name))
            return True
        if not outcome.retry or header["attempts"] >= MAX_ATTEMPTS:
            reason = outcome.reason if not outcome.retry else f"gave-up:{outcome.reason}"
            _drop(directory, name, reason, header.get("project_id"))
            return True
        wait = outcome.retry_after
        if wait is None:
            # Exponential backoff with jitter, so senders of many users do not retry in step.
            wait = BACKOFF_BASE_SEC * (2 ** attempt) * (0.5 + random.random())
        if wait > MAX_WAIT_SEC or time.monotonic() + wait > deadline or attempt == ATTEMPTS_PER_RUN - 1:
            header["not_before"] = time.time() + min(wait, 24 * 3600)
            spool.rewrite(directory, name, header, body)
            return False
        sleep(wait)
    return False


def drain(directory, timeout=REQUEST_TIMEOUT_SEC, sleep=time.sleep, deadline=None):
    """Send every due report in the spool, oldest first; returns (sent_or_dropped, left) counts.

    ``deadline`` is a ``time.monotonic()`` value (default: RUN_DEADLINE_SEC from now); nothing
    is started after it and every request is clipped to it. Each report's consent is checked
    again first, and a refused one is dropped as ``opted-out``. Returns (0, -1) without doing
    anything when another sender holds the lock.
    """
    if not os.path.isdir(directory):
        return 0, 0
    fd = _try_lock(directory)
    if fd is None:
        return 0, -1
    done = 0
    deadline = time.monotonic() + RUN_DEADLINE_SEC if deadline is None else deadline
    try:
        for _name, project_id, reason in spool.enforce_caps(directory):
            spool.record_loss(reason, project_id, directory)
        consent = _Consent()
        # A down endpoint stays down for every report: stop trying a URL at its first postponement.
        failed_urls, up_urls, postponed = set(), set(), []
        for name in spool.entries(directory):
            if time.monotonic() > deadline:
                break
            try:
                header, body = spool.read(directory, name)
            except FileNotFoundError:
                continue
            except (OSError, ValueError) as exc:
                # One bad entry must never wedge the queue: record it, drop it, go on.
                _debug.note(f"spool entry {name} is corrupt: {exc}")
                _drop(directory, name, "spool-corrupt", None)
                continue
            refusal = consent.refusal(header)
            if refusal is not None:
                _debug.note(f"queued report {name} for {header.get('project_id')} not sent: {refusal}")
                _drop(directory, name, "opted-out", header.get("project_id"))
                done += 1
                continue
            url = header["url"]
            if url in failed_urls:
                continue
            if header["not_before"] > time.time():
                postponed.append((name, header, body))
                continue
            if _attempt(directory, name, header, body, timeout, sleep, deadline):
                done += 1
                up_urls.add(url)
            else:
                failed_urls.add(url)
        # The endpoint accepted a newer report, so it is back: older ones waiting out a backoff go now.
        for name, header, body in postponed:
            if header["url"] in up_urls - failed_urls and time.monotonic() < deadline:
                if _attempt(directory, name, header, body, timeout, sleep, deadline):
                    done += 1
                else:
                    failed_urls.add(header["url"])
    finally:
        os.close(fd)  # closing the descriptor releases the flock
    return done, len(spool.entries(directory))


def _busy(directory):
    """True when a sender already holds the spool's lock (it will pick up what was just queued)."""
    fd = _try_lock(directory)
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


def _start(argv, env, directory):
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
                          close_fds=True, start_new_session=True, cwd=directory, env=env)


def spawn(directory, timeout=REQUEST_TIMEOUT_SEC):
    """Start a detached sender for ``directory`` unless one is already draining it.

    A finished sender is reaped before the next one starts, so a long-running host keeps no
    zombie.
    """
    global _child
    if _running(_child) or _busy(directory):
        return None
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # -S skips site (no .pth, no hook, fast start), so give the child this process's import path.
    path = [package_root] + [p for p in sys.path if p and os.path.isdir(p)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(path))
    env.pop("PYTHONSTARTUP", None)
    _child = _start([sys.executable, "-S", "-m", "telly_autoinst.sender", directory, repr(float(timeout))], env,
                    directory)
    return _child


def _queued_since(directory, started_ns):
    """Whether a report was queued after ``started_ns`` (its name starts with its creation time)."""
    for name in spool.entries(directory):
        try:
            if int(name.split("-", 1)[0]) >= started_ns:
                return True
        except ValueError:
            continue
    return False


def _on_alarm(signum, frame):
    raise _DeadlineExceeded()


def _arm_deadline(seconds):
    """Backstop for the run deadline: SIGALRM interrupts whatever blocks (a header trickling in
    byte by byte resets every per-read timeout). The sender is its own process, so the signal
    is ours to take."""
    if hasattr(signal, "setitimer"):
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)


def main(argv=None):
    """Entry point of the detached process: ``DIRECTORY [TIMEOUT [DEADLINE]]``; never prints, always exits 0."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv:
            directory = argv[0]
            timeout = float(argv[1]) if len(argv) > 1 else REQUEST_TIMEOUT_SEC
            run_sec = float(argv[2]) if len(argv) > 2 else RUN_DEADLINE_SEC
            deadline = time.monotonic() + run_sec
            if __name__ == "__main__":
                os.chdir(directory)  # hold no directory of the host's (posix_spawn has no cwd=)
                _arm_deadline(run_sec + 1.0)  # after the cooperative deadline, which leaves the spool tidy
            for _ in range(10):
                started = time.time_ns()
                _done, left = drain(directory, timeout=timeout, deadline=deadline)
                # A process that queued a report while this sender held the lock did not start
                # another sender (see spawn): pick its report up before leaving.
                if left <= 0 or not _queued_since(directory, started) or time.monotonic() > deadline:
                    break
    except (Exception, _DeadlineExceeded):
        _debug.swallowed("the sender")
    return 0


if __name__ == "__main__":
    sys.exit(main())
