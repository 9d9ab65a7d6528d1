"""The schedule: completed days are released once, today only on request, old days expire."""

import datetime
import json

import pytest

from telly_autoinst_collector import jobs
from telly_autoinst_collector.registry import create_project

TODAY = datetime.date(2026, 11, 10)


def _insert(store, project_id, day, n=3):
    store.insert_reports([{"project_id": project_id, "report_id": f"{day.toordinal():08x}{i:024x}", "day": day,
                           "uid": f"u{i}", "version": "1.0", "python": "CPython 3.11", "os": "Linux",
                           "arch": "x86_64", "stats": json.dumps({"m.f": 1})} for i in range(n)])


def test_publish_releases_completed_days_once_and_today_only_on_request(store):
    project_id, _ = create_project(store, "demo", "us")
    yesterday = TODAY - datetime.timedelta(days=1)
    _insert(store, project_id, yesterday)
    _insert(store, project_id, TODAY)
    first = jobs.publish(store, [project_id], TODAY)
    assert [(p, d) for p, d, _ in first] == [(project_id, yesterday)]
    assert jobs.publish(store, [project_id], TODAY) == []  # already released complete
    partial = jobs.publish(store, [project_id], TODAY, through_now=True)
    ((_, day, epsilon),) = partial
    assert day == TODAY and 0.999 < epsilon <= 1.0  # OpenDP's map of the release, at most the day's ε
    assert store.release_summary(project_id)[TODAY] == (pytest.approx(epsilon), False)
    # Once today is over, it is released again as a complete day, and both releases are accounted.
    tomorrow = TODAY + datetime.timedelta(days=1)
    assert [d for _, d, _ in jobs.publish(store, [project_id], tomorrow)] == [TODAY]
    assert store.release_summary(project_id)[TODAY] == (pytest.approx(2 * epsilon), True)


def test_maintain_serves_only_its_region(store):
    us, _ = create_project(store, "us project", "us")
    eu, _ = create_project(store, "eu project", "eu")
    day = TODAY - datetime.timedelta(days=1)
    _insert(store, us, day)
    _insert(store, eu, day)
    published = jobs.maintain(store, "us", TODAY, window_days=30)
    assert [p for p, _, _ in published] == [us]
    assert store.release_summary(eu) == {}
