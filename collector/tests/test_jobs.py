"""The schedule: completed days are released once, today only on request, old days expire."""

import datetime
import json

import pytest

from telly_autoinst_collector import jobs
from telly_autoinst_collector.privacy import LEVEL_SHARE, PARTIAL_SHARE
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
    # The partial day's share of the user-day budget (a new project is small): well under the day's ε and δ.
    assert day == TODAY and 0 < epsilon < 0.5 and delta == pytest.approx(PARTIAL_SHARE["small"] * 1e-6)
    assert store.release_summary(project_id)[TODAY][1] is False
    assert jobs.publish(store, [project_id], TODAY, through_now=True) == [(project_id, TODAY, None)]
    # Once today is over, it is released again as a complete day: both releases in one budget.
    tomorrow = TODAY + datetime.timedelta(days=1)
    ((_, day, (epsilon, delta)),) = jobs.publish(store, [project_id], tomorrow)
    assert day == TODAY and 0.2 < epsilon < 0.6 and delta == pytest.approx(LEVEL_SHARE["small"]["day"] * 1e-6)
    assert store.release_summary(project_id)[TODAY][1] is True


def test_publish_releases_each_week_and_block_once_it_is_complete_after_its_days(store):
    project_id, _ = create_project(store, "demo", "us")
    sunday = datetime.date(2026, 11, 1)  # the last day of an ISO week and of a 4-week block
    for back in range(10):
        _insert(store, project_id, sunday - datetime.timedelta(days=back))
    first = [d for _, d, _ in jobs.publish(store, [project_id], sunday)]
    # 9 days; the week that ended on the third is released before the fourth (it could change the profile).
    days = [sunday - datetime.timedelta(days=back) for back in range(9, 0, -1)]
    assert first == days[:3] + [("week", datetime.date(2026, 10, 19))] + days[3:]
    done = jobs.publish(store, [project_id], sunday + datetime.timedelta(days=1))
    labels = [d for _, d, _ in done]
    assert labels == [sunday, ("week", datetime.date(2026, 10, 26)), ("block", datetime.date(2026, 10, 5))]
    # Every day of the last week is in four releases that together spend its whole budget.
    (_, _, (epsilon, delta)), = [r for r in done if r[1] == ("block", datetime.date(2026, 10, 5))]
    assert 0.99 < epsilon <= 1.0 and delta == pytest.approx(1e-6)
    assert jobs.publish(store, [project_id], sunday + datetime.timedelta(days=2)) == []


def test_maintain_serves_only_its_region(store):
    us, _ = create_project(store, "us project", "us")
    eu, _ = create_project(store, "eu project", "eu")
    day = TODAY - datetime.timedelta(days=1)
    _insert(store, us, day)
    _insert(store, eu, day)
    published = jobs.maintain(store, "us", TODAY, window_days=30)
    assert [p for p, _, _ in published] == [us]
    assert store.release_summary(eu) == {}


def test_a_week_of_days_released_before_the_calendar_levels_is_left_alone_quietly(store):
    project_id, _ = create_project(store, "demo", "us")
    sunday = datetime.date(2026, 11, 1)
    _insert(store, project_id, sunday)
    # A complete release of the day from before the levels: the whole budget, no level recorded.
    store.record_release(project_id, sunday, 1.0, True, [{"metric": "dau", "key": "", "value": 3, "scale": 20.0}],
                         delta=1e-6, detail={"noise": "gaussian", "rho": 1.0})
    assert jobs.publish(store, [project_id], sunday + datetime.timedelta(days=1)) == []
    assert store.period_releases(project_id) == []


@pytest.mark.parametrize("declared", [None, "small"])
def test_a_block_of_enough_daily_users_makes_the_next_days_large_unless_declared(store, monkeypatch, declared):
    from telly_autoinst_collector import privacy

    monkeypatch.setattr(privacy, "LARGE_DAILY_USERS", 2)  # 3 users a day are "large" here
    project_id, _ = create_project(store, "demo", "us", epsilon_per_day=1e6, profile=declared)
    first, last = privacy.period("block", TODAY)
    after = last + datetime.timedelta(days=1)
    for n in range(29):
        _insert(store, project_id, first + datetime.timedelta(days=n))
    # All at once, as `publish --through` does after an import: the block before the day after it.
    labels = [d for _, d, _ in jobs.publish(store, [project_id], after + datetime.timedelta(days=1))]
    assert labels.index(("block", first)) < labels.index(after)
    project = store.project(project_id)
    profiles = {day: releases[-1]["detail"]["profile"] for day, releases in store.releases_by_day(project_id).items()}
    if declared:
        assert (project["profile"], project["profile_declared"]) == ("small", True)
        assert set(profiles.values()) == {"small"}
    else:
        assert (project["profile"], project["profile_declared"]) == ("large", False)
        assert profiles[last] == "small" and profiles[after] == "large"
        assert ("users", "m.f") not in {c[1:3] for c in store.published_cells(project_id, last, last)}
