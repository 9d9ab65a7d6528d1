"""Turns one project's counts into a report payload (config/report.schema.json, version 1) and its bytes.

Two steps, so that the host's exit can stop after the first: ``pipeline.capture`` takes what
only the counting process knows, :func:`assemble` adds what any process of this user on this
machine computes alike (Level I facts, Level II hashes). The host runs both when it builds the
report itself (TELLY_SHOW_ME, ``http`` and ``file`` storage, ``show``); with the default storage
the detached sender runs the second. This module never imports the pipeline (which imports it
for those cases).
"""

import time

from . import facts
from ._jsontext import dumps

# Bump together with config/report.schema.json and the collector's ingest.
SCHEMA_VERSION = 1

_NONE = type(None)
# What capture() writes, by key: the types assemble() accepts (a spool entry may be damaged).
_CAPTURED = {
    "report_id": (str,),
    "project_id": (str,),
    "distribution": (str, _NONE),
    "level2": (bool,),
    "level2_plaintext": (bool,),
    "plaintext_accepted": (bool,),
    "salt_type": (str,),
    "engine": (str,),
    "client_version": (str,),
    "trigger": (str,),
    "exit_signal": (int, _NONE),
    "created_at": (int, float),
    "interpreter": (dict,),
    "stats": (dict,),
}


def _check(captured):
    """ValueError unless ``captured`` has the shape capture() gives it."""
    if not isinstance(captured, dict):
        raise ValueError("captured data is not a dict")
    for key, types in _CAPTURED.items():
        value = captured.get(key, ...)
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise ValueError(f"captured {key} is missing or not {'/'.join(t.__name__ for t in types)}")
    for key, value in captured["interpreter"].items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError("captured interpreter facts are not strings")
    for key, count in captured["stats"].items():
        if not isinstance(key, str) or not isinstance(count, int) or isinstance(count, bool):
            raise ValueError("captured stats are not counts")


def assemble(captured):
    """The report dict from ``pipeline.capture``'s data; raises ValueError when that data is malformed."""
    _check(captured)
    distribution = captured["distribution"]
    own_version, dependencies = facts.distribution_versions(distribution)
    level2 = None
    extra = {}
    if captured["level2"]:
        from . import identity

        level2 = identity.level2_hashes(captured["project_id"], captured["salt_type"])
        if captured["level2_plaintext"] and captured["plaintext_accepted"]:
            # Absent otherwise (not null): every other report keeps exactly its previous bytes.
            extra["level2_plaintext"] = identity.level2_plaintext()
    return {
        "schema_version": SCHEMA_VERSION,
        "report_id": captured["report_id"],
        "project_id": captured["project_id"],
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(captured["created_at"])),
        "trigger": captured["trigger"],
        "exit_signal": captured["exit_signal"],
        "client": {"name": "telly_autoinst", "version": captured["client_version"], "engine": captured["engine"]},
        "interpreter": dict(captured["interpreter"]),
        "platform": dict(facts.platform_facts()),
        "package": {"name": (distribution or "unknown")[:128], "version": own_version},
        "packages": dependencies,
        "stats": {key: count for key, count in sorted(captured["stats"].items()) if count > 0},
        "level2": level2,
        **extra,
    }


# What the collector keeps of a report (see ``Contribution`` in the collector's ingest): the
# project, the Level II user, the package version, the interpreter and the platform, and the
# counts, which it sums per user and UTC day before anything is published. Reports of one user
# that agree on everything captured but their id, time and counts are therefore published
# alike whether they arrive one by one or summed into one; the sender merges those.
_PER_RUN = ("report_id", "created_at", "stats")


def merge_key(captured):
    """What must agree for captured data to be merged with another's, or None when it must go alone.

    Only Level II reports merge: a report without a Level II id is its own user at the collector,
    so two of them summed would count one user instead of two. Malformed data goes alone (the
    sender records it as it builds).
    """
    try:
        _check(captured)
    except ValueError:
        return None
    if not captured["level2"]:
        return None
    fixed = tuple(sorted((key, ascii(value)) for key, value in captured.items() if key not in _PER_RUN))
    return fixed + (time.strftime("%Y-%m-%d", time.gmtime(captured["created_at"])),)


def merge(captureds):
    """One captured dict from several with one :func:`merge_key`: counts summed, the first's id, the last time."""
    merged = dict(captureds[0])
    stats: dict = {}
    for captured in captureds:
        for key, count in captured["stats"].items():
            stats[key] = stats.get(key, 0) + count
    merged["stats"] = stats
    merged["created_at"] = max(captured["created_at"] for captured in captureds)
    return merged


def encode(report):
    """The exact bytes sent and shown by TELLY_SHOW_ME: pretty, key-sorted, ASCII-only JSON."""
    # _jsontext writes what json.dumps(report, indent=2, sort_keys=True) would, without importing json.
    return dumps(report, sort_keys=True, indent=2).encode("ascii") + b"\n"
