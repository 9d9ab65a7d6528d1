"""Reports the host builds itself (TELLY_SHOW_ME, ``http`` and ``file`` storage): shown if asked, then delivered.

The default hand-off of the counts to the spool and the detached sender is the pipeline's, on
the host's exit path, and never comes here: the pipeline imports this module only when the host
must build the report. The HTTP call itself lives in ``_http`` and loss recording in ``spool``,
so the detached sender needs neither this module nor anything that imports it. This module never
imports the pipeline: what it needs from there (starting the sender) is passed in.
"""

import os
import sys
import time

from . import _env, spool
from ._http import Outcome, post, reports_url
from ._statefile import write_atomic
from .report import assemble, encode


def deliver_built(process, spool_dir, url, captured, optin=False, spawn=None):
    """Build the report from ``pipeline.capture``'s data, print it for TELLY_SHOW_ME, and deliver it
    by TELLY_STORAGE_TYPE (:func:`make_transport`); returns the :class:`Outcome`."""
    body = encode(assemble(captured))
    if process.show_me:
        _show(body)
    transport = make_transport(process, spool_dir, spawn)
    return transport.deliver(url, captured["project_id"], body, captured["report_id"], optin=optin)


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
        _env.swallowed("TELLY_SHOW_ME printing")


class FileTransport:
    """Writes each report as ``telly_<report_id>.json`` into a directory (TELLY_LOCAL_STORAGE_PATH)."""

    def __init__(self, directory):
        self.directory = directory

    def deliver(self, url, project_id, body, report_id, optin=False):
        if not self.directory:
            return Outcome(False, reason="no-local-storage-path")
        path = os.path.join(self.directory, f"telly_{report_id}.json")
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            write_atomic(path, body)  # 0600, through a temporary file nobody can guess
        except OSError as exc:
            return Outcome(False, reason=f"file-error:{exc.__class__.__name__}")
        return Outcome(True)


class HttpTransport:
    """Posts synchronously, once, within the request timeout; a retryable failure goes to the spool."""

    def __init__(self, timeout, spool_dir):
        self.timeout = timeout
        self.spool_dir = spool_dir

    def deliver(self, url, project_id, body, report_id, optin=False):
        if not url:
            return Outcome(False, reason="no-endpoint")
        outcome = post(reports_url(url), body, self.timeout)
        if outcome.delivered or not outcome.retry or not self.spool_dir:
            return outcome
        # Keep it for a later run instead of losing it (sent by the next process's sender),
        # and not before the collector asked: a 429/503 with Retry-After is a request to wait.
        not_before = time.time() + outcome.retry_after if outcome.retry_after else 0
        return SpoolTransport(self.spool_dir).deliver(url, project_id, body, report_id, optin, not_before=not_before)


class SpoolTransport:
    """Queues the report in the spool for a detached sender: one started now, or the next run's.

    ``spawn(spool_dir, timeout)`` starts the sender (``pipeline.spawn``); without it the report
    waits for a later run's sender. Never waits on the network.
    """

    def __init__(self, spool_dir, spawn=None, timeout=3.0):
        self.spool_dir = spool_dir
        self.spawn = spawn
        self.timeout = timeout

    def deliver(self, url, project_id, body, report_id, optin=False, not_before=0):
        """``optin`` is stored with the report, so the sender can check ~/.telly_optin again before sending."""
        if not url:
            return Outcome(False, reason="no-endpoint")
        if not self.spool_dir:
            return Outcome(False, reason="no-spool-dir")
        try:
            name = spool.enqueue(self.spool_dir, reports_url(url), project_id, body, report_id, optin=optin,
                                 not_before=not_before)
        except OSError as exc:
            return Outcome(False, reason=f"spool-error:{exc.__class__.__name__}")
        if self.spawn:
            # The sender it starts enforces the caps as it takes the spool (see pipeline.hand_off).
            self.spawn(self.spool_dir, self.timeout)
        else:
            for _name, dropped_project, reason in spool.enforce_caps(self.spool_dir, keep=name):
                spool.record_loss(reason, dropped_project, self.spool_dir)
        return Outcome(True, reason="spooled" if self.spawn else "deferred")


def make_transport(process, spool_dir, spawn=None):
    """The transport for a report the host built, by TELLY_STORAGE_TYPE: file, http, else the spool
    (TELLY_SHOW_ME with the default storage, http_async).

    ``spool_dir``: the spool (``pipeline.default_dir``); ``spawn``: see :class:`SpoolTransport`.
    """
    if process.storage_type == "file":
        return FileTransport(process.local_storage_path)
    if process.storage_type == "http":
        return HttpTransport(process.http_timeout, spool_dir)
    return SpoolTransport(spool_dir, spawn=spawn, timeout=process.http_timeout)
