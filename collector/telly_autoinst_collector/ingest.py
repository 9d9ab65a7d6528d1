"""Validating payloads: report schema v1 and the original Telly v1.0 format, down to what is kept of each.

Validation of schema v1 is written out by hand, mirroring config/report.schema.json line by line,
because it runs for every report and the generic validator costs more than the rest of the
request; collector/tests/test_ingest.py checks it agrees with ``jsonschema``. Every refusal is a
``Rejected`` carrying the 4xx status and error code the client will see (receive.py sends it).
"""

import json
import re
import uuid
from typing import NamedTuple, Optional

from .privacy import FEATURES_PER_REPORT
from .store import level2_plaintext, raw_reports

# privacy.py is the one place that says how many features a user-day counts, and so how many of a
# report's are worth storing.
_MAX_FEATURES = FEATURES_PER_REPORT
_MAX_COUNT = 2 ** 31


class Rejected(Exception):
    """A request the collector refuses, with the status and error code the client will see."""

    def __init__(self, status, code, detail, headers=None):
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers


class Contribution(NamedTuple):
    """What is kept of one report for one project: its contribution to the published counts, no more.

    (The client's ``facts`` module is something else: what a report says about the machine.)
    """

    project_id: str
    report_id: str
    user: Optional[str]  # the client's Level II hash (or v1.0 value); re-keyed before storage
    version: str
    python: str
    os: str
    arch: str
    stats: dict
    # Plaintext Level II ({user, home, machine, host}) as sent; receive.py keeps it only for a
    # project created with --level2-plaintext (see keep_plaintext) and drops it for every other.
    plaintext: Optional[dict] = None


def parse_json(body):
    """The JSON document of a UTF-8 body (json.loads alone would also take UTF-16 and UTF-32)."""
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        # ValueError covers bad UTF-8, bad JSON and integers longer than Python's digit limit.
        raise Rejected(400, "malformed_json", f"body is not UTF-8 JSON: {str(exc)[:200]}") from None


# --- schema v1 ----------------------------------------------------------------------------
_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_PROJECT_ID = re.compile(r"[A-Za-z0-9._:-]+")
_TOP = {"schema_version", "report_id", "project_id", "created_at", "trigger", "exit_signal", "client",
        "interpreter", "platform", "package", "packages", "stats", "level2", "level2_plaintext"}
_TOP_REQUIRED = _TOP - {"exit_signal", "level2_plaintext"}
_TRIGGERS = {"exit", "signal", "timer", "fork", "manual"}
_MODES = {"script", "module", "command", "repl", "jupyter", "unknown"}
_LEVEL2 = {"user", "home", "machine", "host"}
# Every kept string is checked against the width of its column, at the length it is stored with:
# folding can lengthen a name ("İ".lower() is two characters), so the schema's limits on what is
# sent do not bound what is stored.
PLAINTEXT_LIMITS = {name: level2_plaintext.c[name].type.length for name in sorted(_LEVEL2)}
_STORED = {name: raw_reports.c[name].type.length for name in ("version", "python", "os", "arch")}
# Both clients speak schema v1: the Python client and the Node client (node/, npm telly-autoinst).
_CLIENTS = {"telly_autoinst", "telly-autoinst-node"}
_ENGINES = {"rewrite", "wrapt", "monitoring", "cjs", "esm", "cjs+esm"}
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



