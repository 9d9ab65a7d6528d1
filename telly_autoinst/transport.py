"""Sends reports: to a file, synchronously over HTTP, or by hand-off to the spool and a detached sender.

The HTTP call itself lives in ``_http`` and loss recording in ``spool``, so the detached
sender needs neither this module nor anything that imports it. ``_http`` is imported only where
a report goes over HTTP: the default hand-off (:meth:`SpoolTransport.hand_off`) is on the host's
exit path.
"""

import os
import time

from . import _handoff, spool
from ._handoff import Outcome


class FileTransport:
    """Writes each report as ``telly_<report_id>.json`` into a directory (TELLY_LOCAL_STORAGE_PATH)."""

    takes_counts = False  # the file is the report: the host builds it

    def __init__(self, directory):
        self.directory = directory

    def deliver(self, url, project_id, body, report_id, optin=False):
        if not self.directory:
            return Outcome(False, reason="no-local-storage-path")
        from ._statefile import write_atomic

        path = os.path.join(self.directory, f"telly_{report_id}.json")
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            write_atomic(path, body)  # 0600, through a temporary file nobody can guess
        except OSError as exc:
            return Outcome(False, reason=f"file-error:{exc.__class__.__name__}")
        return Outcome(True)


class HttpTransport:
    """Posts synchronously, once, within the request timeout; a retryable failure goes to the spool."""

    takes_counts = False  # the host posts the report itself

    def __init__(self, timeout, spool_dir):
        self.timeout = timeout
        self.spool_dir = spool_dir

    def deliver(self, url, project_id, body, report_id, optin=False):
        if not url:
            return Outcome(False, reason="no-endpoint")
        from ._http import post, reports_url

        outcome = post(reports_url(url), body, self.timeout)
        if outcome.delivered or not outcome.retry or not self.spool_dir:
            return outcome
        # Keep it for a later run instead of losing it (sent by the next process's sender),
        # and not before the collector asked: a 429/503 with Retry-After is a request to wait.
        not_before = time.time() + outcome.retry_after if outcome.retry_after else 0
        return SpoolTransport(self.spool_dir, spawn=False).deliver(url, project_id, body, report_id, optin,
                                                                   not_before=not_before)


class SpoolTransport:
    """Hands the report, or only its counts, to the spool and makes sure a detached sender drains it.

    Never waits on the network.
    """

    takes_counts = True  # the sender can build the report: see hand_off

    def __init__(self, spool_dir, spawn=True, timeout=3.0):
        self.spool_dir = spool_dir
        self.spawn = spawn
        self.timeout = timeout

    def deliver(self, url, project_id, body, report_id, optin=False, not_before=0):
        """``optin`` is stored with the report, so the sender can check ~/.telly_optin again before sending."""
        from ._http import reports_url

        return self._queue(url, lambda: spool.enqueue(self.spool_dir, reports_url(url), project_id, body, report_id,
                                                      optin=optin, not_before=not_before))

    def hand_off(self, url, project_id, captured, optin=False):
        """Queue ``_handoff.capture``'s data for the sender to build the report from (the default exit path).

        ``url`` is the collector's base URL.
        """
        return self._queue(url, lambda: spool.enqueue_counts(self.spool_dir, url, project_id, captured, optin=optin))

    def _queue(self, url, write):
        if not url:
            return Outcome(False, reason="no-endpoint")
        if not self.spool_dir:
            return Outcome(False, reason="no-spool-dir")
        try:
            name = write()
        except OSError as exc:
            return Outcome(False, reason=f"spool-error:{exc.__class__.__name__}")
        if self.spawn:
            # Every sender enforces the caps as it takes the spool, so the host leaves them to the
            # one it starts, the one draining, or the next one (at most SENDER_INTERVAL_SEC on):
            # listing and stat'ing a full spool (500 entries while a collector is down) at every
            # exit would be the host's time.
            _handoff.spawn(self.spool_dir, self.timeout)
        else:
            for _name, dropped_project, reason in spool.enforce_caps(self.spool_dir, keep=name):
                spool.record_loss(reason, dropped_project, self.spool_dir)
        return Outcome(True, reason="spooled" if self.spawn else "deferred")


def make_transport(process):
    """The transport for TELLY_STORAGE_TYPE: http_async (default), http or file."""
    spool_dir = spool.default_dir(process.spool_dir)
    if process.storage_type == "file":
        return FileTransport(process.local_storage_path)
    if process.storage_type == "http":
        return HttpTransport(process.http_timeout, spool_dir)
    return SpoolTransport(spool_dir, timeout=process.http_timeout)
