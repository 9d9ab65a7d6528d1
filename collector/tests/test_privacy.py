"""Differential privacy: bounded user-days, OpenDP's Gaussian and partition selection, one budget per user-day."""

import datetime
import json
import math

import opendp.prelude as dp
import pytest

from telly_autoinst_collector import privacy
from telly_autoinst_collector.registry import create_project

DAY = datetime.date(2026, 11, 1)


def _raw(uid, stats, version="1.0", python="CPython 3.11"):
    return (uid, version, python, "Linux", "x86_64", json.dumps(stats))


def test_user_days_keep_the_most_popular_then_most_called_features_and_clip_extra_calls_by_l2_norm():
    bounds = privacy.Bounds(max_features=2, calls_l2=10)
    rows = [_raw("u1", {"a": 100, "b": 50, "c": 1}), _raw("u1", {"a": 5}, version="2.0"), _raw("u2", {"c": 3, "d": 4})]
    days = sorted(privacy.user_days(rows, bounds), key=lambda d: sorted(d[0]))
    (u1_calls, u1_version, *_), (u2_calls, *_) = days
    # u1 keeps its two most called features; the calls beyond the first, (104, 49), are scaled
    # down to an L2 norm of at most 10: (9, 4), plus the first call of each.
    assert set(u1_calls) == {"a", "b"} and u1_version == "1.0"  # the first version seen
    assert (u1_calls["a"], u1_calls["b"]) == (10, 5)
    assert u2_calls == {"c": 3, "d": 4}  # (2, 3) beyond the first: norm 3.6, untouched
    assert bounds.check(days) and not bounds.check([({"a": 12}, "1.0", "py", "os", "arch")])
    # Features published as popular on earlier days are kept first, whatever their calls today.
    (popular, *_), _ = sorted(privacy.user_days(rows, bounds, popularity={"c": 500, "b": 20}),
                              key=lambda d: sorted(d[0]))
    assert set(popular) == {"b", "c"}


def test_the_feature_bound_is_exported_once_for_ingestion():
    assert privacy.Bounds().max_features == privacy.FEATURES_PER_USER_DAY
    from telly_autoinst_collector import ingest

    assert ingest._MAX_FEATURES == privacy.FEATURES_PER_REPORT >= privacy.FEATURES_PER_USER_DAY


def test_the_budget_is_the_largest_rho_opendp_converts_to_the_day_epsilon_and_the_plan_spends_it():
    rho = privacy.budget_rho(1.0)
    conversion = privacy.DELTA_PER_USER_DAY * 0.9  # a tenth of δ is partition selection's
    gaussian = dp.m.make_gaussian(dp.atom_domain(T=float, nan=False), dp.absolute_distance(T=float),
                                  scale=1 / math.sqrt(2 * rho))
    assert 0.999 < dp.c.make_zCDP_to_approxDP(gaussian).map(1.0).epsilon(conversion) <= 1.0
    chosen = privacy.plan(rho, privacy.DELTA_PER_USER_DAY * 0.1)
    spent_rho, selection = chosen.spent()
    assert math.isclose(spent_rho, rho, rel_tol=1e-9) and selection <= privacy.DELTA_PER_USER_DAY * 0.1
    assert 0.999 < privacy.loss(spent_rho, privacy.DELTA_PER_USER_DAY, selection) <= 1.0
    # A Gaussian's σ is its L2 sensitivity over sqrt(2ρ) of its share: users have sqrt(k), calls the L2 clip.
    k = privacy.FEATURES_PER_USER_DAY
    assert math.isclose(chosen.sigma["users"], math.sqrt(k) / math.sqrt(2 * privacy.WEIGHTS["users"] * chosen.rho))
    assert math.isclose(chosen.sigma["calls"] / chosen.sigma["users"],
                        privacy.CALLS_L2_PER_USER_DAY / math.sqrt(k) * math.sqrt(
                            privacy.WEIGHTS["users"] / privacy.WEIGHTS["calls"]))
    # The threshold is the smallest whose δ OpenDP accepts: one less would cost more.
    space = dp.map_domain(dp.atom_domain(T=str), dp.atom_domain(T=dp.i64)), dp.l02inf_distance(
        dp.absolute_distance(T=dp.i64))
    per_metric = privacy.DELTA_PER_USER_DAY * 0.1 / 5
    at = dp.m.make_gaussian_threshold(*space, chosen.sigma["users"], threshold=chosen.threshold["users"])
    below = dp.m.make_gaussian_threshold(*space, chosen.sigma["users"], threshold=chosen.threshold["users"] - 1)
    assert at.map((k, k, 1))[1] <= per_metric < below.map((k, k, 1))[1]
    assert math.isclose(sum(privacy.WEIGHTS.values()), 1.0)