def _bounded_map(value, path, max_entries, max_key, key_word):
    """An object with at most ``max_entries`` keys of at most ``max_key`` characters."""
    if type(value) is not dict:
        _fail(path, "expected an object")
    if len(value) > max_entries:
        _fail(path, f"more than {max_entries} entries")
    for key in value:
        if len(key) > max_key:
            _fail(path, f"{key_word} is longer than {max_key} characters")
    return value

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
    if type(client["name"]) is not str or client["name"] not in _CLIENTS:
        _fail("client.name", f"expected one of {sorted(_CLIENTS)}")
    _str(client["version"], "client.version", 64)
    if type(client["engine"]) is not str or client["engine"] not in _ENGINES:
        _fail("client.engine", f"expected one of {sorted(_ENGINES)}")
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
    packages = _bounded_map(doc["packages"], "packages", 2000, 128, "a name")
    for name, version in packages.items():
        _str(version, f"packages[{name[:40]!r}]", 64)
    stats = _bounded_map(doc["stats"], "stats", 20000, 512, "a key")
    for key, count in stats.items():
        if not (_int(count) and count >= 1):
            _fail(f"stats[{key[:40]!r}]", "expected an integer >= 1")
    level2 = doc["level2"]
    if level2 is not None:
        _object(level2, "level2", _LEVEL2, _LEVEL2)
        for name in sorted(_LEVEL2):
            value = level2[name]
            if value is not None and (type(value) is not str or not _HEX64.fullmatch(value)):
                _fail(f"level2.{name}", "expected null or 64 lowercase hex digits")
    if "level2_plaintext" in doc:
        plaintext = doc["level2_plaintext"]
        _object(plaintext, "level2_plaintext", _LEVEL2, _LEVEL2)
        for name in sorted(_LEVEL2):
            _str(plaintext[name], f"level2_plaintext.{name}", PLAINTEXT_LIMITS[name], nullable=True)
        if type(level2) is not dict:
            _fail("level2", "must be an object when level2_plaintext is sent (the hashes go with it)")


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


def project_id_ok(project_id):
    """Whether ``project_id`` is one that reports can name: the rule of ingestion and of registration."""
    return type(project_id) is str and len(project_id) <= 128 and _PROJECT_ID.fullmatch(project_id) is not None


def project_id_of(doc):
    """The project id of a v1 report, checked first: the project decides whether to read further."""
    if not project_id_ok(doc.get("project_id") if type(doc) is dict else None):
        raise Rejected(422, "schema_violation", "project_id: missing or malformed")
    return doc["project_id"]


def validate_v1(doc):
    """Raise Rejected(422) unless ``doc`` satisfies report schema v1."""
    try:
        _validate(doc)
    except _Invalid as exc:
        raise Rejected(422, "schema_violation", str(exc)) from None


def _storable(text, where, limit=None):
    """``text`` if it can be stored as it is: UTF-8 without NUL, and at most ``limit`` characters."""
    if limit is not None and len(text) > limit:
        raise Rejected(422, "unstorable_string",
                       f"{where}: {len(text)} characters once normalized, more than the {limit} stored")
    # JSON allows lone surrogates and NUL, which PostgreSQL text (and UTF-8) cannot hold.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Rejected(422, "unstorable_string", f"{where}: lone surrogate in a string") from None
    if "\x00" in text:
        raise Rejected(422, "unstorable_string", f"{where}: NUL in a string")
    return text


# --- one vocabulary ------------------------------------------------------------------------
# Clients spell the same platform differently: ours sends sys.implementation.name ("cpython") and
# platform.machine() ("AMD64" on Windows, "arm64" on macOS, "aarch64" on Linux); the original
# v1.0 client sends platform.python_implementation() ("CPython") and platform.processor() ("" on
# Linux, "Intel64 Family 6 ..." on Windows). Each name is folded to one spelling on ingest, so
# one platform is one group on the dashboard. Names not listed are kept, lower-cased.
_IMPLEMENTATIONS = {"cpython": "CPython", "pypy": "PyPy", "graalpy": "GraalPy", "graalpython": "GraalPy",
                    "jython": "Jython", "ironpython": "IronPython", "micropython": "MicroPython",
                    "circuitpython": "CircuitPython", "pyston": "Pyston"}
_OSES = {"linux": "Linux", "darwin": "macOS", "macos": "macOS", "mac os x": "macOS", "windows": "Windows",
         "win32": "Windows", "freebsd": "FreeBSD", "openbsd": "OpenBSD", "netbsd": "NetBSD",
         "sunos": "SunOS", "aix": "AIX", "emscripten": "Emscripten", "wasi": "WASI", "android": "Android",
         "ios": "iOS", "ipados": "iOS", "java": "Java"}
