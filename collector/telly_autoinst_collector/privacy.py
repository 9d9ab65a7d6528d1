"""Differentially private release of each day's numbers with OpenDP, and the privacy budget.

Privacy unit: one user-day (a re-keyed Level II id on one UTC day; a report without one is not
stored, see window.py, so no person counts as several units of one day). A day's raw rows are
merged into user-days and each is bounded before any noise (``Bounds``): 1 to daily active users;
1 to one package version, one Python, one OS and one architecture; 1 to each of at most
``max_features`` features; and its calls beyond the first of each of those features, as one
vector scaled down to an L2 norm of at most ``calls_l2``.

Each release (of a day, an ISO week or a 4-week block) is one OpenDP adaptive composition under
approximate zero-concentrated DP: discrete Gaussian noise on every count (exact integer sampler,
CKS20), with L2 sensitivities. What a release carries depends on its level and on the project's
profile (``CARRIES``). Names that are public already are released without a threshold, whatever
their count: those the author registered (feature keys from the package's ``--dry-run --json``
listing, versions), a fixed vocabulary of platform names, and names published on the previous
``KNOWN_DAYS`` days. A daily release carries those names only (a count per name, no other name
whatever the reports hold). Weekly and 4-week releases may also publish a name nobody made
public, through OpenDP's thresholded Gaussian (partition selection): it appears only when its
noisy count passes a threshold, which is what δ pays for; public names enter that mechanism
shifted far above it (a stable pre-processing that costs nothing, since no report decides which
names they are). A name so published is the output of a DP release: using it afterwards is
post-processing, and it becomes known for ``KNOWN_DAYS``, yet it never enters the author's
registered set (docs/decisions/0008-public-names-and-profiles.md).
Calls are released for the feature names just selected: the clipped sum of the calls beyond each
user's first, plus that feature's noisy users (a clipped per-user mean times the users; the
dashboard shows calls per user). Counting only the calls beyond the first keeps the L2 norm, and
so the noise, small for the many user-days that call a feature a few times.

The budget is per user-day and *in total*: every release that contains a user-day (a partial
day's and the complete day's) spends part of one zCDP budget ρ, the largest whose conversion to
(ε, δ) OpenDP maps to at most the project's ε per day at ``DELTA_PER_USER_DAY``. One release of
a partial day takes ``PARTIAL_SHARE`` of ρ and of δ; the complete day's release takes what is
left. A day's account composes its releases as zCDP does (ρ and partition selection's δ add up)
and converts the sum once, with OpenDP's own map; a person's loss over n days composes n such
user-days the same way (``loss``).

Noisy values are drawn once and stored; everything shown afterwards is read from storage
(post-processing, no further cost).
"""

import dataclasses
import datetime
import functools
import json
import math
from statistics import NormalDist

import opendp.prelude as dp

# Gaussian and thresholded mechanisms are behind OpenDP's "contrib" flag; our bounding steps are
# OpenDP user transformations, whose stability maps (below) are ours: "honest-but-curious".
dp.enable_features("contrib", "honest-but-curious")

