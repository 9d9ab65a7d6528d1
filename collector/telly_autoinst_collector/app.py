"""Wiring only: the Starlette application, its routes, and the background jobs' schedule."""

import asyncio
import contextlib
import dataclasses
import logging
import os
import urllib.parse

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from . import jobs
from .dashboard import DashboardViews
from .ratelimit import RateLimiter
from .receive import IngestEndpoints
from .registry import Registry
from .requestlog import RequestLog
from .store import rows_refused
from .window import MIN_WINDOW_DAYS, Window, utc_now
from .writer import BatchWriter

_log = logging.getLogger("telly_autoinst_collector")


@dataclasses.dataclass(frozen=True)
class Config:
    """How one collector process serves; set from the `collector serve` options."""

    region: str = "us"
    min_group: int = 10
    window_days: int = MIN_WINDOW_DAYS
    rate: float = 1000.0  # reports per second per project; 0 turns the limit off
    burst: float = 5000.0
    max_wire: int = 1 << 20  # bytes on the wire
    max_decoded: int = 4 << 20  # bytes after gunzip
    max_in_flight: int = 64 << 20  # bytes of bodies (raw, inflated, parsed) held by all requests at once
    publish_interval: float = 3600.0  # seconds between scheduled publish-and-expire runs; 0 = never
    public_url: str = ""  # the URL browsers use (behind a TLS proxy: https://...); "" = as requested
    request_log: bool = False  # a line per request (method, path, status, duration; no address)


async def _maintain_forever(store, config, now):
    # With several workers on one database exactly one of them runs the jobs: the one holding
    # the store's job lock. The others ask again each minute, so a dead holder is replaced.
    while True:
        try:
            if await run_in_threadpool(store.job_lock):
                await run_in_threadpool(jobs.maintain, store, config.region, now().date(), config.window_days)
                wait = config.publish_interval
            else:
                wait = min(config.publish_interval, 60.0)
        except Exception:  # a failed run is retried at the next interval; serving goes on
            _log.exception("scheduled publish/expire failed")
            wait = min(config.publish_interval, 60.0)
        await asyncio.sleep(wait)


async def _checkpoint_forever(store):
    while True:
        await asyncio.sleep(1.0)
        try:
            await run_in_threadpool(store.checkpoint)
        except Exception as exc:  # the WAL's own threshold still bounds it; try again next second
            _log.warning("WAL checkpoint failed: %s", type(exc).__name__)


def build_app(store, config=Config(), now=utc_now):
    registry = Registry(store)
    writer = BatchWriter(store.insert_reports, rows_refused=rows_refused)
    ingest = IngestEndpoints(config, registry, RateLimiter(config.rate, config.burst), Window(store, now), writer)
    views = DashboardViews(store, registry, config, now)
    static = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        writer.start()
        loop = asyncio.get_running_loop()
        tasks = []
        if store.dialect == "sqlite":
            tasks.append(loop.create_task(_checkpoint_forever(store)))
        if config.publish_interval > 0:
            tasks.append(loop.create_task(_maintain_forever(store, config, now)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await writer.stop()
            await run_in_threadpool(store.release_job_lock)

    async def health(_request):
        return JSONResponse({"ok": True, "region": config.region})

    async def http_error(_request, exc):
        # Starlette's own 404/405 as the documented {"error", "detail"} body.
        return JSONResponse({"error": {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error"),
                             "detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    async def internal_error(_request, _exc):
        # Starlette re-raises after answering, so uvicorn logs the traceback.
        return JSONResponse({"error": "internal_error", "detail": "the collector failed; retry later"},
                            status_code=503, headers={"Retry-After": "60"})

    site = Starlette(routes=[
        Route("/api/v1/projects/{project_id}/stats", views.api_stats, methods=["GET"]),
        Route("/projects/{project_id}", views.page, methods=["GET"]),
        Route("/projects/{project_id}/login", views.login, methods=["POST"]),
        Route("/healthz", health, methods=["GET"]),
        Mount("/static", StaticFiles(directory=static), name="static"),
    ], lifespan=lifespan, exception_handlers={HTTPException: http_error, Exception: internal_error})
    app = _Dispatch({"/api/v1/reports": ingest.v1, "/v1.0/collect": ingest.v10}, site, config.public_url)
    return RequestLog(app) if config.request_log else app


class _Dispatch:
    """Sends report POSTs straight to their raw ASGI endpoints and everything else to Starlette.

    With a public URL it also tells Starlette the scheme browsers use (so that the login cookie
    is Secure behind a TLS proxy), and it refuses a login form posted from another origin.
    """

    def __init__(self, posts, site, public_url=""):
        self._posts, self.site = posts, site
        parts = urllib.parse.urlsplit(public_url)
        self._scheme = parts.scheme or None
        self._origin = f"{parts.scheme}://{parts.netloc}" if parts.netloc else None

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            if self._scheme:
                scope["scheme"] = self._scheme
            if scope["method"] == "POST":
                endpoint = self._posts.get(scope["path"])
                if endpoint is not None:
                    return await endpoint(scope, receive, send)
                if scope["path"].endswith("/login") and not self._same_origin(scope):
                    response = JSONResponse({"error": "cross_origin", "detail": "the login form must be posted "
                                             "from this collector's own pages"}, status_code=403)
                    return await response(scope, receive, send)
        return await self.site(scope, receive, send)

    def _same_origin(self, scope):
        """Whether a form post comes from this server's own pages.

        Browsers say so in Sec-Fetch-Site, which no page can forge. Older ones send Origin with
        every POST, but as "null" under the dashboard's no-referrer policy, which a cross-site
        page can produce too, so "null" is refused. A request with neither header is not a
        browser's cross-site form; it passes, and its token is checked as usual.
        """
        headers = dict(scope["headers"])
        site = headers.get(b"sec-fetch-site")
        if site is not None:
            return site in (b"same-origin", b"none")
        sent = headers.get(b"origin")
        if sent is None:
            return True
        expected = self._origin
        if expected is None:
            host = headers.get(b"host", b"").decode("latin-1")
            expected = f"{scope.get('scheme', 'http')}://{host}"
        return sent.decode("latin-1").lower() == expected.lower()
