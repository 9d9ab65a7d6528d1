"""Waiting for the detached sender that a host process started at its exit."""

import os
import time
from pathlib import Path

from telly_autoinst import pipeline, spool


def wait_sender_done(directory, timeout=60):
    """Wait until every counts entry in the spool was built into its report and no sender holds the lock.

    A host queues counts and starts the sender, which builds each report before it tries to send
    it; so "no counts left and the lock free" means the sender started for them has finished.
    """
    directory = Path(directory)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if directory.is_dir() and not list(directory.glob("*" + spool.COUNTS_SUFFIX)):
            fd = spool.try_lock(str(directory))
            if fd is not None:
                os.close(fd)
                return
        time.sleep(0.05)
    raise AssertionError(f"the sender of {directory} did not finish within {timeout} s")


def age_last_sender(directory):
    """Make the spool's last sender look older than the interval, so that the next exit starts one."""
    stamp = Path(directory) / ".sender.started"
    then = time.time() - pipeline.SENDER_INTERVAL_SEC - 1
    os.utime(stamp, (then, then))


def hold_sender(directory):
    """Make the spool look taken by a sender a moment ago, so that the exits of the next
    ``SENDER_INTERVAL_SEC`` start none: what they queue stays there for :func:`take_queued`."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    (Path(directory) / ".sender.started").touch()


def take_queued(directory):
    """What the hosts queued in the spool, oldest first: each counts entry (the collector's URL,
    whether the project is opt-in, and what the host captured); the entries are removed. A built
    report there would mean a sender ran: an error."""
    directory = Path(directory)
    taken = []
    for name in spool.entries(str(directory)) if directory.is_dir() else ():
        assert spool.is_counts(name), f"a sender ran: {name} is a built report"
        taken.append(spool.read_counts(str(directory), name))
        (directory / name).unlink()
    return taken
