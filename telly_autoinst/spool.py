"""The on-disk queue of reports waiting for the sender: one file per report, capped in count, bytes and age.

File format: one JSON header line (url, project_id, attempts, not_before), then the report
bytes exactly as built, so what leaves the machine is byte-for-byte what TELLY_SHOW_ME printed.
Names start with a zero-padded creation time, so sorting the names sorts oldest first.
"""

import json
import os
import time

__all__ = ["MAX_AGE_SEC", "MAX_BYTES", "MAX_FILES", "default_dir", "enforce_caps", "enqueue", "entries",
           "read", "rewrite"]

SUFFIX = ".report"
# A week of a busy laptop offline fits; beyond that old reports are worth less than the disk.
MAX_FILES = 500
MAX_BYTES = 8 << 20
MAX_AGE_SEC = 7 * 24 * 3600


def default_dir(spool_dir=None):
    """TELLY_SPOOL_DIR, else ``spool`` under the client's cache directory; None without a home."""
    if spool_dir:
        return spool_dir
    from .index import cache_dir

    base = cache_dir()
    return None if base is None else os.path.join(base, "spool")


def _write_atomic(path, data):
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    # The sender lists *.report only, so it never sees a half-written file.
    os.replace(tmp, path)


def enqueue(directory, url, project_id, body, report_id):
    """Store one report for the sender; returns the list of (name, project_id, reason) dropped to make room."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    header = {"url": url, "project_id": project_id, "attempts": 0, "not_before": 0}
    name = f"{time.time_ns():020d}-{report_id}{SUFFIX}"
    _write_atomic(os.path.join(directory, name), json.dumps(header).encode("utf-8") + b"\n" + body)
    return enforce_caps(directory, keep=name)


def entries(directory):
    """Names of queued reports, oldest first."""
    try:
        return sorted(n for n in os.listdir(directory) if n.endswith(SUFFIX))
    except OSError:
        return []


def read(directory, name):
    """(header, body) of one queued report; raises OSError or ValueError when it is gone or corrupt."""
    with open(os.path.join(directory, name), "rb") as handle:
        raw = handle.read()
    head, sep, body = raw.partition(b"\n")
    if not sep:
        raise ValueError("no header line")
    return json.loads(head), body


def rewrite(directory, name, header, body):
    """Replace a queued report's header (attempts, not_before) keeping its body."""
    _write_atomic(os.path.join(directory, name), json.dumps(header).encode("utf-8") + b"\n" + body)


def _project_of(directory, name):
    try:
        return read(directory, name)[0].get("project_id")
    except (OSError, ValueError):
        return None


def enforce_caps(directory, keep=None, now=None):
    """Drop the oldest reports until count, bytes and age are within the caps; returns what was dropped."""
    now = time.time() if now is None else now
    dropped = []
    sized = []
    for name in entries(directory):
        try:
            size = os.path.getsize(os.path.join(directory, name))
        except OSError:
            continue
        sized.append((name, size))
    total = sum(size for _, size in sized)
    count = len(sized)
    for name, size in sized:
        if name == keep:
            continue
        try:
            created = int(name.split("-", 1)[0]) / 1e9
        except ValueError:
            created = 0.0
        if now - created > MAX_AGE_SEC:
            reason = "spool-too-old"
        elif count > MAX_FILES:
            reason = "spool-full-count"
        elif total > MAX_BYTES:
            reason = "spool-full-bytes"
        else:
            continue
        project_id = _project_of(directory, name)
        try:
            os.unlink(os.path.join(directory, name))
        except OSError:
            continue
        count -= 1
        total -= size
        dropped.append((name, project_id, reason))
    return dropped
