"""Differential privacy: bounded user-days, OpenDP's Gaussian and partition selection, one budget per user-day."""

import datetime
import json
import math

import opendp.prelude as dp
import pytest

from telly_autoinst_collector import privacy
from telly_autoinst_collector.registry import create_project
from telly_autoinst_collector.store import PROFILES

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


def _project(store, epsilon, profile="large"):
    project_id, _ = create_project(store, "demo", "us", epsilon_per_day=epsilon, profile=profile)
    return store.project(project_id)


def _insert(store, project_id, n_users, day=DAY, stats=None, version="1.0"):
    store.insert_reports([{"project_id": project_id, "report_id": f"{day.toordinal():06x}{i:026x}", "day": day,
                           "uid": f"u{i}", "version": version, "python": "CPython 3.11", "os": "Linux",
                           "arch": "x86_64", "stats": json.dumps(stats or {"m.f": 1})} for i in range(n_users)])


def _cells(store, project_id, day=DAY):
    return {(m, k): (v, s) for _, m, k, v, s in store.published_cells(project_id, day, day)}


def _day_plan(epsilon=1.0, profile="large"):
    share = privacy.LEVEL_SHARE[profile]["day"]
    return privacy.level_plan(profile, "day", share * privacy.budget_rho(epsilon), share * privacy.DELTA_PER_USER_DAY)


def _rebuilt(release):
    """A stored release's composition, made again from what it recorded (OpenDP maps it)."""
    detail = release["detail"]
    return privacy.level_plan(detail["profile"], detail["level"], detail["rho"], release["delta"]).composition()


