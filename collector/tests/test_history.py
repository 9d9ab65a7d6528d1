"""Importing past reports: validated as ingestion does, stored on their day, released days refused."""

import datetime
import json

import pytest

from collector.tests.support import make_report
from telly_autoinst.errors import ConfigError
from telly_autoinst_collector import jobs
from telly_autoinst_collector.history import import_reports
from telly_autoinst_collector.registry import create_project

TODAY = datetime.date(2026, 11, 10)
DAYS = [TODAY - datetime.timedelta(days=n) for n in (3, 2)]


def _lines(project_id, day, users, **changes):
    return [json.dumps({"day": day.isoformat(), "report": make_report(project_id, user=u, **changes)}) for u in users]


def test_reports_are_stored_on_their_day_once_and_released_as_usual(store):
    project_id, _ = create_project(store, "demo", "us", epsilon_per_day=1e6)
    project = store.project(project_id)
    lines = _lines(project_id, DAYS[0], "abc") + _lines(project_id, DAYS[1], "ab")
    lines.append(lines[0])  # the same report id twice: stored once
    lines += _lines(project_id, DAYS[1], [None], level2=None)  # no Level II: not stored, as at ingestion
    assert import_reports(store, project, lines, TODAY) == {DAYS[0]: 3, DAYS[1]: 2}
    assert import_reports(store, project, lines[:1], TODAY) == {}  # stored before: stored once
    assert store.raw_days(project_id) == DAYS and store.key_days(project_id) == DAYS
    published = jobs.publish(store, [project_id], TODAY)
    assert [day for _, day, _ in published] == DAYS + [("week", datetime.date(2026, 11, 2))]
    dau = {day: value for day, metric, _, value, _ in store.published_cells(project_id, DAYS[0], DAYS[1])
           if metric == "dau"}
    assert dau == {DAYS[0]: 3, DAYS[1]: 2}
    # A released day takes no more reports, and the refused file stores nothing at all.
    late = _lines(project_id, DAYS[0] - datetime.timedelta(days=7), "z") + _lines(project_id, DAYS[1], "d")
    with pytest.raises(ConfigError, match="line 2: .* is released already"):
        import_reports(store, project, late, TODAY)
    assert store.raw_days(project_id) == DAYS
    # The window applies as usual: old imported days are released, then their rows and keys go.
    jobs.expire(store, [project_id], TODAY, window_days=1)
    assert store.raw_days(project_id) == [] and store.key_days(project_id) == []


@pytest.mark.parametrize("line, message", [
    ("not json", "line 1: expected"),
    (json.dumps({"day": "2026-13-01", "report": {}}), "line 1: expected"),
    (json.dumps({"day": TODAY.isoformat(), "report": {}}), "not a day before today"),
    (json.dumps({"day": "2026-11-01", "report": {"schema_version": 1}}), "refused as ingestion would"),
])
def test_a_bad_line_refuses_the_file_and_says_which(store, line, message):
    project_id, _ = create_project(store, "demo", "us")
    good = _lines(project_id, DAYS[0], "a")
    with pytest.raises(ConfigError, match=message):
        import_reports(store, store.project(project_id), [line] + good, TODAY)
    assert store.raw_days(project_id) == []


def test_a_report_of_another_project_is_refused(store):
    project_id, _ = create_project(store, "demo", "us")
    with pytest.raises(ConfigError, match="not 'us-"):
        import_reports(store, store.project(project_id), _lines("someone-else", DAYS[0], "a"), TODAY)


def test_a_day_only_its_week_covers_is_refused_too(store):
    from telly_autoinst_collector import privacy

    project_id, _ = create_project(store, "demo", "us")
    project = store.project(project_id)
    monday = datetime.date(2026, 10, 26)
    import_reports(store, project, _lines(project_id, monday, "ab"), TODAY)
    privacy.release(store, project, "week", monday)  # the week, before any of its days' own releases
    sunday = monday + datetime.timedelta(days=6)
    with pytest.raises(ConfigError, match=f"{sunday} is released already"):
        import_reports(store, project, _lines(project_id, sunday, "c"), TODAY)