# Chosen by measurement (benchmarks/_workload.py's users): 9 of 10 simulated user-days use at most 5 features,
# and as many have calls beyond the first with an L2 norm of at most 20. Tighter bounds cost less
# noise but more bias (4 features: 6% fewer users of the top 10; an L2 norm of 16: 19% fewer calls).
# 6 features rather than 5 (benchmarks/accuracy_views.py): the bound's bias on the 6th to 10th
# features falls from 2-11% to 0-4% of their users, which is what the top-10 figures at 1,000
# daily users and more are made of (large profile, 4-week top-10 users off by 1.9% at 5, 0.4-0.8%
# at 6; weekly 2.6% and 1.0-1.7%; a first day's 9.4% and 6-9.6%), for 9.5% more noise on users.
FEATURES_PER_USER_DAY = 6
# What ingestion keeps of one report: its most called features, up to this many. The release
# picks a user-day's features by their public popularity, which ingestion cannot know; keeping
# only FEATURES_PER_USER_DAY by calls per report lost 6% of the top-10 features' users at 10,000
# daily users (an accuracy benchmark since replaced by benchmarks/accuracy_views.py). Four times
# as many keeps that loss out of the figures.
FEATURES_PER_REPORT = 4 * FEATURES_PER_USER_DAY
CALLS_L2_PER_USER_DAY = 20
# A 4-week block of a project whose days published at least BLOCK_USERS daily users on average
# bounds calls by this L2 norm instead: there the noise of a block's calls is small beside the
# bias of clipping (benchmarks/accuracy_views.py, 1,000 daily users: calls off by 10.7% at 20).
BLOCK_USERS = 300
BLOCK_CALLS_L2 = 60
# Per user-day in total, as the ε: well below 1 / (user-days of one day) up to 100,000 daily users.
DELTA_PER_USER_DAY = 1e-6
# Share of a user-day's ρ and δ that one release of its partial day (publish --through-now) may
# take, out of the daily level's, by profile; the complete day's release spends the rest of the
# daily level's. A second partial release of a day is refused.
# A small project's partial day carries daily users only, like its complete days: 0.02 of the
# budget (σ about 32 at the defaults), leaving the week its share.
PARTIAL_SHARE = {"small": 0.02, "large": 0.1}
# The calendar levels of releases: a UTC day, an ISO week (Monday to Sunday) and a 4-week block
# (four ISO weeks counted from _BLOCK_EPOCH). Each user-day is in exactly one period of each.
LEVELS = ("day", "week", "block")
_BLOCK_EPOCH = datetime.date(2024, 1, 1)  # a Monday
_ALL = ("dau", "users", "calls", "version", "python", "os", "arch")
# The profiles (store.PROFILES; each project's is in its row, with whether it was declared):
# what each level's release carries, and the share of a user-day's ρ and δ each level's release
# spends (the day's includes PARTIAL_SHARE). The order of a release's metrics is its composition's.
#
# small, every new project: a day's release carries its daily users only (below about 1,000 daily
# users a day's feature counts are mostly noise), a week's feature users too, a 4-week block's
# everything. large, declared by the operator or reached at a 4-week boundary (LARGE_DAILY_USERS):
# a day's release carries everything too.
#
# A sum over a period is best released once for the period: over 28 days, the block's ρ counts in
# full, a week's a quarter and a day's 1/28 (inverse-variance weights of the sums). So most of
# the budget goes to the block, which carries every metric; the week's carries what a project
# reads between blocks. A small project's day spends only what its daily users need.
#
# The shares, measured (benchmarks/accuracy_views.py, medians over 2-3 runs of 6 projects at 30
# and 100 daily users, 2 runs at 1,000; relative errors of the views the targets name):
# - small: the week and the block pull against each other. 30 daily users' 4-week calls follow
#   the block's calls ρ (block 0.53: 19%, 0.47: 24%, target 25%); 100's weekly top-5 users follow
#   the week's users ρ (week 0.37: 8.9%, 0.43: 7.3%, 0.47: 5.0%, target 8%). Daily users need
#   little: 0.06 gave 11-12% at 100 daily users (target 20%).
# - large: a first day's top-10 users need the day's users ρ (day 0.45 with users at 36% of it:
#   11.5%; 0.5 with 37.5%: 8.9%; target 12%); weekly top-10 users at 1,000 need the week (0.05 and
#   0.1: 3.2-3.7%, 0.18: 1.3%, target 3%); 4-week calls need the block to outweigh the days'
#   calls, clipped at CALLS_L2_PER_USER_DAY where the block's are at BLOCK_CALLS_L2 (block 0.2:
#   7.4%, 0.35: 4.6%, 0.45: 3.1-4.0%, target 5%).
CARRIES = {
    "small": {"day": ("dau",), "week": ("dau", "users"), "block": _ALL},
    "large": {"day": _ALL, "week": ("dau", "users"), "block": _ALL},
}
LEVEL_SHARE = {
    "small": {"day": PARTIAL_SHARE["small"] + 0.03, "week": 0.45, "block": 0.5},
    "large": {"day": PARTIAL_SHARE["large"] + 0.37, "week": 0.15, "block": 0.38},
}
# A small project that is not declared becomes large at the end of a 4-week block whose release
# published at least this many daily users on average (never back: a declared profile is kept).
LARGE_DAILY_USERS = 1000
# Levels whose releases may publish a name nobody made public (partition selection). A daily
# release carries public names only: those the author registered, the platform vocabulary, and
# names published on the previous KNOWN_DAYS days (a week's or block's output, public already).
# A day's threshold (a few hundred user-days of one name at the defaults) is seldom reached by a
# name worth showing, and a week's or block's release would publish it anyway.
SELECTING = ("week", "block")
# A daily release's weight of daily users, instead of WEIGHTS["dau"]: a day's users are read from
# the daily release alone, its features from the weekly and 4-week ones mostly. Only a large
# project's days carry other metrics (a small one's spend their share on daily users alone). In
# a large day of 0.45-0.47 of the budget, 0.15 gave daily users off by 1.0% at 1,000 daily users
# and 0.08 by 1.6-2.3% (target 2.5%); what it leaves goes to the first day's feature users.
DAY_DAU_WEIGHT = 0.1
# The periods over which the per-person loss is stated (a person active on every one of those days).
LOSS_DAYS = (28, 365)
# Names published on these many previous days are released without a threshold.
KNOWN_DAYS = 30
# Relative weights of a release's ρ (zCDP) between the metrics it carries: the numbers authors
# read first get the most. Users and calls share most of it: more for calls helps 30 daily users'
# 4-week calls, more for users a large project's first day (users 0.40 and calls 0.50: 4-week
# top-10 users at 30 daily users off by 10.2%, a large first day's top-10 at 1,000 by 11.5%;
# users 0.50 and calls 0.40: 4-week calls at 30 by 29%). A week carries daily users and feature
# users: daily users' 0.03 leaves 93% of it to the features.
WEIGHTS = {"dau": 0.03, "users": 0.42, "calls": 0.48, "version": 0.025, "python": 0.015, "os": 0.015, "arch": 0.015}
_KEYED = ("users", "version", "python", "os", "arch")  # released through partition selection
# Part of δ spent on partition selection; the rest goes to converting zCDP to (ε, δ).
_SELECTION_DELTA = 0.1
_Z95 = NormalDist().inv_cdf(0.975)
# Beyond this ρ, OpenDP's (exact) conversion to (ε, δ) overflows its floats: ε would pass e^700.
_FLOAT_RHO = 300.0
_MECHANISM = "OpenDP discrete Gaussian (zCDP), partition selection by threshold for new names"
_I64 = dp.atom_domain(T=dp.i64)


