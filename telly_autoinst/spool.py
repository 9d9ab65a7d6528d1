"""The on-disk queue of reports waiting for the sender, capped in count, bytes and age, with its log of losses.

Two kinds of entry, one file each, named ``<creation time in ns, 20 digits>-<report id><suffix>``
so that sorting the names sorts oldest first:

* ``*.report``: a built report. One JSON header line (url, project_id, attempts, not_before,
  and ``"optin": true`` for an opt-in project), then the report bytes exactly as built, so what
  leaves the machine is byte-for-byte what TELLY_SHOW_ME printed. Written by the Python and the
  Node clients; drained by either client's sender.
* ``*.counts``: the counts of one project and what only the host process knew about them
  (``pipeline.capture``), written at exit with the default storage (``pipeline.enqueue_counts``:
  the host's exit imports nothing of this module) so the host never builds a report: the line
  ``telly-counts 1``, then the Python literal (``ascii()``) of a dict with
  ``url`` (the collector's base URL), ``project_id``, ``optin`` and ``captured``. Only the Python
  sender claims these (the Node sender lists ``*.report`` only): it turns each into a
  ``*.report`` of the same name stem with ``report.assemble``, then sends that as any other.
  Before that it merges the entries the collector would publish alike into the oldest of them
  (``report.merge_key``), which then lists the others' names under ``merged`` (:func:`merge_counts`).

Files are written to a temporary name and renamed, with mode 0600 in a 0700 directory that
only this user owns and can write (``_statefile``: a spool anyone else can write is not used,
since an entry is turned into a report and sent). An entry is data, never authority: what it
says is checked again before anything is sent, and written to the log only escaped. The caps
count both kinds.

Every report that leaves the spool without being delivered (dropped by a cap, refused by the
collector, given up, corrupt, or opted out since it was queued) is recorded in ``losses.log``
next to the reports, with its reason.
"""

import collections
import os
import time

from . import _env
from ._contract import (
    FILE_COUNTS_MAGIC,
    FILE_NODE_COUNTS_SUFFIX,
    FILE_NODE_SPOOL_LOCK,
    FILE_NODE_SPOOL_STAMP,
    FILE_SPOOL_LOCK,
    FILE_SPOOL_STAMP,
    LOCK_STALE_SUFFIX,
)
from ._contract import FILE_COUNTS_SUFFIX as COUNTS_SUFFIX
from ._contract import FILE_LOSS_LOG as _LOSS_LOG
from ._contract import FILE_REPORT_SUFFIX as SUFFIX
from ._contract import SPOOL_LOSS_LOG_MAX_BYTES as _LOSS_LOG_MAX
from ._contract import SPOOL_MAX_AGE_SEC as MAX_AGE_SEC
from ._contract import SPOOL_MAX_BYTES as MAX_BYTES
from ._contract import SPOOL_MAX_FILES as MAX_FILES
from ._statefile import SELF, append, dir_refusal, private_dir, read_bytes, write_atomic
from ._statefile import try_lock as _try_lock

# The names, caps and the losses log are the shared contract's (the Node client writes the same
# spool). The Python sender's lock is a flock on FILE_SPOOL_LOCK; the Node sender has its own.
_COUNTS_MAGIC = FILE_COUNTS_MAGIC.encode("ascii")
_LOCK_NAME = FILE_SPOOL_LOCK
# Only the Python host reads the stamp (``pipeline.sender_ran_within``); its name is the
# contract's, so both clients' purge know it.
_STAMP_NAME = FILE_SPOOL_STAMP  # its mtime: when a sender last took the spool

# Recent losses in this process, for `flush()` callers and tests; bounded so it never grows.
LOSSES: "collections.deque[tuple[str, str | None]]" = collections.deque(maxlen=100)


def _field(value):
    """One field of a losses.log line: printable ASCII without spaces, anything else escaped.

    Project ids and reasons can come from spool entries, which are data: a newline there must
    not become a line of its own (the log may be read by scripts, or pasted into a shell).
    """
    text = str(value)[:256]
    if text.isascii() and text.isprintable() and " " not in text and "\\" not in text:
        return text
    return text.encode("unicode_escape").decode("ascii").replace(" ", "\\x20")


