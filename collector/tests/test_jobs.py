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
    ((_, day, (epsilon, delta)),) = partial
    # The partial day's share of the user-day budget: well under the day's ε and δ.
    assert day == TODAY and 0 < epsilon < 0.5 and delta == pytest.approx(1e-7)
    assert store.release_summary(project_id)[TODAY][1] is False
    assert jobs.publish(store, [project_id], TODAY, through_now=True) == [(project_id, TODAY, None)]
    # Once today is over, it is released again as a complete day: both releases in one budget.
    tomorrow = TODAY + datetime.timedelta(days=1)
    ((_, day, (epsilon, delta)),) = jobs.publish(store, [project_id], tomorrow)
    assert day == TODAY and 0.99 < epsilon <= 1.0 and delta == pytest.approx(1e-6)
    assert store.release_summary(project_id)[TODAY][1] is True


def test_maintain_serves_only_its_region(store):
    us, _ = create_project(store, "us project", "us")
    eu, _ = create_project(store, "eu project", "eu")
    day = TODAY - datetime.timedelta(days=1)
    _insert(store, us, day)
    _insert(store, eu, day)
    published = jobs.maintain(store, "us", TODAY, window_days=30)
    assert [p for p, _, _ in published] == [us]
    assert store.release_summary(eu) == {}