@dataclasses.dataclass(frozen=True)
class Bounds:
    """Contribution bounds per user-day."""

    max_features: int = FEATURES_PER_USER_DAY
    calls_l2: int = CALLS_L2_PER_USER_DAY

    def check(self, days):
        """OpenDP's membership test of the input domain: every user-day is within the bounds."""
        return isinstance(days, list) and all(
            len(d[0]) <= self.max_features and min(d[0].values(), default=1) >= 1
            and sum((c - 1) ** 2 for c in d[0].values()) <= self.calls_l2 ** 2 for d in days)


def user_days(rows, bounds, popularity=None, features=None):
    """One day's raw rows merged per user and bounded: [(calls by feature, version, python, os, arch)].

    A user-day keeps ``max_features`` of its features (of those in ``features`` if given: the only
    ones a release of public names counts): the most popular in ``popularity`` (users
    published on earlier days: public, so using it costs nothing) and then the most called, ties by
    name so that the choice never depends on row order. Dropping the least popular features first
    keeps the bias of the bound away from the features authors look at. Its calls beyond the first
    are scaled down together, rounding down, until their L2 norm is at most ``calls_l2``; it keeps
    the first version and platform seen.
    """
    popularity = popularity or {}
    merged = {}
    for uid, version, python, os_name, arch, stats in rows:
        entry = merged.get(uid)
        if entry is None:
            entry = merged[uid] = ({}, version, python, os_name, arch)
        calls = entry[0]
        for key, count in json.loads(stats).items():
            if count > 0 and (features is None or key in features):  # used from its first call
                calls[key] = calls.get(key, 0) + int(count)
    days = []
    for calls, *facts in merged.values():
        ranked = sorted(calls.items(), key=lambda kv: (-max(0, popularity.get(kv[0], 0)), -kv[1], kv[0]))
        chosen = dict(ranked[:bounds.max_features])
        norm = math.sqrt(sum((c - 1) ** 2 for c in chosen.values()))
        if norm > bounds.calls_l2:
            chosen = {key: 1 + int((count - 1) * bounds.calls_l2 / norm) for key, count in chosen.items()}
        days.append((chosen, *facts))
    return days