def _project(store, epsilon):
    project_id, _ = create_project(store, "demo", "us", epsilon_per_day=epsilon)
    return store.project(project_id)


def _insert(store, project_id, n_users, day=DAY, stats=None, version="1.0"):
    store.insert_reports([{"project_id": project_id, "report_id": f"{day.toordinal():06x}{i:026x}", "day": day,
                           "uid": f"u{i}", "version": version, "python": "CPython 3.11", "os": "Linux",
                           "arch": "x86_64", "stats": json.dumps(stats or {"m.f": 1})} for i in range(n_users)])


def _cells(store, project_id, day=DAY):
    return {(m, k): (v, s) for _, m, k, v, s in store.published_cells(project_id, day, day)}


def _day_plan(epsilon=1.0):
    share = privacy.LEVEL_SHARE["day"]
    return privacy.level_plan("day", share * privacy.budget_rho(epsilon), share * privacy.DELTA_PER_USER_DAY)


def test_release_is_noisy_accounted_and_stored_once(store):
    project = _project(store, 1.0)
    _insert(store, project["project_id"], 400)
    epsilon, delta = privacy.release_day(store, project, DAY, True)
    # The complete day spends the daily level's share; its week and block have theirs still.
    share = privacy.LEVEL_SHARE["day"]
    assert delta == pytest.approx(share * privacy.DELTA_PER_USER_DAY) and 0.3 < epsilon < 0.6
    account = store.release_accounts(project["project_id"])[DAY]
    assert account["detail"]["noise"] == "gaussian" and account["detail"]["level"] == "day"
    cells = _cells(store, project["project_id"])
    assert cells[("dau", "")][1] == _day_plan().sigma["dau"]
    assert abs(cells[("dau", "")][0] - 400) < 8 * cells[("dau", "")][1]
    # 400 users of m.f pass the daily threshold with overwhelming probability.
    assert ("users", "m.f") in cells and ("calls", "m.f") in cells
    assert store.published_cells(project["project_id"], DAY, DAY) == store.published_cells(
        project["project_id"], DAY, DAY)
    assert privacy.release_day(store, project, DAY, True) is None  # the daily share is spent


def test_days_weeks_and_blocks_are_calendar_aligned_each_day_in_exactly_one_of_each():
    assert privacy.period("week", DAY) == (datetime.date(2026, 10, 26), DAY)  # DAY is a Sunday
    assert privacy.period("block", datetime.date(2024, 1, 1)) == (datetime.date(2024, 1, 1),
                                                                  datetime.date(2024, 1, 28))
    assert privacy.period("block", DAY) == (datetime.date(2026, 10, 5), DAY)
    day = datetime.date(2025, 12, 29)
    for _ in range(120):
        for level in ("week", "block"):
            first, last = privacy.period(level, day)
            assert first <= day <= last and first.isoweekday() == 1 and last.isoweekday() == 7
            assert privacy.period(level, first) == privacy.period(level, last) == (first, last)
        assert (privacy.period("block", day)[0] - datetime.date(2024, 1, 1)).days % 28 == 0
        day += datetime.timedelta(days=1)
    assert math.isclose(sum(privacy.LEVEL_SHARE.values()), 1.0)


def test_a_weekly_release_selects_a_frequent_unregistered_name_and_carries_users_only(store):
    project = _project(store, 1.0)
    project_id = project["project_id"]
    _insert(store, project_id, 400)
    _insert(store, project_id, 3, day=DAY - datetime.timedelta(days=1), stats={"m.rare": 1})
    privacy.release_day(store, project, DAY, True)
    assert privacy.release(store, project, "week", DAY) is not None
    assert privacy.release(store, project, "week", DAY - datetime.timedelta(days=3)) is None  # released once
    week = {(m, k) for _, m, k, _, _ in store.published_period_cells(
        project_id, "week", privacy.period("week", DAY)[0], DAY)}
    assert ("users", "m.f") in week and ("dau", "") in week and ("users", "m.rare") not in week
    assert ("calls", "m.f") not in week  # the week carries daily and feature users only


