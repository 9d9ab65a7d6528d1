"""The hot path's decoder: a schema v1 report parsed and validated in one pass by msgspec.

json.loads followed by ingest.py's hand-written validator took about half of a report's CPU
time. msgspec does both in C. It is only a fast path: it accepts a subset of what the schema
accepts (it is stricter about integers, for example, refusing ``3.0``), and whatever it refuses
goes the long way through ingest.py, which decides with its exact error message. So a report is
accepted exactly when ingest.py accepts it; collector/tests/test_decode.py checks the subset.
"""

from typing import Annotated, Literal, Optional, Union

import msgspec

from .ingest import PLAINTEXT_LIMITS, make_contribution


def _text(limit, pattern=None):
    # \Z, not $: Python's $ also matches before a final newline, which JSON Schema's does not.
    return Annotated[str, msgspec.Meta(max_length=limit, pattern=pattern)]


_Hex64 = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}\Z")]


class _Client(msgspec.Struct, forbid_unknown_fields=True):
    name: Literal["telly_autoinst", "telly-autoinst-node"]
    version: _text(64)  # type: ignore[valid-type]
    engine: Literal["rewrite", "wrapt", "monitoring", "cjs", "esm", "cjs+esm"]


class _Interpreter(msgspec.Struct, forbid_unknown_fields=True):
    implementation: _text(32)  # type: ignore[valid-type]
    version: _text(32)  # type: ignore[valid-type]
    mode: Literal["script", "module", "command", "repl", "jupyter", "unknown"]


class _Platform(msgspec.Struct, forbid_unknown_fields=True):
    os: _text(64)  # type: ignore[valid-type]
    release: _text(128)  # type: ignore[valid-type]
    machine: _text(64)  # type: ignore[valid-type]
    cpu_model: Optional[_text(128)]  # type: ignore[valid-type]
    cpu_count: Optional[Annotated[int, msgspec.Meta(ge=1, le=100000)]]
    memory_mib: Optional[Annotated[int, msgspec.Meta(ge=1)]]
    container: bool
    ci: bool
    ci_vendor: Optional[_text(64)]  # type: ignore[valid-type]
    wsl: bool


class _Package(msgspec.Struct, forbid_unknown_fields=True):
    name: _text(128)  # type: ignore[valid-type]
    version: Optional[_text(64)]  # type: ignore[valid-type]


class _Level2(msgspec.Struct, forbid_unknown_fields=True):
    user: Optional[_Hex64]
    home: Optional[_Hex64]
    machine: Optional[_Hex64]
    host: Optional[_Hex64]


class _Plaintext(msgspec.Struct, forbid_unknown_fields=True):
    user: Optional[_text(PLAINTEXT_LIMITS["user"])]  # type: ignore[valid-type]
    home: Optional[_text(PLAINTEXT_LIMITS["home"])]  # type: ignore[valid-type]
    machine: Optional[_text(PLAINTEXT_LIMITS["machine"])]  # type: ignore[valid-type]
    host: Optional[_text(PLAINTEXT_LIMITS["host"])]  # type: ignore[valid-type]


class _Report(msgspec.Struct, forbid_unknown_fields=True):
    schema_version: Literal[1]
    report_id: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{32}\Z")]
    project_id: _text(128, r"^[A-Za-z0-9._:-]+\Z")  # type: ignore[valid-type]
    created_at: _text(40)  # type: ignore[valid-type]
    trigger: Literal["exit", "signal", "timer", "fork", "manual"]
    client: _Client
    interpreter: _Interpreter
    platform: _Platform
    package: _Package
    packages: Annotated[dict[_text(128), _text(64)], msgspec.Meta(max_length=2000)]  # type: ignore[valid-type]
    stats: Annotated[dict[_text(512), Annotated[int, msgspec.Meta(ge=1)]],  # type: ignore[valid-type]
                     msgspec.Meta(max_length=20000)]
    level2: Union[_Level2, None]
    exit_signal: Optional[Annotated[int, msgspec.Meta(ge=1, le=64)]] = None
    # UNSET, not None, when absent: an explicit null is invalid (the schema wants an object).
    level2_plaintext: Union[_Plaintext, msgspec.UnsetType] = msgspec.UNSET


_decoder = msgspec.json.Decoder(_Report)


def fast_contribution_v1(body):
    """The Contribution of ``body`` if msgspec reads it as a valid v1 report, else None (go the long way).

    Raises ingest.Rejected only for a valid report with a string that cannot be stored.
    """
    try:
        report = _decoder.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    level2, interp, plat = report.level2, report.interpreter, report.platform
    plaintext = None
    if report.level2_plaintext is not msgspec.UNSET:
        if level2 is None:
            return None  # the schema wants the hashes beside it: the long way says so
        plaintext = msgspec.structs.asdict(report.level2_plaintext)
    user = level2 and (level2.user or level2.machine or level2.home or level2.host)
    return make_contribution(report.project_id, report.report_id, user, report.stats, report.package.version,
                             interp.implementation, interp.version, plat.os, plat.machine, plaintext)