def _names_of(day, metric):
    return day[0] if metric == "users" else (day[_KEYED.index(metric)],)


def _keyed_counts(days, metric, known, shift):
    counts = dict.fromkeys(known, shift)
    for day in days:
        for key in _names_of(day, metric):
            counts[key] = counts.get(key, 0) + 1
    return counts


def _public_counts(days, metric, names):
    """Counts of ``metric`` for ``names`` only, in their order: names outside it are never counted."""
    index = {name: i for i, name in enumerate(names)}
    vector = [0] * len(names)
    for day in days:
        for key in _names_of(day, metric):
            if key in index:
                vector[index[key]] += 1
    return vector


@dataclasses.dataclass(frozen=True)
class Plan:
    """Noise scales and thresholds of one release of a day, for its share of the user-day's budget."""

    rho: float
    selection_delta: float  # partition selection's δ, all metrics together
    bounds: Bounds
    sigma: dict  # metric -> standard deviation of its Gaussian noise, for the metrics released
    threshold: dict  # keyed metric -> smallest noisy count at which a new name is released; none: public names only

    @property
    def metrics(self):
        return tuple(m for m in _ALL if m in self.sigma)

    @functools.cached_property
    def _space(self):
        domain = dp.user_domain(f"UserDays{self.bounds.max_features}x{self.bounds.calls_l2}", self.bounds.check)
        return domain, dp.symmetric_distance()

    def _l0(self, metric):
        return self.bounds.max_features if metric == "users" else 1

    def dau(self):
        count = dp.t.make_user_transformation(*self._space, _I64, dp.absolute_distance(T=dp.i64), len, lambda d: d)
        return dp.c.make_approximate(count >> dp.m.then_gaussian(self.sigma["dau"]))

    def shift(self, metric):
        """Added to known names' counts: far above the threshold, so they always pass it (0 without one)."""
        if metric not in self.threshold:
            return 0
        return self.threshold[metric] + math.ceil(40 * self.sigma[metric])

    def keyed(self, metric, known=()):
        """Counts of ``metric`` by name, with partition selection for names not in ``known``.

        Without a threshold for ``metric`` (a release of public names only): the counts of the
        names of ``known`` alone, as a vector in their sorted order, and no other name whatever
        the reports hold. The same Gaussian on the same L2 sensitivity, so the same ρ; no δ.
        """
        l0, shift = self._l0(metric), self.shift(metric)
        if metric not in self.threshold:
            names = sorted(known)
            vector = dp.t.make_user_transformation(
                *self._space, dp.vector_domain(_I64), dp.l2_distance(T=float),
                lambda days: _public_counts(days, metric, names), lambda d: math.sqrt(l0) * d)
            return dp.c.make_approximate(vector >> dp.m.then_gaussian(self.sigma[metric]))
        counts = dp.t.make_user_transformation(
            *self._space, dp.map_domain(dp.atom_domain(T=str), _I64),
            dp.l02inf_distance(dp.absolute_distance(T=dp.i64)),
            # Known names are in every neighbouring dataset, shifted by the same public constant.
            lambda days: _keyed_counts(days, metric, known, shift), lambda d: (l0 * d, l0 * d, d))
        return counts >> dp.m.then_gaussian_threshold(self.sigma[metric], threshold=self.threshold[metric])

    def calls(self, keys):
        """Clipped sums of the calls beyond each user's first of the features ``keys`` (public by now)."""
        index = {key: i for i, key in enumerate(keys)}

        def sums(days):
            vector = [0] * len(keys)
            for calls, *_ in days:
                for key, count in calls.items():
                    if key in index:
                        vector[index[key]] += count - 1
            return vector

        l2 = self.bounds.calls_l2
        vector = dp.t.make_user_transformation(*self._space, dp.vector_domain(_I64), dp.l2_distance(T=dp.i64), sums,
                                               lambda d: l2 * d)
        return dp.c.make_approximate(vector >> dp.m.then_gaussian(self.sigma["calls"]))

    def composition(self):
        """The release's adaptive composition under approximate zCDP, queried in the order of ``metrics``."""
        queries = {"dau": self.dau, "calls": lambda: self.calls([])}
        mids = [(queries[m]() if m in queries else self.keyed(m)).map(1) for m in self.metrics]
        return dp.c.make_adaptive_composition(*self._space, dp.approximate(dp.zero_concentrated_divergence()),
                                              d_in=1, d_mids=mids)

    def spent(self):
        """(ρ, partition selection's δ) of this release per user-day: OpenDP's own map of the composition."""
        rho, selection = self.composition().map(1)
        return float(rho), float(selection)

    def detail(self, rho, selection_delta, level, profile):
        return {"noise": "gaussian", "level": level, "profile": profile, "mechanism": _MECHANISM,
                "rho": rho, "selection_delta": selection_delta, "sigma": self.sigma, "threshold": self.threshold,
                "bounds": dataclasses.asdict(self.bounds), "known_days": KNOWN_DAYS}


