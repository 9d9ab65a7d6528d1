"""Receiving reports over HTTP: the raw ASGI endpoints, and the bytes they may hold in memory.

Ingestion is the hot path, so these endpoints are plain ASGI callables, without the framework's
request objects. A report is acknowledged only after the commit of the batch holding it.
Every refusal of a client's input is a 4xx with a JSON body. The only 5xx is 503 with
Retry-After: when the bytes in flight are at their cap, when storage fails or is full, and when
the collector itself fails (a bug): a client deletes a report on a 4xx, so a bug must never
look like the client's fault.
"""

import logging
import zlib

import msgspec

from .decode import fast_contribution_v1
from .ingest import Rejected, contribution_v1, contributions_v10, keep_plaintext, parse_json, project_id_of, validate_v1
from .writer import Overloaded

_log = logging.getLogger("telly_autoinst_collector")

# What a request costs before its body: the task, the scope, the headers and the answer.
_REQUEST_OVERHEAD = 4096
# Python objects per byte of JSON text, as an upper bound (see _parsed_size).
_STR_FACTOR = 4
_VALUE_OVERHEAD = 100
_GUNZIP_STEP = 64 * 1024


class InFlight:
    """Bytes held by all the requests being read, inflated, parsed or stored: capped in total.

    Per-connection caps alone let many connections each hold a legal body; this counts every
    request's bodies (raw, inflated and an upper bound of the parsed objects) against one cap,
    and a request that would pass it is answered 503 with Retry-After at once instead of waiting
    while it holds what it has read.
    """

    def __init__(self, limit):
        self.limit, self.used = limit, 0

    def charge(self):
        return _Charge(self)


class _Charge:
    """One request's share of InFlight; given back whole when the request ends."""

    def __init__(self, pool):
        self._pool, self.held = pool, 0

    def take(self, size):
        if self._pool.used + size > self._pool.limit:
            raise Rejected(503, "overloaded", "the collector holds too many bodies in memory; retry later",
                           headers={"Retry-After": "1"})
        self._pool.used += size
        self.held += size

    def give(self, size):
        size = min(size, self.held)
        self._pool.used -= size
        self.held -= size

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        self.give(self.held)


def _parsed_size(text):
    """An upper bound of the memory ``json.loads(text)`` takes, from a few C-speed scans.

    A string costs at most 4 bytes per byte of text (one astral character makes CPython store the
    whole string in UCS-4); every other value, container or dict entry at most about 100 bytes,
    and each one needs a ``,``, ``:``, ``[`` or ``{`` (the count includes those inside strings,
    which only overestimates). ``[{},{},…]`` really takes about 24 times its text.
    """
    tokens = text.count(b",") + text.count(b":") + text.count(b"[") + text.count(b"{") + 1
    return _STR_FACTOR * len(text) + _VALUE_OVERHEAD * tokens


def _media_type_ok(value):
    """``application/json``, with no charset or charset=utf-8 (any case): what our clients send.

    Anything else is refused, so that a form on a web page (``text/plain``, which a browser sends
    cross-site without asking) cannot post reports to a collector on an intranet.
    """
    media, _, params = value.decode("latin-1").partition(";")
    if media.strip().lower() != "application/json":
        return False
    for param in params.split(";"):
        name, _, val = param.partition("=")
        if name.strip().lower() == "charset" and val.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return False
    return True