def test_release_is_noisy_accounted_and_stored_once(store):
    project = _project(store, 1.0)
    _insert(store, project["project_id"], 400)
    epsilon, delta = privacy.release_day(store, project, DAY, True, public={"users": {"m.f"}})
    # The complete day spends the daily level's share; its week and block have theirs still.
    share = privacy.LEVEL_SHARE["large"]["day"]
    assert delta == pytest.approx(share * privacy.DELTA_PER_USER_DAY)
    # Its ε is its own ρ converted at its own δ (a daily release selects no names), below the day's 1.
    own = privacy.loss(share * privacy.budget_rho(1.0), share * privacy.DELTA_PER_USER_DAY)
    assert epsilon == pytest.approx(own, rel=1e-3) and 0.3 < epsilon < 1
    account = store.release_accounts(project["project_id"])[DAY]
    assert account["detail"]["noise"] == "gaussian" and account["detail"]["level"] == "day"
    cells = _cells(store, project["project_id"])
    assert cells[("dau", "")][1] == _day_plan().sigma["dau"]
    assert abs(cells[("dau", "")][0] - 400) < 8 * cells[("dau", "")][1]
    # A registered key: released whatever its count, with its calls.
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
    assert set(privacy.CARRIES) == set(privacy.LEVEL_SHARE) == set(privacy.PARTIAL_SHARE) == set(PROFILES)
    for profile in PROFILES:
        assert math.isclose(sum(privacy.LEVEL_SHARE[profile].values()), 1.0)
        assert 0 < privacy.PARTIAL_SHARE[profile] < privacy.LEVEL_SHARE[profile]["day"]


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
    assert partial[1] == pytest.approx(privacy.PARTIAL_SHARE["large"] * privacy.DELTA_PER_USER_DAY)
    privacy.release_day(store, project, DAY, True)
    assert privacy.release_day(store, project, DAY, True) is None
    privacy.release(store, project, "week", DAY)
    epsilon, delta = privacy.release(store, project, "block", DAY)
    # In total: at most the day's ε at δ = 1e-6, over the four releases that contain the day.
    assert 0.99 < epsilon <= 1.0 and delta == pytest.approx(privacy.DELTA_PER_USER_DAY)
    covering = privacy.releases_covering(store, project_id)[DAY]
    assert sorted(privacy._level(r) for r in covering) == ["block", "day", "day", "week"]
    # OpenDP's own composition of the four releases, converted at the total δ, says the same.
    every = dp.c.make_composition([_rebuilt(r) for r in covering])
    assert every.map(1)[0] == pytest.approx(privacy.budget_rho(1.0), rel=1e-6)
    opendp_epsilon, _ = dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(every), delta=delta).map(1)
    assert opendp_epsilon <= epsilon * (1 + 1e-9) and opendp_epsilon == pytest.approx(epsilon, rel=1e-3)
    assert privacy.budget(store, project)["delta_max_user_day"] == pytest.approx(privacy.DELTA_PER_USER_DAY)
    # Another day of the block, released complete only: its block share is spent, the rest unused.
    other = DAY - datetime.timedelta(days=20)
    assert privacy.day_account(privacy.releases_covering(store, project_id)[other])[0] == pytest.approx(
        privacy.LEVEL_SHARE["large"]["block"] * privacy.budget_rho(1.0), rel=1e-6)


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
        privacy.release(store, project, level, DAY, public={"users": {"m.f"}, "python": {"CPython 3.11"}})
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
    day = dp.c.make_composition([_rebuilt(r) for r in privacy.releases_covering(store, project["project_id"])[DAY]])
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
    plans = {(profile, name): privacy.level_plan(profile, name, share * rho, share * privacy.DELTA_PER_USER_DAY)
             for profile, shares in privacy.LEVEL_SHARE.items() for name, share in shares.items()}

    def row(label, each):
        return f"| {label} | " + " | ".join(each(profile) for profile in ("small", "large")) + " |"

    def sigma(level, metric):
        return lambda profile: (f"{round(plans[profile, level].sigma[metric])}"
                                if metric in plans[profile, level].sigma else "—")

    share = privacy.LEVEL_SHARE
    stated = [
        f"ρ ≈ {rho:.4f}",
        row("daily release (of which a partial day's)",
            lambda p: f"{share[p]['day']:.0%} ({privacy.PARTIAL_SHARE[p]:.0%})"),
        row("weekly release", lambda p: f"{share[p]['week']:.0%}"),
        row("4-week release", lambda p: f"{share[p]['block']:.0%}"),
        row("a day's users, daily release", sigma("day", "dau")),
        row("a feature's users, daily release", sigma("day", "users")),
        row("a feature's users, weekly release", sigma("week", "users")),
        row("a feature's users, 4-week release", sigma("block", "users")),
        row("a feature's calls beyond the first, 4-week release", sigma("block", "calls")),
        f"about {plans['small', 'week'].threshold['users']} user-days of a feature in a weekly release and "
        f"{plans['small', 'block'].threshold['users']} (small) or {plans['large', 'block'].threshold['users']} "
        "(large) in a 4-week release",
        f"at least **{privacy.LARGE_DAILY_USERS:,} daily users on average**",
        f"| all of 28 days | {privacy.loss(28 * rho, 28e-6, 28e-7):.2f} | 2.8·10⁻⁵ |",
        f"| all of 365 days | {privacy.loss(365 * rho, 365e-6, 365e-7):.1f} | 3.65·10⁻⁴ |",
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


def _levels_of(store, project_id, day=DAY):
    """{level: the metrics its release published} of the day's own, week's and block's releases."""
    found = {"day": {m for m, _ in _cells(store, project_id, day)}}
    for level in ("week", "block"):
        first = privacy.period(level, day)[0]
        found[level] = {m for _, m, _, _, _ in store.published_period_cells(project_id, level, first, first)}
    return found


def test_a_small_projects_day_carries_daily_users_its_week_feature_users_its_block_everything(store):
    project = _project(store, 1.0, profile=None)
    project_id = project["project_id"]
    assert (project["profile"], project["profile_declared"]) == ("small", False)  # every new project
    _insert(store, project_id, 200)
    public = {"users": {"m.f"}, "version": {"1.0"}, "python": {"CPython 3.11"}, "os": {"Linux"}, "arch": {"x86_64"}}
    partial = privacy.release_day(store, project, DAY, False, public=public)
    assert partial[1] == pytest.approx(privacy.PARTIAL_SHARE["small"] * privacy.DELTA_PER_USER_DAY)
    for level in privacy.LEVELS:
        assert privacy.release(store, project, level, DAY, public=public) is not None
    assert _levels_of(store, project_id) == {"day": {"dau"}, "week": {"dau", "users"},
                                             "block": {"dau", "users", "calls", "version", "python", "os", "arch"}}
    # Its releases spend the small profile's shares; together, the whole budget, by OpenDP's own maps.
    covering = privacy.releases_covering(store, project_id)[DAY]
    rho = privacy.budget_rho(1.0)
    for release in covering:
        level = release["detail"]["level"]
        share = privacy.LEVEL_SHARE["small"][level] - (privacy.PARTIAL_SHARE["small"] if level == "day" else 0)
        if level == "day" and not release.get("complete", True):
            share = privacy.PARTIAL_SHARE["small"]
        assert release["detail"]["profile"] == "small" and release["detail"]["rho"] == pytest.approx(share * rho)
    every = dp.c.make_composition([_rebuilt(r) for r in covering])
    assert every.map(1)[0] == pytest.approx(rho, rel=1e-6)
    opendp_epsilon, _ = dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(every),
                                            delta=privacy.DELTA_PER_USER_DAY).map(1)
    assert 0.99 < opendp_epsilon <= 1.0


