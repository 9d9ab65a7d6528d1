"""Sends report bytes (file, synchronous HTTP, or hand-off to the spool) and records every loss with a reason.

``requests`` is imported only when a report really goes over HTTP. Timeouts are passed per
request; the process-wide ``socket.setdefaulttimeout`` is never touched (the original client
set it and never restored it, changing every socket of the host program).
"""

from __future__ import annotations

import collections
import gzip
import os
import sys
import time

from . import spool

__all__ = ["FileTransport", "HttpTransport", "LOSSES", "Outcome", "SpoolTransport", "make_transport", "post",
           "record_loss", "reports_url"]

# Recent losses in this process, for `flush()` callers and tests; bounded so it never grows.
LOSSES: collections.deque[tuple[str, str | None]] = collections.deque(maxlen=100)
_LOSS_LOG = "losses.log"
_LOSS_LOG_MAX = 64 << 10


class Outcome:
    """What happened to one delivery attempt."""

    __slots__ = ("delivered", "retry", "reason", "retry_after")

    def __init__(self, delivered, retry=False, reason="ok", retry_after=None):
        self.delivered = delivered
        self.retry = retry
        self.reason = reason
        self.retry_after = retry_after

    def __repr__(self):
        return f"Outcome(delivered={self.delivered}, retry={self.retry}, reason={self.reason!r})"


def record_loss(reason, project_id=None, spool_dir=None, debug=False):
    """Remember that a report was lost and why: in memory, in the spool's losses.log, and on stderr in debug."""
    LOSSES.append((reason, project_id))
    if debug:
        try:
            sys.stderr.write(f"telly_autoinst: report for {project_id} lost: {reason}\n")
        except Exception:
            pass
    if spool_dir:
        path = os.path.join(spool_dir, _LOSS_LOG)
        try:
            os.makedirs(spool_dir, mode=0o700, exist_ok=True)
            # Start over rather than grow without bound: the log is a diagnostic, not an archive.
            mode = "w" if os.path.exists(path) and os.path.getsize(path) > _LOSS_LOG_MAX else "a"
            with open(path, mode, encoding="utf-8") as handle:
                handle.write(f"{int(time.time())} {reason} {project_id}\n")
        except OSError:
            pass


def reports_url(base):
    """The collector's report endpoint under a base URL."""
    return base.rstrip("/") + "/api/v1/reports"


def _retry_after(value):
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        from email.utils import parsedate_to_datetime

        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def post(url, body, timeout):
    """POST gzip'd report bytes once; proxies come from the environment (HTTPS_PROXY, NO_PROXY) via requests."""
    import requests

    data = gzip.compress(body, compresslevel=6, mtime=0)
    headers = {
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
        "User-Agent": "telly_autoinst",
    }
    try:
        response = requests.post(url, data=data, headers=headers, timeout=(timeout, timeout), allow_redirects=False)
    except requests.exceptions.Timeout:
        return Outcome(False, retry=True, reason="timeout")
    except requests.exceptions.ConnectionError:
        return Outcome(False, retry=True, reason="connection-error")
    except requests.exceptions.RequestException as exc:
        return Outcome(False, retry=False, reason=f"request-error:{type(exc).__name__}")
    status = response.status_code
    response.close()
    if 200 <= status < 300:
        return Outcome(True)
    if status in (408, 425, 429) or status >= 500:
        return Outcome(False, retry=True, reason=f"http-{status}",
                       retry_after=_retry_after(response.headers.get("Retry-After")))
    # Other 4xx: the collector will never accept this report; retrying only wastes the user's network.
    return Outcome(False, retry=False, reason=f"http-{status}")


class FileTransport:
    """Writes each report as ``telly_<report_id>.json`` into a directory (TELLY_LOCAL_STORAGE_PATH)."""

    def __init__(self, directory):
        self.directory = directory

    def deliver(self, url, project_id, body, report_id):
        if not self.directory:
            return Outcome(False, reason="no-local-storage-path")
        path = os.path.join(self.directory, f"telly_{report_id}.json")
        tmp = path + ".tmp"
        try:
            os.makedirs(self.directory, exist_ok=True)
            with open(tmp, "wb") as handle:
                handle.write(body)
            os.replace(tmp, path)
        except OSError as exc:
            return Outcome(False, reason=f"file-error:{exc.__class__.__name__}")
        return Outcome(True)


class HttpTransport:
    """Posts synchronously, once, within the request timeout; a retryable failure goes to the spool."""

    def __init__(self, timeout, spool_dir):
        self.timeout = timeout
        self.spool_dir = spool_dir

    def deliver(self, url, project_id, body, report_id):
        if not url:
            return Outcome(False, reason="no-endpoint")
        outcome = post(reports_url(url), body, self.timeout)
        if outcome.delivered or not outcome.retry or not self.spool_dir:
            return outcome
        # Keep it for a later run instead of losing it (sent by the next process's sender).
        return SpoolTransport(self.spool_dir, spawn=False).deliver(url, project_id, body, report_id)


class SpoolTransport:
    """Hands the report to the spool and makes sure a detached sender drains it; never waits on the network."""

    def __init__(self, spool_dir, spawn=True, timeout=3.0):
        self.spool_dir = spool_dir
        self.spawn = spawn
        self.timeout = timeout

    def deliver(self, url, project_id, body, report_id):
        if not url:
            return Outcome(False, reason="no-endpoint")
        if not self.spool_dir:
            return Outcome(False, reason="no-spool-dir")
        try:
            dropped = spool.enqueue(self.spool_dir, reports_url(url), project_id, body, report_id)
        except OSError as exc:
            return Outcome(False, reason=f"spool-error:{exc.__class__.__name__}")
        for _name, dropped_project, reason in dropped:
            record_loss(reason, dropped_project, self.spool_dir)
        if self.spawn:
            from .sender import spawn

            spawn(self.spool_dir, self.timeout)
        return Outcome(True, reason="spooled" if self.spawn else "deferred")


def make_transport(process):
    """The transport for TELLY_STORAGE_TYPE: http_async (default), http or file."""
    spool_dir = spool.default_dir(process.spool_dir)
    if process.storage_type == "file":
        return FileTransport(process.local_storage_path)
    if process.storage_type == "http":
        return HttpTransport(process.http_timeout, spool_dir)
    return SpoolTransport(spool_dir, timeout=process.http_timeout)
