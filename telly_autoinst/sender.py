"""The detached process that drains the spool: bounded retries with backoff, Retry-After honoured, one at a time.

Started by :func:`spawn` as ``python -S`` (no ``site``, so no ``.pth`` and no hook in the sender
itself) in a new session, with stdio on /dev/null and no inherited descriptors: the host's exit
never waits for it, a Ctrl-C in the host's terminal never reaches it, and it can never write
into the host's pipes.
"""

import os
import random
import subprocess
import sys
import time

from . import spool

__all__ = ["drain", "main", "spawn"]

_LOCK_NAME = ".sender.lock"
# Attempts within one sender run, and over a report's life across runs.
ATTEMPTS_PER_RUN = 3
MAX_ATTEMPTS = 12
BACKOFF_BASE_SEC = 0.5
# A Retry-After longer than this is not waited for: the report waits in the spool for a later run.
MAX_WAIT_SEC = 30.0
# The whole run is bounded so a sender never lingers behind a dead network.
RUN_DEADLINE_SEC = 120.0
REQUEST_TIMEOUT_SEC = 3.0  # when the spawner passes none; it passes TELLY_HTTP_TIMEOUT

_child = None


def _try_lock(directory):
    """An exclusive, non-blocking lock on the spool; None when another sender holds it."""
    fd = os.open(os.path.join(directory, _LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o600)
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


def _disabled():
    from ._env import kill_switch

    return kill_switch() is not None


def _attempt(directory, name, header, body, timeout, sleep, deadline):
    """Try one report up to ATTEMPTS_PER_RUN times; returns True when it left the spool."""
    from .transport import post, record_loss

    for attempt in range(ATTEMPTS_PER_RUN):
        outcome = post(header["url"], body, timeout)
        header["attempts"] = header.get("attempts", 0) + 1
        if outcome.delivered:
            os.unlink(os.path.join(directory, name))
            return True
        if not outcome.retry or header["attempts"] >= MAX_ATTEMPTS:
            reason = outcome.reason if not outcome.retry else f"gave-up:{outcome.reason}"
            os.unlink(os.path.join(directory, name))
            record_loss(reason, header.get("project_id"), directory)
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


def drain(directory, timeout=REQUEST_TIMEOUT_SEC, sleep=time.sleep, deadline_sec=RUN_DEADLINE_SEC):
    """Send every due report in the spool, oldest first; returns (sent_or_dropped, left) counts.

    Returns (0, -1) without doing anything when another sender holds the lock.
    """
    from .transport import record_loss

    if not os.path.isdir(directory):
        return 0, 0
    fd = _try_lock(directory)
    if fd is None:
        return 0, -1
    done = 0
    deadline = time.monotonic() + deadline_sec
    try:
        for _name, project_id, reason in spool.enforce_caps(directory):
            record_loss(reason, project_id, directory)
        # A down endpoint stays down for every report: stop trying a URL at its first postponement.
        failed_urls, up_urls, postponed = set(), set(), []
        for name in spool.entries(directory):
            if time.monotonic() > deadline:
                break
            try:
                header, body = spool.read(directory, name)
            except FileNotFoundError:
                continue
            except (OSError, ValueError):
                try:
                    os.unlink(os.path.join(directory, name))
                except OSError:
                    pass
                record_loss("spool-corrupt", None, directory)
                continue
            url = header.get("url")
            if url in failed_urls:
                continue
            if header.get("not_before", 0) > time.time():
                postponed.append((name, header, body))
                continue
            if _attempt(directory, name, header, body, timeout, sleep, deadline):
                done += 1
                up_urls.add(url)
            else:
                failed_urls.add(url)
        # The endpoint accepted a newer report, so it is back: older ones waiting out a backoff go now.
        for name, header, body in postponed:
            if header.get("url") in up_urls - failed_urls and time.monotonic() < deadline:
                if _attempt(directory, name, header, body, timeout, sleep, deadline):
                    done += 1
                else:
                    failed_urls.add(header.get("url"))
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


class _DetachedPopen(subprocess.Popen):
    """A sender process that outlives us on purpose.

    Popen warns (ResourceWarning, visible under ``-X dev`` or pytest) when an object is
    collected while its child still runs, which is exactly what a detached sender does at
    exit: that warning would change the host's stderr. ``spawn`` reaps a finished sender with
    ``poll()`` before starting the next one, so a long-running host keeps no zombie either.
    """

    def __del__(self):
        pass


def spawn(directory, timeout=REQUEST_TIMEOUT_SEC):
    """Start a detached sender for ``directory`` unless one is already draining it."""
    global _child
    if (_child is not None and _child.poll() is None) or _busy(directory):
        return None
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # -S skips site (no .pth, no hook, fast start), so give the child this process's import path.
    path = [package_root] + [p for p in sys.path if p and os.path.isdir(p)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(path))
    env.pop("PYTHONSTARTUP", None)
    _child = _DetachedPopen(
        [sys.executable, "-S", "-m", "telly_autoinst.sender", directory, repr(float(timeout))],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        close_fds=True, start_new_session=True, cwd=directory, env=env,
    )
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


def main(argv=None):
    """Entry point of the detached process; never prints, always exits 0."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv and not _disabled():
            directory = argv[0]
            timeout = float(argv[1]) if len(argv) > 1 else REQUEST_TIMEOUT_SEC
            for _ in range(10):
                started = time.time_ns()
                _done, left = drain(directory, timeout=timeout)
                # A process that queued a report while this sender held the lock did not start
                # another sender (see spawn): pick its report up before leaving.
                if left <= 0 or not _queued_since(directory, started):
                    break
    except Exception:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