def _threshold(sigma, l0, delta):
    """The smallest threshold at which OpenDP charges at most ``delta`` for new names."""
    domain = dp.map_domain(dp.atom_domain(T=str), _I64)
    metric = dp.l02inf_distance(dp.absolute_distance(T=dp.i64))

    def cost(threshold):
        return dp.m.make_gaussian_threshold(domain, metric, sigma, threshold=threshold).map((l0, l0, 1))[1]

    low, high = 1, 2
    while cost(high) > delta:
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if cost(middle) <= delta else (middle, high)
    return high


@functools.lru_cache(maxsize=64)
def plan(rho, selection_delta, bounds=Bounds(), metrics=_ALL, dau_weight=WEIGHTS["dau"]):
    """The release of ``metrics`` that spends ``rho`` (split by their ``WEIGHTS``, daily users' by
    ``dau_weight``) and ``selection_delta`` (split evenly between its keyed metrics; 0: no partition
    selection, public names only)."""
    sensitivity = {"dau": 1.0, "users": math.sqrt(bounds.max_features), "calls": float(bounds.calls_l2)}
    weights = dict(WEIGHTS, dau=dau_weight)
    weight = sum(weights[m] for m in metrics)
    sigma = {m: sensitivity.get(m, 1.0) / math.sqrt(2 * weights[m] / weight * rho) for m in _ALL if m in metrics}
    keyed = [m for m in _KEYED if m in metrics]
    each = selection_delta / max(1, len(keyed))
    threshold = {m: _threshold(sigma[m], bounds.max_features if m == "users" else 1, each)
                 for m in keyed if selection_delta > 0}
    return Plan(rho, selection_delta, bounds, sigma, threshold)


def level_plan(profile, level, rho, delta, bounds=Bounds()):
    """The release of ``level`` for a project of ``profile`` that spends ``rho`` and ``delta`` (a tenth of it
    on partition selection, at the levels that select names)."""
    return plan(rho, delta * _SELECTION_DELTA if level in SELECTING else 0.0, bounds, CARRIES[profile][level],
                DAY_DAU_WEIGHT if level == "day" else WEIGHTS["dau"])


def _epsilon_of(rho, delta):
    """ε of ρ-zCDP at ``delta``: OpenDP's conversion, or the classic bound where its floats overflow."""
    if rho > _FLOAT_RHO:
        return rho + 2 * math.sqrt(rho * math.log(1 / delta))
    gaussian = dp.m.make_gaussian(dp.atom_domain(T=float, nan=False), dp.absolute_distance(T=float),
                                  scale=1 / math.sqrt(2 * rho))
    return dp.c.make_zCDP_to_approxDP(gaussian).map(1.0).epsilon(delta)


@functools.lru_cache(maxsize=16)
def budget_rho(epsilon, delta=DELTA_PER_USER_DAY):
    """A user-day's ρ: the largest whose conversion OpenDP maps to at most (``epsilon``, ``delta``).

    The search converts ρ at the δ left once partition selection has taken its full share; the
    thresholds then take at most that share, so whatever the releases of a day spend within ρ and
    that share converts to at most ``epsilon``.
    """
    conversion = delta * (1 - _SELECTION_DELTA)
    # The classic conversion ε = ρ + 2 sqrt(ρ ln(1/δ)) is looser than OpenDP's, so its ρ is a lower
    # bound; and no conversion gives an ε below ρ. Bisection on log ρ between the two.
    log_term = math.log(1 / conversion)
    low = (math.sqrt(log_term + epsilon) - math.sqrt(log_term)) ** 2
    high = epsilon + 1.0
    for _ in range(40):  # each step halves the log-width: far below a 1e-6 relative step
        middle = math.sqrt(low * high)
        low, high = (middle, high) if _epsilon_of(middle, conversion) <= epsilon else (low, middle)
    return low


