"""Differentially private release of each day's numbers with OpenDP, and the privacy budget.

Privacy unit: one user-day (a re-keyed Level II id on one UTC day; a report without one is
its own user). Each user-day's contribution is bounded before any noise: 1 to daily active
users, 1 to one package version, one Python, one OS and one architecture, 1 to each of at most
``max_features`` features, and at most ``max_calls`` calls spread over those features. Every
metric of a day is one vector released through OpenDP's exact discrete (integer) Laplace
mechanism with scale = sensitivity / (epsilon share); the noisy value of each cell is drawn once
and stored, and everything shown afterwards is read from storage (post-processing, no further
cost). Each release of a day adds its epsilon to that day's account, capped per project.

Known limit: the set of feature and version names is released as observed (only their counts
are noised); the dashboard hides groups whose noisy count is below ``--min-group``.
"""

import dataclasses
import json
import math

import opendp.prelude as dp

# Integer Laplace (CKS20 sampler) lives behind OpenDP's "contrib" flag, like most of its constructors.
dp.enable_features("contrib")

# How a day's epsilon is split between its metrics; sums to 1.
SHARES = {"dau": 0.2, "users": 0.3, "calls": 0.2, "version": 0.1, "python": 0.1, "os": 0.05, "arch": 0.05}


@dataclasses.dataclass(frozen=True)
class Bounds:
    """Contribution bounds per user-day."""

    max_features: int = 20
    max_calls: int = 200

    def sensitivity(self, metric):
        return {"users": self.max_features, "calls": self.max_calls}.get(metric, 1)


def _user_days(rows):
    """Merge a day's raw rows by user: summed calls, and the first version/python/os/arch seen."""
    users = {}
    for uid, version, python, os_name, arch, stats in rows:
        entry = users.get(uid)
        if entry is None:
            entry = users[uid] = ({}, version, python, os_name, arch)
        calls = entry[0]
        for key, count in json.loads(stats).items():
            calls[key] = calls.get(key, 0) + count
    return users


def _clip_calls(chosen, max_calls):
    """Scale one user's calls down so they sum to at most max_calls (integers, floor)."""
    total = sum(chosen.values())
    if total <= max_calls:
        return chosen
    return {key: count * max_calls // total for key, count in chosen.items()}


def histograms(rows, bounds):
    """Exact bounded histograms {metric: {key: count}} of one day's raw rows."""
    hists = {metric: {} for metric in SHARES}
    users = _user_days(rows)
    hists["dau"][""] = len(users)
    for calls, version, python, os_name, arch in users.values():
        # Most-used features first; ties by name so the choice does not depend on dict order.
        chosen = dict(sorted(calls.items(), key=lambda kv: (-kv[1], kv[0]))[:bounds.max_features])
        for key, count in _clip_calls(chosen, bounds.max_calls).items():
            hists["users"][key] = hists["users"].get(key, 0) + 1
            hists["calls"][key] = hists["calls"].get(key, 0) + count
        for metric, key in (("version", version), ("python", python), ("os", os_name), ("arch", arch)):
            hists[metric][key] = hists[metric].get(key, 0) + 1
    return hists


def _mechanism(scale):
    space = dp.vector_domain(dp.atom_domain(T="i64")), dp.l1_distance(T="i64")
    return dp.m.make_laplace(*space, scale=scale)


def release_day(store, project, day, complete, bounds=Bounds()):
    """Release one day of one project; return the epsilon spent, or None if the cap forbids it."""
    project_id = project["project_id"]
    epsilon = project["epsilon_per_day"]
    spent = store.release_summary(project_id).get(day, (0.0, False))[0]
    if spent + epsilon > project["epsilon_cap_per_day"] * (1 + 1e-9):
        return None  # cheap early refusal; record_release checks again atomically
    hists = histograms(store.reports_of_day(project_id, day), bounds)
    cells, total = [], 0.0
    for metric, share in SHARES.items():
        sensitivity = bounds.sensitivity(metric)
        scale = sensitivity / (epsilon * share)
        mechanism = _mechanism(scale)
        # OpenDP's own privacy map, not our arithmetic, says what the release costs.
        total += mechanism.map(sensitivity)
        keys = sorted(hists[metric])
        if not keys:
            continue
        noisy = mechanism([hists[metric][k] for k in keys])
        # Stored unclamped: sums over days stay unbiased; the views clamp what they show at 0
        # (post-processing, no privacy cost).
        cells.extend({"metric": metric, "key": k, "value": v, "scale": scale} for k, v in zip(keys, noisy))
    if not store.record_release(project_id, day, total, complete, cells, cap=project["epsilon_cap_per_day"]):
        return None  # another publisher spent the day's remaining budget meanwhile
    return total


def budget(store, project):
    """The privacy account of a project, as shown on the dashboard and in the API."""
    summary = store.release_summary(project["project_id"])
    per_day = [eps for eps, _ in summary.values()]
    return {
        "unit": "user-day",
        "mechanism": "discrete Laplace (OpenDP make_laplace on integers)",
        "epsilon_per_release": project["epsilon_per_day"],
        "epsilon_cap_per_user_day": project["epsilon_cap_per_day"],
        "epsilon_spent_total": round(sum(per_day), 6),
        "epsilon_max_user_day": round(max(per_day), 6) if per_day else 0.0,
        "days_released": len(summary),
    }


def band(value, scale, confidence=0.95):
    """The symmetric interval holding the noise with at least ``confidence``: P(|X| > t) <= e^(-t/scale)."""
    half = math.ceil(scale * math.log(1 / (1 - confidence)))
    return max(0, value - half), value + half