def test_a_day_its_week_and_its_block_share_one_budget_checked_against_opendps_maps(store):
    project = _project(store, 1.0)
    project_id = project["project_id"]
    _insert(store, project_id, 50)
    partial = privacy.release_day(store, project, DAY, False)
    assert privacy.release_day(store, project, DAY, False) is None  # one partial release a day
    assert partial[1] == pytest.approx(privacy.PARTIAL_SHARE * privacy.DELTA_PER_USER_DAY)
    privacy.release_day(store, project, DAY, True)
    assert privacy.release_day(store, project, DAY, True) is None
    privacy.release(store, project, "week", DAY)
    epsilon, delta = privacy.release(store, project, "block", DAY)
    # In total: at most the day's ε at δ = 1e-6, over the four releases that contain the day.
    assert 0.99 < epsilon <= 1.0 and delta == pytest.approx(privacy.DELTA_PER_USER_DAY)
    covering = privacy.releases_covering(store, project_id)[DAY]
    assert sorted(privacy._level(r) for r in covering) == ["block", "day", "day", "week"]
    # OpenDP's own composition of the four releases, converted at the total δ, says the same.
    rebuilt = [privacy.level_plan(privacy._level(r), r["detail"]["rho"], r["delta"]).composition() for r in covering]
    every = dp.c.make_composition(rebuilt)
    assert every.map(1)[0] == pytest.approx(privacy.budget_rho(1.0), rel=1e-6)
    opendp_epsilon, _ = dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(every), delta=delta).map(1)
    assert opendp_epsilon <= epsilon * (1 + 1e-9) and opendp_epsilon == pytest.approx(epsilon, rel=1e-3)
    assert privacy.budget(store, project)["delta_max_user_day"] == pytest.approx(privacy.DELTA_PER_USER_DAY)
    # Another day of the block, released complete only: its block share is spent, the rest unused.
    other = DAY - datetime.timedelta(days=20)
    assert privacy.day_account(privacy.releases_covering(store, project_id)[other])[0] == pytest.approx(
        privacy.LEVEL_SHARE["block"] * privacy.budget_rho(1.0), rel=1e-6)


def test_a_rare_new_name_is_not_published_but_a_known_one_is(store):
    project = _project(store, 1.0)
    project_id = project["project_id"]
    # Day 1: only 3 users of each name: far below the threshold, so no name leaks out.
    _insert(store, project_id, 3, stats={"m.rare": 1}, version="9.9")
    privacy.release_day(store, project, DAY, True)
    assert {m for m, _ in _cells(store, project_id)} == {"dau"}
    # Names published before are public: released every day without a threshold, even at 0.
    next_day = DAY + datetime.timedelta(days=1)
    store.record_release(project_id, DAY, 0.0, True, [{"metric": "users", "key": "m.old", "value": 500, "scale": 1.0},
                                                      {"metric": "version", "key": "0.1", "value": 500, "scale": 1.0}])
    _insert(store, project_id, 3, day=next_day, stats={"m.rare": 1})
    privacy.release_day(store, project, next_day, True)
    cells = _cells(store, project_id, next_day)
    assert ("users", "m.old") in cells and ("calls", "m.old") in cells and ("version", "0.1") in cells
    assert ("users", "m.rare") not in cells
    assert abs(cells[("users", "m.old")][0]) < 8 * _day_plan().sigma["users"]  # true count 0, shift removed


def test_noise_actually_varies_between_releases(store):
    values = set()
    for _ in range(6):
        project = _project(store, 0.5)
        _insert(store, project["project_id"], 50)
        privacy.release_day(store, project, DAY, True)
        values.add(_cells(store, project["project_id"])[("dau", "")][0])
    assert len(values) > 1


def test_a_huge_epsilon_gives_exact_counts(store):
    project = _project(store, 1e6)
    _insert(store, project["project_id"], 7, stats={"m.f": 2})
    for level in privacy.LEVELS:
        privacy.release(store, project, level, DAY)
    assert _cells(store, project["project_id"])[("users", "m.f")][0] == 7
    first = privacy.period("block", DAY)[0]
    cells = {(m, k): v for _, m, k, v, _ in store.published_period_cells(project["project_id"], "block", first, DAY)}
    assert cells[("dau", "")] == 7 and cells[("users", "m.f")] == 7 and cells[("calls", "m.f")] == 14
    assert privacy.budget(store, project)["epsilon_max_user_day"] == pytest.approx(1e6, rel=1e-3)
    assert cells[("python", "CPython 3.11")] == 7