def _release_rho(detail, epsilon):
    """ρ of a stored release: recorded since the total budget; a Laplace release's ε-DP is (ε²/2)-zCDP."""
    if "rho" in detail:
        return float(detail["rho"])
    return epsilon * epsilon / 2


def _selection_delta(detail, delta):
    """Partition selection's δ of a stored release (a release before the total budget: its share of δ)."""
    return float(detail.get("selection_delta", delta * _SELECTION_DELTA))


def day_account(releases):
    """A user-day's (ρ, δ, selection δ, ε) over every release of it, composed as zCDP.

    Days released only with the Laplace mechanism (before the total budget) were pure ε-DP:
    their ε is the sum of their releases' ε, at δ = 0, as they were published.
    """
    rho = sum(_release_rho(r["detail"], r["epsilon"]) for r in releases)
    if all("rho" not in r["detail"] for r in releases):
        return rho, 0.0, 0.0, sum(r["epsilon"] for r in releases)
    delta = sum(r["delta"] for r in releases)
    selection = sum(_selection_delta(r["detail"], r["delta"]) for r in releases)
    return rho, delta, selection, loss(rho, delta, selection)


def loss(rho, delta, selection_delta=0.0):
    """ε of ρ-zCDP with ``selection_delta`` spent already, converted at ``delta`` in total (OpenDP's map)."""
    if rho <= 0:
        return 0.0
    return _epsilon_of(rho, delta - selection_delta)


