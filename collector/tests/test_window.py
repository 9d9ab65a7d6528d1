"""The rolling window: ids re-keyed per day on arrival, rows and keys deleted together at the end."""

import asyncio
import datetime
import hashlib
import json

from collector.tests.support import make_report
from telly_autoinst_collector import jobs
from telly_autoinst_collector.ingest import contribution_v1
from telly_autoinst_collector.registry import create_project
from telly_autoinst_collector.window import Window


def _rows(store, clock, reports):
    window = Window(store, now=clock)

    async def run():
        return [await window.row(contribution_v1(r)) for r in reports]

    rows = asyncio.run(run())
    store.insert_reports(rows)
    return rows


def test_same_user_same_day_links_but_never_across_days(store, clock):
    project_id, _ = create_project(store, "demo", "us")
    alice = make_report(project_id, user="alice")
    monday = _rows(store, clock, [alice, make_report(project_id, user="alice"), make_report(project_id, user="bob")])
    assert monday[0]["uid"] == monday[1]["uid"] != monday[2]["uid"]
    # The client's hash is never stored: the stored id is an HMAC under a server-side key.
    assert monday[0]["uid"] not in alice["level2"]["user"]
    clock.advance(days=1)
    (tuesday,) = _rows(store, clock, [make_report(project_id, user="alice")])
    assert tuesday["uid"] != monday[0]["uid"]


def test_reports_without_level2_belong_to_no_user_day_and_are_not_stored(store, clock):
    project_id, _ = create_project(store, "demo", "us")
    window = Window(store, now=clock)

    async def run():
        return [await window.row(contribution_v1(make_report(project_id, level2=None))) for _ in range(3)]

    # Each counted as a user of its own, one person's 3 reports would be 3 privacy units.
    assert asyncio.run(run()) == [None, None, None]
    assert store.key_days(project_id) == []  # not even the day's key was needed


def test_keys_are_per_project(store, clock):
    first, _ = create_project(store, "one", "us")
    second, _ = create_project(store, "two", "us")
    a, b = _rows(store, clock, [make_report(first, user="alice"), make_report(second, user="alice")])
    assert a["uid"] != b["uid"]


def test_after_the_window_only_aggregates_remain(store, clock):
    project_id, _ = create_project(store, "demo", "us", epsilon_per_day=1e6)
    start = clock().date()
    for _ in range(5):
        _rows(store, clock, [make_report(project_id, user=u, stats={"m.f": 2}) for u in ("a", "b", "c")])
        clock.advance(days=1)
    today = clock().date()
    assert store.raw_days(project_id) == [start + datetime.timedelta(days=d) for d in range(5)]
    # The window is 3 days: days before today-3 lose their raw rows and their key, after release.
    cutoff = jobs.expire(store, [project_id], today, window_days=3)
    assert cutoff == today - datetime.timedelta(days=3)
    assert all(day >= cutoff for day in store.raw_days(project_id))
    assert all(day >= cutoff for day in store.key_days(project_id))
    released = store.release_summary(project_id)
    assert sorted(released) == [start, start + datetime.timedelta(days=1)]  # released before deletion
    cells = store.published_cells(project_id, start, start)
    assert ("dau", 3) in {(metric, value) for _, metric, _, value, _ in cells}
    # Later the whole window passes: nothing hashed is left anywhere, the numbers stay.
    clock.advance(days=10)
    jobs.expire(store, [project_id], clock().date(), window_days=3)
    assert store.raw_days(project_id) == [] and store.key_days(project_id) == []
    assert store.report_ids(project_id) == set()
    assert len(store.release_summary(project_id)) == 5
    every_cell = store.published_cells(project_id, start, today)
    assert {day for day, *_ in every_cell} == {start + datetime.timedelta(days=d) for d in range(5)}
    stored = json.dumps([list(map(str, c)) for c in every_cell])
    assert hashlib.sha256(b"a").hexdigest() not in stored


def test_many_first_reports_of_a_day_fetch_the_key_once(store, clock):
    project_id, _ = create_project(store, "demo", "us")
    calls = []
    original = store.window_key

    def counting(*args):
        calls.append(args[:2])
        return original(*args)

    store.window_key = counting
    window = Window(store, now=clock)

    async def burst():
        reports = [contribution_v1(make_report(project_id, user="alice")) for _ in range(50)]
        return await asyncio.gather(*(window.row(r) for r in reports))

    rows = asyncio.run(burst())
    assert len(calls) == 1 and len({r["uid"] for r in rows}) == 1
