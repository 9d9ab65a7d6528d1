"""Accepting reports: bounded body reading, validation of both wire formats, and the ingest endpoints.

Validation of schema v1 is written out by hand, mirroring config/report.schema.json line by line,
because it runs for every report and the generic validator costs more than the rest of the
request; tests/collector/test_ingest.py checks it agrees with ``jsonschema`` on generated input.
Every refusal is a ``Rejected`` with a 4xx status and a JSON body, so nothing a client sends can
produce a 5xx; the one exception is 503 (with Retry-After) when storage itself fails or is full.
"""

import asyncio
import contextlib
import json
import logging
import re
import uuid
import zlib
from typing import NamedTuple, Optional

from .writer import Overloaded

__all__ = ["Facts", "Rejected", "read_body", "validate_v1", "facts_v1", "facts_v10", "IngestEndpoints"]


_log = logging.getLogger("telly_autoinst.collector")

# Bodies above this size (on the wire or decompressed) are held a few at a time, so memory stays
# bounded however many connections are open (see read_body and IngestEndpoints._handle). A
# report is typically a few KiB.
_SMALL_BODY = 64 * 1024


class Rejected(Exception):
    """A request the collector refuses, with the status and error code the client will see."""

    def __init__(self, status, code, detail, headers=None):
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers

    async def send(self, send):
        await _respond(send, self.status, {"error": self.code, "detail": self.detail}, self.headers)