def record_loss(reason, project_id=None, spool_dir=None):
    """Remember that a report was lost and why: in memory, in the spool's losses.log, and on stderr with TELLY_DEBUG."""
    LOSSES.append((reason, project_id))
    _env.note(f"report for {_field(project_id)} lost: {_field(reason)}")
    if spool_dir:
        path = os.path.join(spool_dir, _LOSS_LOG)
        try:
            private_dir(spool_dir)
            append(path, f"{int(time.time())} {_field(reason)} {_field(project_id)}\n", _LOSS_LOG_MAX)
        except OSError:
            _env.swallowed(f"writing {path}")


def _header_line(header):
    from ._jsontext import dumps  # not on the host's default exit path, which writes counts only

    return dumps(header).encode("utf-8") + b"\n"


def enqueue(directory, url, project_id, body, report_id, optin=False, not_before=0):
    """Store one report for the sender; returns the entry's name (:func:`enforce_caps` makes room).

    ``optin``: the project sends only to users listed in ~/.telly_optin, which the sender checks
    again before sending. ``not_before``: a Retry-After the collector already asked for.
    """
    private_dir(directory)
    header = {"url": url, "project_id": project_id, "attempts": 0, "not_before": not_before}
    if optin:
        header["optin"] = True
    name = f"{time.time_ns():020d}-{report_id}{SUFFIX}"
    write_atomic(os.path.join(directory, name), _header_line(header) + body)
    return name


def owns(name):
    """Whether a file name in a spool directory is one either client writes there (for `purge`):
    a spool may be shared with the Node client (TELLY_SPOOL_DIR), whose host queues its own counts
    entries and whose sender keeps its own lock and start stamp and sets a stale lock aside as
    ``*.stale``."""
    return (name.endswith((SUFFIX, COUNTS_SUFFIX, FILE_NODE_COUNTS_SUFFIX, ".tmp", LOCK_STALE_SUFFIX))
            or name in (_LOSS_LOG, _LOCK_NAME, _STAMP_NAME, FILE_NODE_SPOOL_LOCK, FILE_NODE_SPOOL_STAMP))


def entries(directory):
    """Names of queued entries (reports and counts), oldest first; none in a directory that is refused."""
    if dir_refusal(directory) is not None:
        return []
    try:
        return sorted(n for n in os.listdir(directory) if n.endswith((SUFFIX, COUNTS_SUFFIX)))
    except OSError:
        return []


def is_counts(name):
    """Whether a queued entry holds counts (the sender builds its report) rather than a built report."""
    return name.endswith(COUNTS_SUFFIX)


def try_lock(directory):
    """An exclusive, non-blocking lock on the spool, held by the sender that drains it; None when taken."""
    return _try_lock(os.path.join(directory, _LOCK_NAME))


def stamp_sender(directory):
    """Record that a sender takes the spool now: the stamp file's mtime, which ``pipeline.sender_ran_within`` reads."""
    path = os.path.join(directory, _STAMP_NAME)
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o600)
        try:
            os.utime(fd if os.utime in os.supports_fd else path)
        finally:
            os.close(fd)
    except OSError:  # at worst the next host starts a sender of its own
        _env.swallowed(f"stamping {path}")


