"""One POST of report bytes to a collector, bounded in time and size, and what came of it.

Shared by the synchronous ``http`` transport and the detached sender; it knows nothing about
spools or retries, so neither of them has to import the other. The wire is the standard
library's ``http.client`` (``requests`` cost the detached sender about 70 ms of CPU to import at
every run), imported only when a report really goes over HTTP. Timeouts are passed per request; the
process-wide ``socket.setdefaulttimeout`` is never touched (the original client set it and never
restored it, changing every socket of the host program).
"""

import os
import time

from . import _env

# The collector's answer carries nothing we need beyond its status and headers: its body is
# never read, so an endless or trickling body costs neither memory nor time.
_MAX_RETRY_AFTER_SEC = 7 * 24 * 3600


class Outcome:
    """What happened to one delivery attempt (a post, a report queued in the spool, a file)."""

    __slots__ = ("delivered", "retry", "reason", "retry_after")

    def __init__(self, delivered, retry=False, reason="ok", retry_after=None):
        self.delivered = delivered
        self.retry = retry
        self.reason = reason
        self.retry_after = retry_after

    def __repr__(self):
        return f"Outcome(delivered={self.delivered}, retry={self.retry}, reason={self.reason!r})"


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
        _env.note(f"ignoring malformed Retry-After header {value[:64]!r}")
        return None
    return min(max(0.0, seconds), float(_MAX_RETRY_AFTER_SEC))


def post(url, body, timeout, deadline=None):
    """POST gzip'd report bytes once; proxies come from the environment (HTTPS_PROXY, NO_PROXY), as for urllib.

    ``timeout`` bounds the connection and each read; ``deadline`` (a ``time.monotonic()``
    value) clips both, so a caller with a wall-clock budget never starts what it cannot finish.
    """
    if deadline is not None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return Outcome(False, retry=True, reason="deadline")
        timeout = min(timeout, remaining)
    import zlib
    from http.client import HTTPException
    from urllib.parse import urlsplit

    # wbits 31: the gzip format, with a zero mtime, as gzip.compress(mtime=0) writes it; zlib is
    # built in, where the gzip module is one more import for the sender.
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    data = packer.compress(body) + packer.flush()
    headers = {
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
        "User-Agent": "telly_autoinst",
        "Accept-Encoding": "identity",
        "Connection": "close",
    }
    try:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return Outcome(False, retry=False, reason="request-error:InvalidURL")
        connection, target = _connection(parts, timeout, headers)
        try:
            connection.request("POST", target, body=data, headers=headers)
            # Only the status line and headers are read; the body is left unread and the
            # connection closed, so its size and pace do not matter.
            response = connection.getresponse()
            status = response.status
            header = response.getheader("Retry-After")
        finally:
            connection.close()
    except TimeoutError:  # socket.timeout is TimeoutError from 3.10; caught as OSError on 3.9 below
        return Outcome(False, retry=True, reason="timeout")
    except (OSError, HTTPException) as exc:
        # Refused, reset, TLS failure (a certificate that does not verify is also a ValueError,
        # so this comes first), a malformed answer: the collector may be fine next time.
        timed_out = type(exc).__name__ == "timeout"
        return Outcome(False, retry=True, reason="timeout" if timed_out else "connection-error")
    except ValueError:  # a port that is no number, a header with a line break: never sendable
        return Outcome(False, retry=False, reason="request-error:InvalidURL")
    if 200 <= status < 300:
        return Outcome(True)
    if status in (408, 425, 429) or status >= 500:
        return Outcome(False, retry=True, reason=f"http-{status}", retry_after=retry_after(header))
    # Other 4xx: the collector will never accept this report; retrying only wastes the user's network.
    return Outcome(False, retry=False, reason=f"http-{status}")


def _proxy(parts):
    """The proxy URL the environment names for this destination, or None.

    ``urllib.request`` (a large import) is loaded only when a ``*_proxy`` variable is set at all;
    its own functions then decide, so NO_PROXY and the variables' precedence are urllib's.
    """
    if not any(name.lower().endswith("_proxy") and name.lower() != "no_proxy" for name in os.environ):
        return None
    from urllib.request import (  # type: ignore[attr-defined]  # public, but not in typeshed
        getproxies_environment,
        proxy_bypass_environment,
    )

    proxies = getproxies_environment()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or proxy_bypass_environment(parts.hostname, proxies):
        return None
    return proxy


def _connection(parts, timeout, headers):
    """(an unopened http.client connection, the request target) for this URL, through a proxy if one is set."""
    from http.client import HTTPConnection, HTTPSConnection

    port = parts.port  # raises ValueError for a port that is no number
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    proxy = _proxy(parts)
    if proxy is None:
        if parts.scheme == "https":
            return HTTPSConnection(parts.hostname, port, timeout=timeout, context=_tls()), target
        return HTTPConnection(parts.hostname, port, timeout=timeout), target
    from urllib.parse import unquote, urlsplit

    via = urlsplit(proxy if "://" in proxy else "http://" + proxy)
    auth = {}
    if via.username is not None:
        import binascii

        pair = f"{unquote(via.username)}:{unquote(via.password or '')}".encode("utf-8")
        auth["Proxy-Authorization"] = "Basic " + binascii.b2a_base64(pair, newline=False).decode("ascii")
    if parts.scheme == "https":
        # A CONNECT tunnel: the proxy sees only host and port, and TLS runs end to end with the
        # collector (http.client speaks plain HTTP to the proxy itself, whatever its scheme says).
        connection = HTTPSConnection(via.hostname, via.port, timeout=timeout, context=_tls())
        connection.set_tunnel(parts.hostname, port, headers=auth)
        return connection, target
    # A forward proxy takes the absolute URL of the real destination.
    headers.update(auth)
    if via.scheme == "https":
        return HTTPSConnection(via.hostname, via.port, timeout=timeout, context=_tls()), parts.geturl()
    return HTTPConnection(via.hostname, via.port, timeout=timeout), parts.geturl()


def _tls():
    """The TLS context: the system's certificates (SSL_CERT_FILE/SSL_CERT_DIR honoured), or a bundle named
    by REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE as requests would use; certifi's when the system has none."""
    import ssl

    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        return ssl.create_default_context(cafile=bundle) if os.path.isfile(bundle) else \
            ssl.create_default_context(capath=bundle)
    context = ssl.create_default_context()
    if not context.cert_store_stats().get("x509_ca"):
        try:
            import certifi
        except ImportError:
            return context
        context.load_verify_locations(certifi.where())
    return context