def test_per_person_loss_composes_the_user_days_of_28_and_365_days_as_opendp_does(store):
    project = _project(store, 1.0)
    _insert(store, project["project_id"], 20)
    for level in privacy.LEVELS:
        privacy.release(store, project, level, DAY)
    day = dp.c.make_composition([
        privacy.level_plan(privacy._level(r), r["detail"]["rho"], r["delta"]).composition()
        for r in privacy.releases_covering(store, project["project_id"])[DAY]])
    per_person = privacy.budget(store, project)["per_person"]
    for days in (28, 365):
        composed = dp.c.make_composition([day] * days)
        expected, _ = dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(composed),
                                          delta=days * privacy.DELTA_PER_USER_DAY).map(1)
        stated = per_person[str(days)]
        assert stated["delta"] == pytest.approx(days * privacy.DELTA_PER_USER_DAY)
        # Stated as an upper bound: the selection δ taken at its full share, not what OpenDP charged.
        assert expected <= stated["epsilon"] <= expected * 1.01 + 1e-4
    assert 4 < per_person["28"]["epsilon"] < per_person["365"]["epsilon"]


def test_days_released_before_the_total_budget_keep_their_account_and_take_no_more(store):
    project = _project(store, 1.0)
    project_id = project["project_id"]
    _insert(store, project_id, 5)
    # Four Laplace releases of the old 4x cap: pure 1-DP each, (1/2)-zCDP each; δ 0.
    for _ in range(4):
        store.record_release(project_id, DAY, 1.0, False, [{"metric": "dau", "key": "", "value": 5, "scale": 1.0}])
    rho, delta, _, epsilon = privacy.day_account(store.day_releases(project_id, DAY))
    assert rho == 2.0 and delta == 0.0 and epsilon == 4.0  # pure ε-DP, as it was published
    assert privacy.release_day(store, project, DAY, True) is None
    # Nor do their week and block: the days' whole budget is spent.
    assert all(privacy.release(store, project, level, DAY) is None for level in ("week", "block"))
    assert privacy.budget(store, project)["per_person"]["28"]["epsilon"] > 28


def test_half_width_of_gaussian_sums_and_single_laplace_cells():
    assert privacy.half_width([("gaussian", 10.0)]) == 20  # ceil(1.96 x 10)
    assert privacy.half_width([("gaussian", 10.0)] * 4) == 40  # σ of a sum of 4: 20
    assert privacy.half_width([("laplace", 5.0)]) == 15  # ceil(5 ln 20): exact Laplace tail
    assert privacy.half_width([]) == 0


def test_the_privacy_page_states_the_figures_the_collector_computes():
    import pathlib

    page = (pathlib.Path(__file__).parents[2] / "docs" / "privacy.md").read_text(encoding="utf-8")
    rho = privacy.budget_rho(1.0)
    level = {name: privacy.level_plan(name, share * rho, share * privacy.DELTA_PER_USER_DAY)
             for name, share in privacy.LEVEL_SHARE.items()}
    partial = privacy.loss(privacy.PARTIAL_SHARE * rho, privacy.PARTIAL_SHARE * privacy.DELTA_PER_USER_DAY,
                           privacy.PARTIAL_SHARE * privacy.DELTA_PER_USER_DAY * 0.1)
    stated = [
        f"ρ ≈ {rho:.4f}",
        f"ε ≈ {partial:.2f} on its own",
        f"**{privacy.PARTIAL_SHARE:.0%}**",
        f"**{privacy.LEVEL_SHARE['day']:.0%}** for the day, **{privacy.LEVEL_SHARE['week']:.0%}** for the week "
        f"and **{privacy.LEVEL_SHARE['block']:.0%}** for the 4-week block",
        f"| all of 28 days | {privacy.loss(28 * rho, 28e-6, 28e-7):.2f} | 2.8·10⁻⁵ |",
        f"| all of 365 days | {privacy.loss(365 * rho, 365e-6, 365e-7):.1f} | 3.65·10⁻⁴ |",
        f"about {round(level['day'].sigma['dau'])} for a day's users in a daily release",
        f"{round(level['week'].sigma['users'])} for a feature's users in a weekly release",
        f"{round(level['block'].sigma['users'])} for a feature's users and {round(level['block'].sigma['calls'])} "
        "for its calls beyond the first in a 4-week release",
        f"about {level['day'].threshold['users']} user-days of a feature in a daily release, "
        f"{level['week'].threshold['users']} in a weekly and {level['block'].threshold['users']} in a 4-week",
        f"each of at most {privacy.FEATURES_PER_USER_DAY} features",
        f"L2 norm of at most {privacy.CALLS_L2_PER_USER_DAY} ({privacy.BLOCK_CALLS_L2} in the 4-week release of a "
        f"project whose days published at least {privacy.BLOCK_USERS} daily users",
    ]
    flat = " ".join(page.split())
    for text in stated:
        assert text in flat, text


