"""Turns one project's counts into a report payload (config/report.schema.json, version 1) and its bytes."""

import os
import time

from . import __version__, facts
from ._jsontext import dumps
from .engines import engine_name

# Bump together with config/report.schema.json and the collector's ingest.
SCHEMA_VERSION = 1


def _report_id():
    """A random UUID4 as 32 hex digits, without importing uuid on the exit path."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw.hex()


def build(project, stats, *, trigger, exit_signal=None, salt_type="random_uuid4", interpreter=None,
          plaintext_accepted=False):
    """The report dict for one project: Level I facts, its counts, and Level II hashes when allowed.

    ``interpreter`` may be captured earlier (at activation) because the run mode is only
    knowable while ``__main__`` is still intact. ``plaintext_accepted`` is the user's side of
    plaintext Level II (TELLY_LEVEL2_PLAINTEXT); with the author's ``level2_plaintext`` it adds
    ``level2_plaintext`` beside the hashes, which the collector keeps only if its project agreed too.
    """
    distribution = project.distribution or (project.packages[0] if project.packages else None)
    own_version, dependencies = facts.distribution_versions(distribution)
    level2 = None
    extra = {}
    if project.level2:
        from . import identity

        level2 = identity.level2_hashes(project.project_id, salt_type)
        if project.level2_plaintext and plaintext_accepted:
            # Absent otherwise (not null): every other report keeps exactly its previous bytes.
            extra["level2_plaintext"] = identity.level2_plaintext()
    return {
        "schema_version": SCHEMA_VERSION,
        "report_id": _report_id(),
        "project_id": project.project_id,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "trigger": trigger,
        "exit_signal": exit_signal,
        "client": {"name": "telly_autoinst", "version": __version__, "engine": engine_name(project.engine)},
        "interpreter": dict(interpreter or facts.interpreter()),
        "platform": dict(facts.platform_facts()),
        "package": {"name": (distribution or "unknown")[:128], "version": own_version},
        "packages": dependencies,
        "stats": {key: int(count) for key, count in sorted(stats.items()) if count > 0},
        "level2": level2,
        **extra,
    }


def encode(report):
    """The exact bytes sent and shown by TELLY_SHOW_ME: pretty, key-sorted, ASCII-only JSON."""
    # _jsontext writes what json.dumps(report, indent=2, sort_keys=True) would, without importing json.
    return dumps(report, sort_keys=True, indent=2).encode("ascii") + b"\n"