def test_a_daily_release_carries_public_names_only_and_spends_no_selection_delta(store):
    project = _project(store, 1.0)  # large: features every day
    project_id = project["project_id"]
    # 400 users of a name nobody registered, on a version nobody registered: far above any threshold.
    _insert(store, project_id, 400, stats={"m.new": 1, "m.f": 1}, version="9.9")
    public = {"users": {"m.f"}}
    privacy.release_day(store, project, DAY, True, public=public)
    cells = _cells(store, project_id)
    assert ("users", "m.f") in cells and ("users", "m.new") not in cells and ("version", "9.9") not in cells
    (day_release,) = store.day_releases(project_id, DAY)
    # OpenDP's map of the release as recorded: no partition selection, so no δ spent on it.
    assert day_release["detail"]["selection_delta"] == 0 and day_release["detail"]["threshold"] == {}
    assert _rebuilt(day_release).map(1)[1] == 0
    # The weekly release may select it (400 user-days pass its threshold); a name so published is
    # public output, released by the next days without a threshold (still never registered).
    privacy.release(store, project, "week", DAY, public=public)
    week = {(m, k) for _, m, k, _, _ in store.published_period_cells(
        project_id, "week", privacy.period("week", DAY)[0], DAY)}
    assert ("users", "m.new") in week
    next_day = DAY + datetime.timedelta(days=1)
    _insert(store, project_id, 3, day=next_day, stats={"m.new": 1})
    privacy.release_day(store, project, next_day, True, public=public)
    assert ("users", "m.new") in _cells(store, project_id, next_day)
    assert store.public_keys(project_id) == {}


def test_a_block_whose_days_changed_profile_stays_within_one_budget(store):
    project = _project(store, 1.0, profile=None)
    project_id = project["project_id"]
    first = privacy.period("block", DAY)[0]
    days = [first + datetime.timedelta(days=n) for n in (0, 27)]
    for day in days:
        _insert(store, project_id, 20, day=day)
    privacy.release_day(store, project, days[0], True)  # small: the day's small share
    store.set_profile(project_id, "large", declared=True)
    project = store.project(project_id)
    privacy.release_day(store, project, days[1], True)  # large: the day's larger share
    epsilon, delta = privacy.release(store, project, "block", days[1])
    assert epsilon <= 1.0 and delta <= privacy.DELTA_PER_USER_DAY * (1 + 1e-9)
    covering = privacy.releases_covering(store, project_id)
    for day in days:
        every = dp.c.make_composition([_rebuilt(r) for r in covering[day]])
        assert every.map(1)[0] <= privacy.budget_rho(1.0) * (1 + 1e-9)
        assert privacy.day_account(covering[day])[3] <= 1.0


@pytest.mark.parametrize("profile, declared, daily_users, grows", [
    ("small", False, privacy.LARGE_DAILY_USERS, True), ("small", False, privacy.LARGE_DAILY_USERS - 1, False),
    ("small", True, 10 * privacy.LARGE_DAILY_USERS, False), ("large", False, 10, False)])
def test_a_block_of_1000_daily_users_makes_an_automatic_small_project_large(store, profile, declared, daily_users,
                                                                             grows):
    project = _project(store, 1.0, profile=profile if declared else None)
    project_id = project["project_id"]
    store.set_profile(project_id, profile, declared=declared)
    first = privacy.period("block", DAY)[0]
    store.record_period_release(project_id, "block", first, DAY, 0.5, 5e-7, {"rho": 0.01, "level": "block"},
                                [{"metric": "dau", "key": "", "value": 28 * daily_users, "scale": 30.0}])
    assert privacy.grows(store, store.project(project_id), first) is grows