async def _respond(send, status, payload, headers=None):
    body = json.dumps(payload).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw.extend((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in (headers or {}).items())
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class Facts(NamedTuple):
    """What is kept of one report for one project: never more than gets published."""

    project_id: str
    report_id: str
    user: Optional[str]  # the client's Level II hash (or v1.0 value); re-keyed before storage
    version: str
    python: str
    os: str
    arch: str
    stats: dict


# --- body ---------------------------------------------------------------------------------
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


def _parse_json(body):
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        # ValueError covers bad UTF-8, bad JSON and integers longer than Python's digit limit.
        raise Rejected(400, "malformed_json", f"body is not JSON: {str(exc)[:200]}") from None


# --- schema v1 ----------------------------------------------------------------------------
_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_PROJECT_ID = re.compile(r"[A-Za-z0-9._:-]+")
_TOP = {"schema_version", "report_id", "project_id", "created_at", "trigger", "exit_signal", "client",
        "interpreter", "platform", "package", "packages", "stats", "level2"}
_TOP_REQUIRED = _TOP - {"exit_signal"}
_TRIGGERS = {"exit", "signal", "timer", "fork", "manual"}
_MODES = {"script", "module", "command", "repl", "jupyter", "unknown"}
_LEVEL2 = {"user", "home", "machine", "host"}
_PLATFORM = {"os", "release", "machine", "cpu_model", "cpu_count", "memory_mib", "container", "ci",
             "ci_vendor", "wsl"}


class _Invalid(Exception):
    pass


def _fail(where, what):
    raise _Invalid(f"{where}: {what}")


def _int(value):
    # JSON Schema's "integer" is mathematical: 3.0 is one, true is not.
    return type(value) is int or (type(value) is float and value.is_integer())


def _str(value, where, max_length, nullable=False):
    if value is None and nullable:
        return
    if type(value) is not str:
        _fail(where, "expected a string" + (" or null" if nullable else ""))
    if len(value) > max_length:
        _fail(where, f"longer than {max_length} characters")


def _object(value, where, allowed, required):
    if type(value) is not dict:
        _fail(where, "expected an object")
    extra = value.keys() - allowed
    if extra:
        _fail(where, f"unexpected property {sorted(extra)[0]!r}")
    missing = required - value.keys()
    if missing:
        _fail(where, f"missing property {sorted(missing)[0]!r}")


def _validate(doc):
    _object(doc, "report", _TOP, _TOP_REQUIRED)
    version = doc["schema_version"]
    if type(version) not in (int, float) or version != 1:
        _fail("schema_version", "must be 1")
    report_id = doc["report_id"]
    if type(report_id) is not str or not _HEX32.fullmatch(report_id):
        _fail("report_id", "expected 32 lowercase hex digits")
    project_id = doc["project_id"]
    _str(project_id, "project_id", 128)
    if not _PROJECT_ID.fullmatch(project_id):
        _fail("project_id", "expected 1-128 characters of A-Z a-z 0-9 . _ : -")
    _str(doc["created_at"], "created_at", 40)
    if type(doc["trigger"]) is not str or doc["trigger"] not in _TRIGGERS:
        _fail("trigger", f"expected one of {sorted(_TRIGGERS)}")
    if "exit_signal" in doc:
        signal = doc["exit_signal"]
        if signal is not None and not (_int(signal) and 1 <= signal <= 64):
            _fail("exit_signal", "expected null or an integer from 1 to 64")
    client = doc["client"]
    _object(client, "client", {"name", "version", "engine"}, {"name", "version", "engine"})
    if client["name"] != "telly_autoinst" or type(client["name"]) is not str:
        _fail("client.name", "must be 'telly_autoinst'")
    _str(client["version"], "client.version", 64)
    if type(client["engine"]) is not str or client["engine"] not in ("wrapt", "monitoring"):
        _fail("client.engine", "expected 'wrapt' or 'monitoring'")
    interp = doc["interpreter"]
    _object(interp, "interpreter", {"implementation", "version", "mode"}, {"implementation", "version", "mode"})
    _str(interp["implementation"], "interpreter.implementation", 32)
    _str(interp["version"], "interpreter.version", 32)
    if type(interp["mode"]) is not str or interp["mode"] not in _MODES:
        _fail("interpreter.mode", f"expected one of {sorted(_MODES)}")
    _validate_platform(doc["platform"])
    package = doc["package"]
    _object(package, "package", {"name", "version"}, {"name", "version"})
    _str(package["name"], "package.name", 128)
    _str(package["version"], "package.version", 64, nullable=True)
    packages = doc["packages"]
    if type(packages) is not dict:
        _fail("packages", "expected an object")
    if len(packages) > 2000:
        _fail("packages", "more than 2000 entries")
    for name, version in packages.items():
        if len(name) > 128:
            _fail("packages", "a name is longer than 128 characters")
        _str(version, f"packages[{name[:40]!r}]", 64)
    stats = doc["stats"]
    if type(stats) is not dict:
        _fail("stats", "expected an object")
    if len(stats) > 20000:
        _fail("stats", "more than 20000 entries")
    for key, count in stats.items():
        if len(key) > 512:
            _fail("stats", "a key is longer than 512 characters")
        if not (_int(count) and count >= 1):
            _fail(f"stats[{key[:40]!r}]", "expected an integer >= 1")
    level2 = doc["level2"]
    if level2 is not None:
        _object(level2, "level2", _LEVEL2, _LEVEL2)
        for name in sorted(_LEVEL2):
            value = level2[name]
            if value is not None and (type(value) is not str or not _HEX64.fullmatch(value)):
                _fail(f"level2.{name}", "expected null or 64 lowercase hex digits")


def _validate_platform(plat):
    _object(plat, "platform", _PLATFORM, _PLATFORM)
    _str(plat["os"], "platform.os", 64)
    _str(plat["release"], "platform.release", 128)
    _str(plat["machine"], "platform.machine", 64)
    _str(plat["cpu_model"], "platform.cpu_model", 128, nullable=True)
    _str(plat["ci_vendor"], "platform.ci_vendor", 64, nullable=True)
    count = plat["cpu_count"]
    if count is not None and not (_int(count) and 1 <= count <= 100000):
        _fail("platform.cpu_count", "expected null or an integer from 1 to 100000")
    memory = plat["memory_mib"]
    if memory is not None and not (_int(memory) and memory >= 1):
        _fail("platform.memory_mib", "expected null or an integer >= 1")
    for flag in ("container", "ci", "wsl"):
        if type(plat[flag]) is not bool:
            _fail(f"platform.{flag}", "expected true or false")


def validate_v1(doc):
    """Raise Rejected(422) unless ``doc`` satisfies report schema v1."""
    try:
        _validate(doc)
    except _Invalid as exc:
        raise Rejected(422, "schema_violation", str(exc)) from None


def _storable(text, where):
    # JSON allows lone surrogates and NUL, which PostgreSQL text (and UTF-8) cannot hold.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Rejected(422, "unstorable_string", f"{where}: lone surrogate in a string") from None
    if "\x00" in text:
        raise Rejected(422, "unstorable_string", f"{where}: NUL in a string")
    return text


def _python_key(implementation, version):
    minor = ".".join(str(version).split(".")[:2])
    return f"{implementation} {minor}".strip()[:48] or "unknown"


def facts_v1(doc):
    """The Facts of a validated v1 report."""
    level2 = doc["level2"] or {}
    user = level2.get("user") or level2.get("machine") or level2.get("home") or level2.get("host")
    stats = {}
    for key, count in doc["stats"].items():
        stats[_storable(key, "stats")] = int(count)
    interp, plat = doc["interpreter"], doc["platform"]
    return Facts(
        project_id=doc["project_id"], report_id=doc["report_id"], user=user,
        version=_storable(doc["package"]["version"] or "unknown", "package.version"),
        python=_storable(_python_key(interp["implementation"], interp["version"]), "interpreter"),
        os=_storable(plat["os"] or "unknown", "platform.os"),
        arch=_storable(plat["machine"] or "unknown", "platform.machine"),
        stats=stats,
    )


# --- the original Telly v1.0 format -------------------------------------------------------
def _v10_str(container, key, limit):
    value = container.get(key) if type(container) is dict else None
    if type(value) is not str or not value:
        return None
    return value[:limit]


def facts_v10(doc):
    """One Facts per project id named in an original Telly v1.0 payload (see research §2)."""
    if type(doc) is not dict or doc.get("api_version", "v1.0") != "v1.0":
        raise Rejected(422, "schema_violation", "expected an object with api_version 'v1.0'")
    ids = doc.get("client_id")
    if type(ids) is str:
        ids = [part for part in ids.split(";") if part]
    if type(ids) is not list or not ids or len(ids) > 16:
        raise Rejected(422, "schema_violation", "client_id: expected a list of 1 to 16 project ids")
    for project_id in ids:
        if type(project_id) is not str or len(project_id) > 128 or not _PROJECT_ID.fullmatch(project_id):
            raise Rejected(422, "schema_violation", "client_id: a project id is malformed")
    stats = doc.get("stats")
    if type(stats) is not dict or len(stats) > 20000:
        raise Rejected(422, "schema_violation", "stats: expected an object of at most 20000 counts")
    clean = {}
    for key, count in stats.items():
        if len(key) > 512 or not _int(count) or count < 0:
            raise Rejected(422, "schema_violation", "stats: keys up to 512 characters, counts >= 0")
        if count:
            clean[_storable(key, "stats")] = int(count)
    client, plat = doc.get("client"), doc.get("platform")
    # Level II sits inside "platform"; hashed unless the sender turned hashing off, and re-keyed
    # (so never stored as sent) either way.
    user = _v10_str(plat, "user_name", 256) or _v10_str(plat, "machine_id", 256)
    common = dict(
        user=user,
        version="unknown",  # v1.0 has no "own package" field, only every imported module's version
        python=_storable(_python_key(_v10_str(client, "language_implementation", 24) or "",
                                     _v10_str(client, "language_version", 16) or ""), "client"),
        os=_storable(_v10_str(plat, "os_name", 64) or "unknown", "platform.os_name"),
        arch=_storable(_v10_str(plat, "architecture", 64) or "unknown", "platform.architecture"),
        stats=clean,
    )
    # The original client has no report id and never retries a delivered body: nothing to dedupe.
    return [Facts(project_id=pid, report_id=uuid.uuid4().hex, **common) for pid in dict.fromkeys(ids)]


# --- endpoints ----------------------------------------------------------------------------
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
                await exc.send(send)
                return
            except Exception as exc:  # a bug must not turn a client's input into a 5xx; say what kind
                _log.warning("report refused after an internal error: %s", type(exc).__name__)
                await Rejected(422, "unprocessable",
                               f"the report could not be processed ({type(exc).__name__})").send(send)
                return
        await _respond(send, status, payload)

    # Raw ASGI endpoints: ingestion is the hot path, so it skips the framework's request objects.
    async def v1(self, scope, receive, send):
        await self._handle(scope, receive, send, self._accept_v1)

    async def v10(self, scope, receive, send):
        await self._handle(scope, receive, send, self._accept_v10)

    async def _accept_v1(self, body):
        doc = _parse_json(body)
        project_id = doc.get("project_id") if type(doc) is dict else None
        if type(project_id) is not str or len(project_id) > 128 or not _PROJECT_ID.fullmatch(project_id):
            raise Rejected(422, "schema_violation", "project_id: missing or malformed")
        await self._admit(project_id)
        validate_v1(doc)
        facts = facts_v1(doc)
        await self._store([facts])
        return 200, {"accepted": 1, "report_id": facts.report_id}

    async def _accept_v10(self, body):
        admitted, refusal = [], None
        for facts in facts_v10(_parse_json(body)):
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