def read(directory, name):
    """(header, body) of one queued report; raises OSError or ValueError when it is gone or corrupt.

    A header that parses but is not what :func:`enqueue` writes (``[]``, ``null``, a URL that
    is no string) is corrupt too: the sender records it and moves on to the next report.
    """
    raw = read_bytes(os.path.join(directory, name), MAX_BYTES, owner=SELF)
    head, sep, body = raw.partition(b"\n")
    if not sep:
        raise ValueError("no header line")
    import json  # only readers (the sender, the CLI) parse: the host's exit path only writes

    header = json.loads(head)
    if not isinstance(header, dict):
        raise ValueError(f"header is a {type(header).__name__}, not an object")
    if not isinstance(header.get("url"), str) or not header["url"]:
        raise ValueError("header has no url")
    project_id = header.get("project_id")
    if project_id is not None and _project_id_problem(project_id):
        raise ValueError(f"header's project_id is not a project id: {_project_id_problem(project_id)}")
    for key in ("attempts", "not_before"):
        value = header.setdefault(key, 0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise ValueError(f"header's {key} is not a number")
    return header, body


def _project_id_problem(value):
    """What makes ``value`` no project id, or None: an entry is data, and one naming no project
    (a forged ``"evil\ncurl x | sh"``) is dropped as corrupt, never sent."""
    from .settings import project_id_problem  # only the sender and the CLI read entries back

    return project_id_problem(value)


def read_counts(directory, name):
    """The dict ``pipeline.enqueue_counts`` wrote; raises OSError when gone, ValueError when it is not that.

    Only the envelope is checked here; ``report.assemble`` checks ``captured`` as it builds.
    """
    raw = read_bytes(os.path.join(directory, name), MAX_BYTES, owner=SELF)
    if not raw.startswith(_COUNTS_MAGIC):
        raise ValueError("not a counts entry")
    import ast  # only the sender and the CLI read counts

    try:
        entry = ast.literal_eval(raw[len(_COUNTS_MAGIC):].decode("ascii"))
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError) as exc:
        raise ValueError(f"undecodable counts entry ({type(exc).__name__})") from None
    if not isinstance(entry, dict):
        raise ValueError(f"counts entry is a {type(entry).__name__}, not a dict")
    if not isinstance(entry.get("url"), str) or not entry["url"]:
        raise ValueError("counts entry has no url")
    if _project_id_problem(entry.get("project_id")) or not isinstance(entry.get("optin"), bool):
        raise ValueError("counts entry has no valid project_id or no optin flag")
    if not isinstance(entry.get("captured"), dict):
        raise ValueError("counts entry has no captured data")
    return entry


def merge_counts(directory, names, entry):
    """Replace the counts entries ``names`` (oldest first) by one holding ``entry``, under the first's name.

    The merged entry lists the others under ``"merged"`` before they are removed, so a sender
    stopped in between leaves nothing counted twice: the next one removes what is listed
    (:func:`forget_merged`) before it reads them.
    """
    first, rest = names[0], names[1:]
    entry = dict(entry, merged=list(rest))
    write_atomic(os.path.join(directory, first), _COUNTS_MAGIC + ascii(entry).encode("ascii"))
    forget_merged(directory, entry)


def forget_merged(directory, entry):
    """Remove what a merged counts entry lists as merged into it; returns the names removed."""
    removed = []
    merged = entry.get("merged")
    for name in merged if isinstance(merged, list) else ():
        if isinstance(name, str) and is_counts(name) and os.path.basename(name) == name:
            try:
                os.unlink(os.path.join(directory, name))
            except FileNotFoundError:
                continue
            removed.append(name)
    return removed


def replace_counts(directory, name, url, project_id, body, optin=False):
    """Swap a counts entry for the report built from it, under the same name stem; returns the report's name.

    Written before the counts entry is removed, so a sender killed in between leaves the report
    (the next sender removes the stale counts entry instead of building it again).
    """
    report_name = name[: -len(COUNTS_SUFFIX)] + SUFFIX
    path = os.path.join(directory, report_name)
    if not os.path.exists(path):
        header = {"url": url, "project_id": project_id, "attempts": 0, "not_before": 0}
        if optin:
            header["optin"] = True
        write_atomic(path, _header_line(header) + body)
    try:
        os.unlink(os.path.join(directory, name))
    except FileNotFoundError:  # another sender (no flock on this platform) swapped it meanwhile
        pass
    return report_name


def rewrite(directory, name, header, body):
    """Replace a queued report's header (attempts, not_before) keeping its body."""
    write_atomic(os.path.join(directory, name), _header_line(header) + body)


def _project_of(directory, name):
    try:
        if is_counts(name):
            return read_counts(directory, name)["project_id"]
        return read(directory, name)[0].get("project_id")
    except (OSError, ValueError):
        return None


def enforce_caps(directory, keep=None, now=None):
    """Drop the oldest entries until count, bytes and age are within the caps; returns what was dropped."""
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