_ARCHES = {"x86_64": "x86_64", "amd64": "x86_64", "x64": "x86_64", "em64t": "x86_64", "intel64": "x86_64",
           "i386": "x86", "i486": "x86", "i586": "x86", "i686": "x86", "x86": "x86", "i86pc": "x86",
           "aarch64": "arm64", "arm64": "arm64", "armv8": "arm64", "armv8l": "arm64", "aarch64_be": "arm64",
           "armv7l": "armv7", "armv7": "armv7", "armv6l": "armv6", "arm": "arm",
           "ppc64le": "ppc64le", "ppc64": "ppc64", "s390x": "s390x", "riscv64": "riscv64"}


# The public vocabulary of platform names: what ingestion folds names to, and Python minor versions.
# These names say nothing about anyone, so they are released without a threshold; any other name a
# report carries still has to pass partition selection. (Node's "node 20.11" keys are left out: a
# fixed list of every Node minor would fill every Python project's table with noisy zeros.)
_PUBLIC_MINORS = {"CPython": [f"3.{m}" for m in range(6, 16)] + ["2.7"],
                  "PyPy": [f"3.{m}" for m in range(6, 13)] + ["2.7"], "GraalPy": [f"3.{m}" for m in range(8, 15)]}


def public_platforms():
    """{metric: frozenset of names} of Python, OS and architecture released whatever their count."""
    return {"python": frozenset(f"{name} {minor}" for name, minors in _PUBLIC_MINORS.items() for minor in minors),
            "os": frozenset(_OSES.values()), "arch": frozenset(_ARCHES.values())}


def _fold(value, names):
    key = " ".join(value.split()).lower()
    return names.get(key, key) or "unknown"


def normalize_os(name):
    if name.lower().startswith(("cygwin", "msys", "mingw")):
        return "Windows"
    return _fold(name, _OSES)


def normalize_arch(name):
    # Windows' platform.processor(): "Intel64 Family 6 Model 158 Stepping 10, GenuineIntel".
    first = name.strip().split(" ", 1)[0].rstrip(",")
    return _fold(first, _ARCHES) if first else "unknown"


def _python_key(implementation, version):
    minor = ".".join(str(version).split(".")[:2])
    name = _fold(implementation, _IMPLEMENTATIONS) if implementation.strip() else ""
    return f"{name} {minor}".strip()[:48] or "unknown"


def _bounded_stats(stats):
    """The counts a report can contribute: its ``_MAX_FEATURES`` most-called keys (ties by name).

    A user-day counts towards a few features only (privacy.py's contribution bound), so storing
    more per report only grows the window. Counts are capped at 2**31 for the same reason.
    """
    if len(stats) > _MAX_FEATURES:
        stats = dict(sorted(stats.items(), key=lambda kv: (-kv[1], kv[0]))[:_MAX_FEATURES])
    return {_storable(key, "stats"): min(int(count), _MAX_COUNT) for key, count in stats.items()}


# (implementation, version, os, machine) as sent -> (python, os, arch) as stored. Clients send few
# distinct combinations, so each is folded once; the cache is emptied if hostile input grows it.
_PLATFORM_NAMES: dict = {}


def _platform_names(implementation, python_version, os_name, machine):
    sent = (implementation, python_version, os_name, machine)
    names = _PLATFORM_NAMES.get(sent)
    if names is None:
        names = (_storable(_python_key(implementation, python_version), "interpreter", _STORED["python"]),
                 _storable(normalize_os(os_name), "platform.os", _STORED["os"]),
                 _storable(normalize_arch(machine), "platform.machine", _STORED["arch"]))
        if len(_PLATFORM_NAMES) >= 4096:
            _PLATFORM_NAMES.clear()
        _PLATFORM_NAMES[sent] = names
    return names


