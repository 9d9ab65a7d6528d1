"""Receiving reports over HTTP: capped body reading (gzip bombs included) and the raw ASGI endpoints.

Ingestion is the hot path, so these endpoints are plain ASGI callables, without the framework's
request objects. A report is acknowledged only after the commit of the batch holding it.
Nothing a client sends can produce a 5xx: every refusal is a 4xx with a JSON body, and the one
5xx is 503 (with Retry-After) when storage itself fails or is full.
"""

import asyncio
import contextlib
import json
import logging
import zlib

from .ingest import Rejected, facts_v1, facts_v10, parse_json, project_id_of, validate_v1
from .writer import Overloaded

__all__ = ["read_body", "IngestEndpoints"]

_log = logging.getLogger("telly_autoinst.collector")

# Bodies above this size (on the wire or decompressed) are held a few at a time, so memory stays
# bounded however many connections are open (see read_body and IngestEndpoints._handle). A
# report is typically a few KiB.
_SMALL_BODY = 64 * 1024


async def _respond(send, status, payload, headers=None):
    body = json.dumps(payload).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw.extend((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in (headers or {}).items())
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _refuse(send, rejected):
    await _respond(send, rejected.status, {"error": rejected.code, "detail": rejected.detail}, rejected.headers)


async def read_body(headers, receive, max_wire, max_decoded, on_large=None):
    """The request body, decompressed, refusing more than the caps while reading (gzip bombs too).

    ``headers`` maps lower-case header names to values (bytes), as ASGI gives them. ``on_large``
    is awaited once, before the body (on the wire or decompressed) grows past _SMALL_BODY bytes
    in memory: the caller bounds how many large bodies are held at once.
    """
    declared = headers.get(b"content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Rejected(400, "bad_content_length", "Content-Length is not a number")
        if int(declared) > max_wire:
            raise Rejected(413, "too_large", f"body larger than {max_wire} bytes")
    encoding = headers.get(b"content-encoding", b"").strip().lower()
    if encoding not in (b"", b"identity", b"gzip", b"x-gzip"):
        raise Rejected(415, "unsupported_encoding", "Content-Encoding must be gzip or absent")
    large = _Large(on_large)
    chunks, total = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Rejected(400, "disconnected", "the client went away before the body was complete")
        chunk = message.get("body", b"")
        total += len(chunk)
        # Counted while streaming: a chunked body has no Content-Length to check up front.
        if total > max_wire:
            raise Rejected(413, "too_large", f"body larger than {max_wire} bytes")
        if total > _SMALL_BODY:
            await large.enter()
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    raw = b"".join(chunks)
    if encoding in (b"gzip", b"x-gzip"):
        return await _gunzip(raw, max_decoded, large)
    if len(raw) > max_decoded:
        raise Rejected(413, "too_large", f"body larger than {max_decoded} bytes")
    return raw


class _Large:
    """Calls ``on_large`` at most once."""

    def __init__(self, on_large):
        self._on_large, self._entered = on_large, False

    async def enter(self):
        if not self._entered:
            self._entered = True
            if self._on_large is not None:
                await self._on_large()


async def _gunzip(raw, max_decoded, large):
    inflater = zlib.decompressobj(wbits=31)
    try:
        # max_length bounds the output, so a small bomb never inflates past a cap in memory:
        # first up to the small-body size, then (holding a large-body slot) up to max_decoded.
        out = inflater.decompress(raw, _SMALL_BODY + 1)
        if len(out) > _SMALL_BODY:
            await large.enter()
            parts = [out]
            size = len(out)
            while not inflater.eof and size <= max_decoded:
                more = inflater.decompress(inflater.unconsumed_tail, max_decoded + 1 - size)
                if not more:
                    break  # input exhausted before the end of the stream: truncated
                parts.append(more)
                size += len(more)
            out = b"".join(parts)
    except zlib.error as exc:
        raise Rejected(400, "bad_gzip", f"body is not valid gzip: {exc}") from None
    if len(out) > max_decoded:
        raise Rejected(413, "too_large", f"decompressed body larger than {max_decoded} bytes")
    if not inflater.eof:
        raise Rejected(400, "bad_gzip", "gzip body is truncated")
    return out


class IngestEndpoints:
    """POST /api/v1/reports and POST /v1.0/collect; acknowledged only after the batch commit."""

    def __init__(self, config, registry, limiter, window, writer):
        self._config, self._registry, self._limiter = config, registry, limiter
        self._window, self._writer = window, writer
        self._large_slots = asyncio.Semaphore(4)

    async def _admit(self, project_id):
        """Refuse unknown, foreign-region and over-limit projects before any further work."""
        project = await self._registry.get(project_id)
        if project is None:
            raise Rejected(404, "unknown_project", f"no project {project_id!r} is registered here")
        if project["region"] != self._config.region:
            raise Rejected(421, "wrong_region",
                           f"project is registered in region {project['region']!r}; this collector "
                           f"serves {self._config.region!r}")
        wait = self._limiter.take(project_id)
        if wait:
            raise Rejected(429, "rate_limited", "too many reports for this project; retry later",
                           headers={"Retry-After": str(wait)})

    async def _store(self, facts):
        try:
            rows = [await self._window.row(f) for f in facts]
            await self._writer.submit(rows)
        except Overloaded:
            raise Rejected(503, "overloaded", "the collector is saturated; retry later",
                           headers={"Retry-After": "1"}) from None
        except Exception as exc:  # storage failed: the client keeps its report and retries
            raise Rejected(503, "storage_unavailable", f"the report was not stored ({type(exc).__name__})",
                           headers={"Retry-After": "5"}) from None

    async def _handle(self, scope, receive, send, accept):
        """Read the body and answer with ``accept(body)``; large bodies take one of a few slots first."""
        async with contextlib.AsyncExitStack() as held:
            async def take_large_slot():
                # Parsed JSON weighs several times its text: bound how many large ones are in memory.
                await held.enter_async_context(self._large_slots)

            try:
                body = await read_body(dict(scope["headers"]), receive, self._config.max_wire,
                                       self._config.max_decoded, on_large=take_large_slot)
                status, payload = await accept(body)
            except Rejected as exc:
                await _refuse(send, exc)
                return
            except Exception as exc:  # a bug must not turn a client's input into a 5xx; say what kind
                _log.warning("report refused after an internal error: %s", type(exc).__name__)
                await _refuse(send, Rejected(422, "unprocessable",
                                             f"the report could not be processed ({type(exc).__name__})"))
                return
        await _respond(send, status, payload)

    async def v1(self, scope, receive, send):
        await self._handle(scope, receive, send, self._accept_v1)

    async def v10(self, scope, receive, send):
        await self._handle(scope, receive, send, self._accept_v10)

    async def _accept_v1(self, body):
        doc = parse_json(body)
        await self._admit(project_id_of(doc))
        validate_v1(doc)
        facts = facts_v1(doc)
        await self._store([facts])
        return 200, {"accepted": 1, "report_id": facts.report_id}

    async def _accept_v10(self, body):
        admitted, refusal = [], None
        for facts in facts_v10(parse_json(body)):
            try:
                await self._admit(facts.project_id)
                admitted.append(facts)
            except Rejected as exc:
                refusal = exc
        # A v1.0 client lists every project of its process; keep the reports of those hosted here.
        if not admitted:
            raise refusal
        await self._store(admitted)
        return 200, {"accepted": len(admitted)}
