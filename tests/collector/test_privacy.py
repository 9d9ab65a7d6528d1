"""Differential privacy: bounded contributions, OpenDP noise drawn once, the budget accounted and capped."""

import datetime
import json

import opendp.prelude as dp

from telly_autoinst.collector import privacy
from telly_autoinst.collector.registry import create_project

DAY = datetime.date(2026, 11, 1)


def _raw(uid, stats, version="1.0", python="CPython 3.11"):
    return (uid, version, python, "Linux", "x86_64", json.dumps(stats))


def test_contributions_are_bounded_per_user_day():
    bounds = privacy.Bounds(max_features=2, max_calls=10)
    rows = [_raw("u1", {"a": 100, "b": 50, "c": 1}), _raw("u1", {"a": 5}, version="2.0"), _raw("u2", {"c": 3})]
    hists = privacy.histograms(rows, bounds)
    assert hists["dau"] == {"": 2}
    # u1 counts for its two most used features only, with at most 10 calls between them.
    assert hists["users"] == {"a": 1, "b": 1, "c": 1}
    assert hists["calls"]["a"] + hists["calls"]["b"] <= 10 and hists["calls"]["c"] == 3
    # One version per user-day: the first seen.
    assert hists["version"] == {"1.0": 2}


def test_shares_spend_exactly_the_day_epsilon():
    assert abs(sum(privacy.SHARES.values()) - 1.0) < 1e-12


def _project(store, epsilon):
    project_id, _ = create_project(store, "demo", "us", epsilon_per_day=epsilon)
    return store.project(project_id)


def _insert(store, project_id, n_users, day=DAY):
    store.insert_reports([{"project_id": project_id, "report_id": f"{i:032x}", "day": day, "uid": f"u{i}",
                           "version": "1.0", "python": "CPython 3.11", "os": "Linux", "arch": "x86_64",
                           "stats": json.dumps({"m.f": 1})} for i in range(n_users)])


def test_release_is_noisy_and_costs_what_opendp_says(store):
    project = _project(store, 1.0)
    _insert(store, project["project_id"], 50)
    spent = privacy.release_day(store, project, DAY, True)
    expected = 0.0
    for metric, share in privacy.SHARES.items():
        sensitivity = privacy.Bounds().sensitivity(metric)
        measurement = dp.m.make_laplace(dp.vector_domain(dp.atom_domain(T="i64")), dp.l1_distance(T="i64"),
                                        scale=sensitivity / share)
        expected += measurement.map(sensitivity)
    assert abs(spent - expected) < 1e-9 and abs(spent - 1.0) < 1e-9
    cells = {(m, k): (v, s) for _, m, k, v, s in store.published_cells(project["project_id"], DAY, DAY)}
    assert cells[("dau", "")][1] == 1 / 0.2  # scale = sensitivity / epsilon share
    # Noise was drawn once and stored: reading again gives the same numbers.
    assert store.published_cells(project["project_id"], DAY, DAY) == store.published_cells(
        project["project_id"], DAY, DAY)


def test_noise_actually_varies_between_releases(store):
    values = set()
    for _ in range(8):
        project = _project(store, 0.5)
        _insert(store, project["project_id"], 100)
        privacy.release_day(store, project, DAY, True)
        cells = store.published_cells(project["project_id"], DAY, DAY)
        values.add(next(v for _, m, _, v, _ in cells if m == "calls"))
    assert len(values) > 1


def test_a_huge_epsilon_gives_exact_counts(store):
    project = _project(store, 1e6)
    _insert(store, project["project_id"], 7)
    privacy.release_day(store, project, DAY, True)
    cells = {(m, k): v for _, m, k, v, _ in store.published_cells(project["project_id"], DAY, DAY)}
    assert cells[("dau", "")] == 7 and cells[("calls", "m.f")] == 7 and cells[("python", "CPython 3.11")] == 7


def test_the_per_day_cap_refuses_further_releases(store):
    project = _project(store, 1.0)  # cap = 4 x epsilon
    _insert(store, project["project_id"], 5)
    spent = [privacy.release_day(store, project, DAY, False) for _ in range(5)]
    assert spent[:4] == [spent[0]] * 4 and spent[4] is None
    account = privacy.budget(store, project)
    assert abs(account["epsilon_spent_total"] - 4.0) < 1e-6 and abs(account["epsilon_max_user_day"] - 4.0) < 1e-6


def test_band_covers_the_noise():
    low, high = privacy.band(100, 5.0)
    assert low < 100 < high and high - 100 == 15
    assert privacy.band(3, 5.0)[0] == 0