def test_registered_keys_and_platform_names_are_released_whatever_their_count_others_are_not(store):
    from telly_autoinst_collector import jobs
    from telly_autoinst_collector.registry import register_keys

    project = _project(store, 1.0)
    project_id = project["project_id"]
    register_keys(store, project_id, {"distributions": [{"project_id": project_id, "version": "1.0",
                                                         "keys": ["m.registered", "m.unused"]}]})
    _insert(store, project_id, 3, stats={"m.registered": 1, "m.secret": 1}, version="1.0")
    store.insert_reports([{"project_id": project_id, "report_id": "f" * 32, "day": DAY, "uid": "odd",
                           "version": "0.0.dev1", "python": "weird 9.9", "os": "Linux", "arch": "x86_64",
                           "stats": json.dumps({"m.registered": 1})}])
    privacy.release_day(store, project, DAY, True, public=jobs.public_names(store, project_id))
    cells = _cells(store, project_id)
    # Registered keys (even one nobody used) and versions: released with noise, no threshold.
    assert {("users", "m.registered"), ("users", "m.unused"), ("calls", "m.unused"), ("version", "1.0")} <= set(cells)
    # The platform vocabulary is public; a name only a report carries still needs the threshold.
    assert ("python", "CPython 3.11") in cells and ("os", "Linux") in cells and ("arch", "x86_64") in cells
    assert ("users", "m.secret") not in cells and ("python", "weird 9.9") not in cells
    assert ("version", "0.0.dev1") not in cells


def test_the_public_platform_vocabulary_holds_what_ingestion_folds_names_to():
    from telly_autoinst_collector import ingest

    public = ingest.public_platforms()
    for implementation, version, os_name, machine in [("cpython", "3.11.7", "Linux", "x86_64"),
                                                      ("CPython", "3.9.1", "Darwin", "arm64"),
                                                      ("pypy", "3.10.14", "Windows", "AMD64"),
                                                      ("graalpy", "3.11.0", "linux", "aarch64")]:
        python, os_key, arch = ingest._platform_names(implementation, version, os_name, machine)
        assert python in public["python"] and os_key in public["os"] and arch in public["arch"]
    assert "weird 9.9" not in public["python"]


def test_a_block_bounds_its_user_days_by_the_popularity_its_own_days_published(store):
    project = _project(store, 1e6)
    project_id = project["project_id"]
    public = {"users": {"m.pop", "m.heavy"}}
    _insert(store, project_id, 1, stats={"m.pop": 1, "m.heavy": 10})
    # Published earlier in the same block: m.pop is popular (public, so free to use).
    store.record_release(project_id, DAY - datetime.timedelta(days=3), 0.0, True,
                         [{"metric": "users", "key": "m.pop", "value": 500, "scale": 1.0}])
    privacy.release(store, project, "block", DAY, bounds=privacy.Bounds(max_features=1), public=public)
    first = privacy.period("block", DAY)[0]
    users = {k: v for _, m, k, v, _ in store.published_period_cells(project_id, "block", first, DAY) if m == "users"}
    assert (users["m.pop"], users["m.heavy"]) == (1, 0)  # the one feature kept is the popular one


def test_the_accuracy_page_shows_the_benchmarks_results_file_unedited():
    import pathlib

    from benchmarks import accuracy_views

    page = pathlib.Path(accuracy_views.DOCS).read_text(encoding="utf-8")
    rows = json.loads(pathlib.Path(accuracy_views.RESULTS).read_text(encoding="utf-8"))
    assert rows and accuracy_views.docs_page(page, rows) == page


@pytest.mark.parametrize("published_users, calls", [(400, 50), (100, 21)])
def test_a_block_of_a_project_with_300_daily_users_clips_calls_less(store, published_users, calls):
    project = _project(store, 1e6)
    project_id = project["project_id"]
    _insert(store, project_id, 1, stats={"m.f": 50})
    first = privacy.period("block", DAY)[0]
    for n in range(28):  # the days' own releases published this many daily users
        store.record_release(project_id, first + datetime.timedelta(days=n), 1e-9, True,
                             [{"metric": "dau", "key": "", "value": published_users, "scale": 1.0}],
                             delta=1e-15, detail={"noise": "gaussian", "rho": 1e-9, "level": "day"})
    privacy.release(store, project, "block", DAY, public={"users": {"m.f"}})
    cells = {(m, k): v for _, m, k, v, _ in store.published_period_cells(project_id, "block", first, DAY)}
    # 49 calls beyond the first: clipped to an L2 norm of 20 below 300 daily users, of 60 above.
    assert cells[("calls", "m.f")] == calls
