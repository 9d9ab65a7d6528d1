"""One POST of report bytes to a collector, bounded in time and size, and what came of it.

Shared by the synchronous ``http`` transport and the detached sender; it knows nothing about
spools or retries, so neither of them has to import the other. ``requests`` and ``gzip`` are
imported only when a report really goes over HTTP. Timeouts are passed per request; the
process-wide ``socket.setdefaulttimeout`` is never touched (the original client set it and never
restored it, changing every socket of the host program).
"""

import time

from . import _debug
from ._handoff import Outcome

# The collector's answer carries nothing we need beyond its status and headers: its body is
# never read, so an endless or trickling body costs neither memory nor time.
_MAX_RETRY_AFTER_SEC = 7 * 24 * 3600


def reports_url(base):
    """The collector's report endpoint under a base URL."""
    return base.rstrip("/") + "/api/v1/reports"


def retry_after(value):
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None when absent or malformed.

    Only ASCII digits count as delta-seconds (``"²".isdigit()`` is true, and ``float("²")``
    fails); anything unparsable is ignored, never fatal.
    """
    if not value or not isinstance(value, str):
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(min(int(value), _MAX_RETRY_AFTER_SEC))
    try:
        from email.utils import parsedate_to_datetime

        when = parsedate_to_datetime(value)
        seconds = when.timestamp() - time.time()
    except Exception:  # TypeError, ValueError, IndexError, OverflowError across versions
        _debug.note(f"ignoring malformed Retry-After header {value[:64]!r}")
        return None
    return min(max(0.0, seconds), float(_MAX_RETRY_AFTER_SEC))


def post(url, body, timeout, deadline=None):
    """POST gzip'd report bytes once; proxies come from the environment (HTTPS_PROXY, NO_PROXY) via requests.

    ``timeout`` bounds the connection and each read; ``deadline`` (a ``time.monotonic()``
    value) clips both, so a caller with a wall-clock budget never starts what it cannot finish.
    """
    if deadline is not None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return Outcome(False, retry=True, reason="deadline")
        timeout = min(timeout, remaining)
    import gzip

    import requests

    data = gzip.compress(body, compresslevel=6, mtime=0)
    headers = {
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
        "User-Agent": "telly_autoinst",
        "Accept-Encoding": "identity",
    }
    try:
        # stream=True: only the status line and headers are read; the body is left unread and
        # the connection closed, so its size and pace do not matter.
        response = requests.post(url, data=data, headers=headers, timeout=(timeout, timeout), allow_redirects=False,
                                 stream=True)
    except requests.exceptions.Timeout:
        return Outcome(False, retry=True, reason="timeout")
    except requests.exceptions.ConnectionError:
        return Outcome(False, retry=True, reason="connection-error")
    except requests.exceptions.RequestException as exc:
        return Outcome(False, retry=False, reason=f"request-error:{type(exc).__name__}")
    try:
        status = response.status_code
        header = response.headers.get("Retry-After")
    finally:
        response.close()
    if 200 <= status < 300:
        return Outcome(True)
    if status in (408, 425, 429) or status >= 500:
        return Outcome(False, retry=True, reason=f"http-{status}", retry_after=retry_after(header))
    # Other 4xx: the collector will never accept this report; retrying only wastes the user's network.
    return Outcome(False, retry=False, reason=f"http-{status}")
