"""Past reports imported by the operator: each validated as ingestion does and stored on its own day.

For migrations from another collector, and for tests and benchmarks that need many days at once.
A day that any release already covers is refused (its published numbers would no longer describe
what is stored); any older day is accepted, and from then on the rolling window applies as usual.
Rate limits do not apply: this is the operator, not a client.
"""

import datetime
import json
import secrets

from telly_autoinst.errors import ConfigError

from . import privacy
from .ingest import Rejected, contribution_v1, keep_plaintext, validate_v1
from .window import raw_row

_BATCH = 5000


def _line(number, text, project, today, released):
    """(day, kept report) of one JSON line; ConfigError says which line and why."""
    where = f"line {number}"
    try:
        entry = json.loads(text)
        day = datetime.date.fromisoformat(entry["day"])
        report = entry["report"]
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f'{where}: expected {{"day": "YYYY-MM-DD", "report": {{...}}}} ({exc})') from None
    if day >= today:
        raise ConfigError(f"{where}: {day} is not a day before today (UTC)")
    if day in released:
        raise ConfigError(f"{where}: {day} is released already; a released day cannot take more reports")
    try:
        validate_v1(report)
        kept = contribution_v1(report)
    except Rejected as exc:
        raise ConfigError(f"{where}: the report is refused as ingestion would: {exc.code}: {exc.detail}") from None
    if kept.project_id != project["project_id"]:
        raise ConfigError(f"{where}: the report is for project {kept.project_id!r}, not {project['project_id']!r}")
    return day, keep_plaintext(kept, project["level2_plaintext"])


def import_reports(store, project, lines, today):
    """Store the reports of ``lines`` (JSON lines); return {day: reports stored}, days in order.

    Every line is checked before anything is stored, so a refused file stores nothing. A report id
    stored before (or twice in the file) is stored once; a report without a Level II id is not
    stored, as at ingestion (window.py).
    """
    project_id = project["project_id"]
    released = set(privacy.releases_covering(store, project_id))  # any level: a day, its week or its block
    parsed = [_line(number, text, project, today, released)
              for number, text in enumerate(lines, 1) if text.strip()]
    seen = store.report_ids(project_id)
    keys, rows, stored = {}, [], {}
    for day, kept in parsed:
        if kept.user is None or kept.report_id in seen:
            continue
        seen.add(kept.report_id)
        if day not in keys:
            keys[day] = store.window_key(project_id, day, secrets.token_bytes(32))
        rows.append(raw_row(kept, day, keys[day]))
        stored[day] = stored.get(day, 0) + 1
    for start in range(0, len(rows), _BATCH):
        store.insert_reports(rows[start:start + _BATCH])
    return dict(sorted(stored.items()))