def period(level, day):
    """(first, last) day of the period of ``level`` that holds ``day``."""
    if level == "day":
        return day, day
    if level == "week":
        first = day - datetime.timedelta(days=day.weekday())
        return first, first + datetime.timedelta(days=6)
    first = _BLOCK_EPOCH + datetime.timedelta(days=28 * ((day - _BLOCK_EPOCH).days // 28))
    return first, first + datetime.timedelta(days=27)


def _days(first, last):
    return [first + datetime.timedelta(days=n) for n in range((last - first).days + 1)]


def _level(release):
    return release["detail"].get("level", "day")  # releases before the calendar levels were daily


def releases_covering(store, project_id):
    """{day: [every release that contains the day's user-days]}: the day's own, its week's and its block's."""
    by_day = store.releases_by_day(project_id)
    for release in store.period_releases(project_id):
        for day in _days(release["first_day"], release["last_day"]):
            by_day.setdefault(day, []).append(release)
    return by_day


def _spent(releases):
    return sum(_release_rho(r["detail"], r["epsilon"]) for r in releases), sum(r["delta"] for r in releases)


def _share(project, covering, level, complete):
    """(ρ, δ) a release of ``level`` may spend, or None: its share, or a day's whole budget, is spent.

    ``covering`` holds, for each day of the period, the releases that contain it already. Every
    user-day's releases together stay within its budget: a period's release takes the level's
    share, or less when a day of it spent more before (releases made before the calendar levels).
    """
    total_rho = budget_rho(project["epsilon_per_day"])
    shares, partial = LEVEL_SHARE[project["profile"]], PARTIAL_SHARE[project["profile"]]
    rho = shares[level] * total_rho
    delta = shares[level] * DELTA_PER_USER_DAY
    for releases in covering:
        own = [r for r in releases if _level(r) == level]
        if level == "day" and not complete:
            # One partial release per day, from the reserved share (the complete day gets the rest).
            if own:
                return None
            rho, delta = partial * total_rho, partial * DELTA_PER_USER_DAY
        own_rho, own_delta = _spent(own)
        all_rho, all_delta = _spent(releases)
        rho = min(rho - own_rho, total_rho - all_rho)
        delta = min(delta - own_delta, DELTA_PER_USER_DAY - all_delta)
    if rho <= 1e-9 * total_rho or delta <= 0:
        return None
    return rho, delta


def _known(store, project_id, first, last, public):
    """Names released without a threshold, and the users published of each feature, for a release of [first, last].

    Public names, and names published from ``KNOWN_DAYS`` before ``first`` up to ``last`` (daily,
    weekly or 4-week; for a week or block, its own days' releases too): published numbers are
    public, so using them costs nothing. A block's user-days keep the features its days' releases
    published as popular: without them, at 1,000 daily users its top 10 features lost 8% of their
    users to the feature bound.
    """
    known = {metric: set(names) for metric, names in (public or {}).items()}
    popularity = {}
    since, until = first - datetime.timedelta(days=KNOWN_DAYS), last
    found = list(store.published_cells(project_id, since, until))
    for level in LEVELS[1:]:
        found += store.published_period_cells(project_id, level, since - datetime.timedelta(days=27), until)
    for _, metric, key, value, _ in found:
        known.setdefault(metric, set()).add(key)
        if metric == "users":
            popularity[key] = popularity.get(key, 0) + value
    return known, popularity


def _cells(chosen, queries, known):
    """Run the release's queries in the composition's order; its cells, shifts of known names removed."""
    cells = []
    for metric in chosen.metrics:
        if metric == "dau":
            cells.append({"metric": "dau", "key": "", "value": queries(chosen.dau()), "scale": chosen.sigma["dau"]})
            continue
        if metric == "calls":
            continue  # queried right after users, for the names users released
        names = known.get(metric, set())
        released = queries(chosen.keyed(metric, names))
        if metric not in chosen.threshold:  # public names only: a vector in the names' order
            released = dict(zip(sorted(names), released))
        shift = chosen.shift(metric)
        if metric == "users" and "calls" in chosen.metrics:
            keys = sorted(released)
            # A feature's calls are its users (each called it once) plus the calls beyond the
            # first; both noises are Gaussian and independent, so their sum is Gaussian with σ = hypot.
            scale = math.hypot(chosen.sigma["users"], chosen.sigma["calls"])
            cells += [{"metric": "calls", "key": k, "value": extra + released[k] - (shift if k in names else 0),
                       "scale": scale} for k, extra in zip(keys, queries(chosen.calls(keys)))]
        # Stored unclamped, shift removed: sums over days stay unbiased; views clamp what they show.
        cells += [{"metric": metric, "key": k, "value": v - shift if k in names else v, "scale": chosen.sigma[metric]}
                  for k, v in sorted(released.items())]
    return cells


def _mean_daily_users(store, project_id, days):
    """Mean of the daily users the days' own releases published (public: using it costs nothing)."""
    published = [v for _, metric, _, v, _ in store.published_cells(project_id, days[0], days[-1]) if metric == "dau"]
    return sum(published) / len(days)


def release(store, project, level, day, complete=True, bounds=Bounds(), public=None):
    """Release the period of ``level`` that holds ``day``; return the (ε, δ) of its most spent user-day, or None.

    ``public`` ({metric: names}) are names known without looking at any report (registered by the
    author, or a fixed vocabulary): released with noise and without a threshold, whatever their
    count; other names go through partition selection.

    None: the budget allows no such release (a second partial release of a day, a period already
    released, or days whose budget releases before the calendar levels spent).
    """
    project_id = project["project_id"]
    first, last = period(level, day)
    days = _days(first, last)
    covering = releases_covering(store, project_id)
    if level != "day" and any(_level(r) == level for r in covering.get(first, [])):
        return None
    share = _share(project, [covering.get(d, []) for d in days], level, complete)
    if share is None:
        return None
    rho_share, delta_share = share
    if level == "block" and _mean_daily_users(store, project_id, days) >= BLOCK_USERS:
        bounds = dataclasses.replace(bounds, calls_l2=max(bounds.calls_l2, BLOCK_CALLS_L2))
    chosen = level_plan(project["profile"], level, rho_share, delta_share, bounds)
    known, popularity = _known(store, project_id, first, last, public)
    # A release of public names only counts the known features: the bound keeps those.
    features = None if "users" in chosen.threshold else known.get("users", set())
    bounded = []
    for each in days:  # a user is recognised within a day only: each day's user-days are its own units
        bounded += user_days(store.reports_of_day(project_id, each), bounds, popularity, features)
    rho, selection = chosen.spent()  # OpenDP's own privacy map, not our arithmetic
    cells = _cells(chosen, chosen.composition()(bounded), known)
    epsilon = loss(rho, delta_share, selection)  # this release alone, at its share of δ
    detail = chosen.detail(rho, selection, level, project["profile"])
    if level == "day":
        before = [r for r in covering.get(day, []) if _level(r) == "day"]
        stored = store.record_release(project_id, day, epsilon, complete, cells, delta=delta_share, detail=detail,
                                      after=len(before))
    else:
        stored = store.record_period_release(project_id, level, first, last, epsilon, delta_share, detail, cells)
    if not stored:
        return None  # another publisher released it meanwhile; its account is read again next time
    covering = releases_covering(store, project_id)
    accounts = [day_account(covering.get(d, [])) for d in days]
    _, total_delta, _, total_epsilon = max(accounts, key=lambda a: a[3])
    return total_epsilon, total_delta


def release_day(store, project, day, complete, bounds=Bounds(), public=None):
    """Release one day of one project (see ``release``)."""
    return release(store, project, "day", day, complete, bounds, public)


def grows(store, project, first):
    """Whether the released 4-week block from ``first`` makes a small project large.

    Only a profile the collector chose (not one declared) and only from small to large: when the
    block's own release published at least ``LARGE_DAILY_USERS`` daily users on average (its count
    of user-days over 28 days; public, so deciding on it costs nothing). From the next day on, the
    project's daily releases carry features too.
    """
    if project["profile"] != "small" or project["profile_declared"]:
        return False
    published = [value for _, metric, _, value, _ in store.published_period_cells(
        project["project_id"], "block", first, first) if metric == "dau"]
    return bool(published) and published[0] / 28 >= LARGE_DAILY_USERS


def budget(store, project):
    """The privacy account of a project, as shown on the dashboard and in the API.

    Per user-day in total (every release of it together), and per person over ``LOSS_DAYS``: a
    person active on each of n days composes n user-days, each at most the budget (or, for days
    released before the total budget, what they actually spent, if more).
    """
    accounts = [day_account(releases) for releases in releases_covering(store, project["project_id"]).values()]
    epsilon, delta = project["epsilon_per_day"], DELTA_PER_USER_DAY
    rho = budget_rho(epsilon)
    worst_rho = max([rho] + [a[0] for a in accounts])
    worst_delta = max([delta] + [a[1] for a in accounts])
    worst_selection = max([delta * _SELECTION_DELTA] + [a[2] for a in accounts])
    latest = store.latest_release_detail(project["project_id"])
    # Nothing released yet: describe what the next release will use, without calibrating it here.
    detail = latest or {"mechanism": _MECHANISM, "bounds": dataclasses.asdict(Bounds())}
    # New names appear in weekly and 4-week releases only: their latest thresholds of feature users.
    thresholds = dict.fromkeys(SELECTING)
    for period_release in store.period_releases(project["project_id"]):
        thresholds[period_release["level"]] = (period_release["detail"].get("threshold") or {}).get("users")
    per_person = {}
    for days in LOSS_DAYS:
        per_person[str(days)] = {"epsilon": round(loss(days * worst_rho, days * worst_delta,
                                                       days * worst_selection), 4),
                                 "delta": days * worst_delta}
    return {
        "unit": "user-day",
        "mechanism": detail.get("mechanism", "discrete Laplace (OpenDP make_laplace on integers)"),
        "epsilon_per_user_day": epsilon,
        "delta_per_user_day": delta,
        "rho_per_user_day": rho,
        "partial_share": PARTIAL_SHARE[project["profile"]],
        "epsilon_max_user_day": round(max((a[3] for a in accounts), default=0.0), 6),
        "delta_max_user_day": max((a[1] for a in accounts), default=0.0),
        "days_released": len(accounts),
        "per_person": per_person,
        "bounds": detail.get("bounds"),
        "new_name_threshold": thresholds,
    }


def half_width(noises, confidence=0.95):
    """Half-width of the interval that holds the noise of a sum of cells with ``confidence``.

    ``noises`` are (kind, scale) pairs. A sum of Gaussians is Gaussian: z·sqrt(Σσ²). A single
    Laplace cell (releases before schema 2) uses its exact tail, P(|X| > t) = e^(-t/b); sums that
    include Laplace cells use the normal approximation with the same variance (2b² each).
    """
    noises = list(noises)
    if not noises:
        return 0
    if len(noises) == 1 and noises[0][0] == "laplace":
        return math.ceil(noises[0][1] * math.log(1 / (1 - confidence)))
    variance = sum(s * s if kind == "gaussian" else 2 * s * s for kind, s in noises)
    z = _Z95 if confidence == 0.95 else NormalDist().inv_cdf(0.5 + confidence / 2)
    return math.ceil(z * math.sqrt(variance))
