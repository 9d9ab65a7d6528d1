"""Wiring only: the Starlette application, its routes, and the background jobs' schedule."""

import asyncio
import contextlib
import dataclasses
import logging
import os

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from . import jobs
from .dashboard import DashboardViews
from .ratelimit import RateLimiter
from .receive import IngestEndpoints
from .registry import Registry
from .window import Window, utc_now
from .writer import BatchWriter

__all__ = ["Config", "build_app"]

_log = logging.getLogger("telly_autoinst.collector")


@dataclasses.dataclass(frozen=True)
class Config:
    """How one collector process serves; set from the `collector serve` options."""

    region: str = "us"
    min_group: int = 10
    window_days: int = 30
    rate: float = 1000.0  # reports per second per project; 0 turns the limit off
    burst: float = 5000.0
    max_wire: int = 1 << 20  # bytes on the wire
    max_decoded: int = 4 << 20  # bytes after gunzip
    publish_interval: float = 3600.0  # seconds between scheduled publish-and-expire runs; 0 = never


async def _maintain_forever(store, config, now):
    while True:
        try:
            await run_in_threadpool(jobs.maintain, store, config.region, now().date(), config.window_days)
        except Exception as exc:  # a failed run is retried at the next interval; serving goes on
            _log.warning("scheduled publish/expire failed: %s: %s", type(exc).__name__, exc)
        await asyncio.sleep(config.publish_interval)


async def _checkpoint_forever(store):
    while True:
        await asyncio.sleep(1.0)
        try:
            await run_in_threadpool(store.checkpoint)
        except Exception as exc:  # the WAL's own threshold still bounds it; try again next second
            _log.warning("WAL checkpoint failed: %s", type(exc).__name__)


def build_app(store, config=Config(), now=utc_now):
    registry = Registry(store)
    writer = BatchWriter(store.insert_reports)
    ingest = IngestEndpoints(config, registry, RateLimiter(config.rate, config.burst), Window(store, now), writer)
    views = DashboardViews(store, registry, config, now)
    static = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        writer.start()
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(_checkpoint_forever(store))]
        if config.publish_interval > 0:
            tasks.append(loop.create_task(_maintain_forever(store, config, now)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await writer.stop()

    async def health(_request):
        return JSONResponse({"ok": True, "region": config.region})

    site = Starlette(routes=[
        Route("/api/v1/projects/{project_id}/stats", views.api_stats, methods=["GET"]),
        Route("/projects/{project_id}", views.page, methods=["GET"]),
        Route("/projects/{project_id}/login", views.login, methods=["POST"]),
        Route("/healthz", health, methods=["GET"]),
        Mount("/static", StaticFiles(directory=static), name="static"),
    ], lifespan=lifespan)
    return _Dispatch({"/api/v1/reports": ingest.v1, "/v1.0/collect": ingest.v10}, site)


class _Dispatch:
    """Sends report POSTs straight to their raw ASGI endpoints and everything else to Starlette."""

    def __init__(self, posts, site):
        self._posts, self.site = posts, site

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self._posts.get(scope["path"])
            if endpoint is not None:
                return await endpoint(scope, receive, send)
        return await self.site(scope, receive, send)