def contribution_v1(doc):
    """The Contribution of a validated v1 report."""
    level2 = doc["level2"] or {}
    interp, plat = doc["interpreter"], doc["platform"]
    return make_contribution(doc["project_id"], doc["report_id"],
                      level2.get("user") or level2.get("machine") or level2.get("home") or level2.get("host"),
                      doc["stats"], doc["package"]["version"], interp["implementation"], interp["version"],
                      plat["os"], plat["machine"], doc.get("level2_plaintext"))


def make_contribution(project_id, report_id, user, stats, version, implementation, python_version, os_name, machine,
                      plaintext=None):
    """The Contribution of a valid v1 report's fields (from either decoder: this module's or decode.py's)."""
    python, os_name, arch = _platform_names(implementation, python_version, os_name, machine)
    return Contribution(project_id, report_id, user,
                        _storable(version or "unknown", "package.version", _STORED["version"]),
                        python, os_name, arch, _bounded_stats(stats), plaintext)


def keep_plaintext(kept, agreed):
    """``kept`` as stored for its project: plaintext Level II only if the project ``agreed``.

    A project created without --level2-plaintext never stores it: it is dropped here, and the
    user is counted through the hashes sent beside it, re-keyed like any other report's.
    """
    if kept.plaintext is None:
        return kept
    if not agreed:
        return kept._replace(plaintext=None)
    return kept._replace(plaintext={
        name: None if value is None else _storable(value, f"level2_plaintext.{name}", PLAINTEXT_LIMITS[name])
        for name, value in kept.plaintext.items()})


# --- the original Telly v1.0 format -------------------------------------------------------
def _v10_str(container, key, limit):
    value = container.get(key) if type(container) is dict else None
    if type(value) is not str or not value:
        return None
    return value[:limit]


def contributions_v10(doc):
    """One Contribution per project id named in an original Telly v1.0 payload.

    docs/http-api.md, "Original Telly clients (v1.0)", says which of its fields are kept.
    """
    if type(doc) is not dict or doc.get("api_version", "v1.0") != "v1.0":
        raise Rejected(422, "schema_violation", "expected an object with api_version 'v1.0'")
    ids = doc.get("client_id")
    if type(ids) is str:
        ids = [part for part in ids.split(";") if part]
    if type(ids) is not list or not ids or len(ids) > 16:
        raise Rejected(422, "schema_violation", "client_id: expected a list of 1 to 16 project ids")
    for project_id in ids:
        if not project_id_ok(project_id):
            raise Rejected(422, "schema_violation", "client_id: a project id is malformed")
    stats = doc.get("stats")
    if type(stats) is not dict or len(stats) > 20000:
        raise Rejected(422, "schema_violation", "stats: expected an object of at most 20000 counts")
    called = {}
    for key, count in stats.items():
        if len(key) > 512 or not _int(count) or count < 0:
            raise Rejected(422, "schema_violation", "stats: keys up to 512 characters, counts >= 0")
        if count:
            called[key] = int(count)
    clean = _bounded_stats(called)
    client, plat = doc.get("client"), doc.get("platform")
    # Level II sits inside "platform"; hashed unless the sender turned hashing off, and re-keyed
    # (so never stored as sent) either way.
    user = _v10_str(plat, "user_name", 256) or _v10_str(plat, "machine_id", 256)
    common = dict(
        user=user,
        version="unknown",  # v1.0 has no "own package" field, only every imported module's version
        python=_storable(_python_key(_v10_str(client, "language_implementation", 24) or "",
                                     _v10_str(client, "language_version", 16) or ""), "client", _STORED["python"]),
        os=_storable(normalize_os(_v10_str(plat, "os_name", 64) or ""), "platform.os_name", _STORED["os"]),
        arch=_storable(normalize_arch(_v10_str(plat, "architecture", 64) or ""), "platform.architecture",
                       _STORED["arch"]),
        stats=clean,
    )
    # The original client has no report id and never retries a delivered body: nothing to dedupe.
    return [Contribution(project_id=pid, report_id=uuid.uuid4().hex, **common) for pid in dict.fromkeys(ids)]