async def read_body(headers, receive, max_wire, max_decoded, charge):
    """The request body, decompressed, refusing more than the caps while reading (gzip bombs too).

    ``headers`` maps lower-case header names to values (bytes), as ASGI gives them. Every byte
    held is taken from ``charge`` (a share of InFlight) before it is kept.
    """
    if not _media_type_ok(headers.get(b"content-type", b"")):
        raise Rejected(415, "unsupported_media_type", "Content-Type must be application/json (UTF-8)")
    declared = headers.get(b"content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Rejected(400, "bad_content_length", "Content-Length is not a number")
        if int(declared) > max_wire:
            raise Rejected(413, "too_large", f"body larger than {max_wire} bytes")
    encoding = headers.get(b"content-encoding", b"").strip().lower()
    if encoding not in (b"", b"identity", b"gzip", b"x-gzip"):
        raise Rejected(415, "unsupported_encoding", "Content-Encoding must be gzip or absent")
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
        charge.take(len(chunk))
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    if len(chunks) == 1:
        raw = chunks[0]
    else:
        charge.take(total)  # the joined copy, while the chunks still exist
        raw = b"".join(chunks)
        charge.give(total)
    del chunks
    if encoding in (b"gzip", b"x-gzip"):
        out = _gunzip(raw, max_decoded, charge)
        charge.give(len(raw))
        return out
    if len(raw) > max_decoded:
        raise Rejected(413, "too_large", f"body larger than {max_decoded} bytes")
    return raw


def _gunzip(raw, max_decoded, charge):
    inflater = zlib.decompressobj(wbits=31)
    parts, size = [], 0
    try:
        # max_length bounds each step, so a small bomb never inflates past a cap in memory, and
        # each step's output is charged before the next one is made.
        data = raw
        while not inflater.eof and size <= max_decoded:
            more = inflater.decompress(data, min(_GUNZIP_STEP, max_decoded + 1 - size))
            data = inflater.unconsumed_tail
            if not more:
                break  # input exhausted before the end of the stream: truncated
            charge.take(len(more))
            parts.append(more)
            size += len(more)
    except zlib.error as exc:
        raise Rejected(400, "bad_gzip", f"body is not valid gzip: {exc}") from None
    if size > max_decoded:
        raise Rejected(413, "too_large", f"decompressed body larger than {max_decoded} bytes")
    if not inflater.eof:
        raise Rejected(400, "bad_gzip", "gzip body is truncated")
    if len(parts) == 1:
        return parts[0]
    charge.take(size)
    out = b"".join(parts)
    charge.give(size)
    return out


async def _respond(send, status, payload, headers=None):
    body = msgspec.json.encode(payload)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw.extend((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in (headers or {}).items())
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _refuse(send, rejected):
    await _respond(send, rejected.status, {"error": rejected.code, "detail": rejected.detail}, rejected.headers)


class IngestEndpoints:
    """POST /api/v1/reports and POST /v1.0/collect; acknowledged only after the batch commit."""

    def __init__(self, config, registry, limiter, window, writer, in_flight=None):
        self._config, self._registry, self._limiter = config, registry, limiter
        self._window, self._writer = window, writer
        self.in_flight = in_flight or InFlight(config.max_in_flight)

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
        return project

    async def _store(self, kept):
        try:
            rows = [await self._window.row(f) for f in kept]
            await self._writer.submit([row for row in rows if row is not None])
        except Overloaded:
            raise Rejected(503, "overloaded", "the collector is saturated; retry later",
                           headers={"Retry-After": "1"}) from None
        except Exception as exc:  # storage failed (the writer logged why): the client keeps its report
            raise Rejected(503, "storage_unavailable", f"the report was not stored ({type(exc).__name__})",
                           headers={"Retry-After": "5"}) from None

    async def _handle(self, scope, receive, send, accept):
        """Read the body and answer with ``accept(body)``, holding only what InFlight allows."""
        with self.in_flight.charge() as charge:
            try:
                charge.take(_REQUEST_OVERHEAD)
                body = await read_body(dict(scope["headers"]), receive, self._config.max_wire,
                                       self._config.max_decoded, charge)
                # Parsed JSON weighs several times its text: reserve its worst case before parsing.
                charge.take(_parsed_size(body))
                status, payload = await accept(body)
            except Rejected as exc:
                await _refuse(send, exc)
                return
            except Exception:  # a collector bug: 503 so that the client keeps the report and retries
                _log.exception("report not processed after an internal error")
                await _refuse(send, Rejected(503, "internal_error", "the collector failed; retry later",
                                             headers={"Retry-After": "60"}))
                return
        await _respond(send, status, payload)

    async def v1(self, scope, receive, send):
        await self._handle(scope, receive, send, self._accept_v1)

    async def v10(self, scope, receive, send):
        await self._handle(scope, receive, send, self._accept_v10)

    async def _accept_v1(self, body):
        kept = fast_contribution_v1(body)
        if kept is not None:
            project = await self._admit(kept.project_id)
        else:  # the long way, which says exactly what is wrong (or accepts what msgspec is strict about)
            doc = parse_json(body)
            project = await self._admit(project_id_of(doc))
            validate_v1(doc)
            kept = contribution_v1(doc)
            del doc
        # Plaintext Level II is the project's own (third) agreement: without it, it is dropped here
        # and never reaches storage; the hashes sent beside it are re-keyed as always.
        kept = keep_plaintext(kept, project["level2_plaintext"])
        await self._store([kept])
        return 200, {"accepted": 1, "report_id": kept.report_id}

    async def _accept_v10(self, body):
        admitted, refusal = [], None
        for kept in contributions_v10(parse_json(body)):
            try:
                await self._admit(kept.project_id)
                admitted.append(kept)
            except Rejected as exc:
                refusal = exc
        # A v1.0 client lists every project of its process; keep the reports of those hosted here.
        if not admitted:
            raise refusal
        await self._store(admitted)
        return 200, {"accepted": len(admitted)}
