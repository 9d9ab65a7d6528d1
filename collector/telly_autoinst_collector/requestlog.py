"""The request log: one line per request with its method, path, status and duration, never who sent it.

The collector never records client addresses (nor the proxy headers that carry them), so this
log is written by the application, which sees only the request's method and path, instead of
uvicorn's access log, which prints the peer's address and port.
"""

import logging
import time

_log = logging.getLogger("telly_autoinst_collector.requests")


class RequestLog:
    """ASGI middleware writing each HTTP request's line to the ``telly_autoinst_collector.requests`` logger."""

    def __init__(self, app):
        self._app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self._app(scope, receive, send)
        started = time.perf_counter()
        status = 0  # no response: the client went away, or the server stopped first

        async def send_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, send_status)
        finally:
            # The path only: a query string could carry anything a client put there.
            _log.info("%s %s %d %.1fms", scope["method"], scope["path"], status,
                      (time.perf_counter() - started) * 1000)


def enable(stream):
    """Write the request log to ``stream``, one timestamped line per request."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    _log.addHandler(handler)
    _log.setLevel(logging.INFO)
    _log.propagate = False
