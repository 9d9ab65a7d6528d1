"""Accuracy of the published numbers at 100, 1,000 and 10,000 daily users, through the real collector (issue 10).

Simulated users (benchmarks/_workload.py) send v1 reports over HTTP to the real collector
application (benchmarks/_clocked_collector.py: the `collector serve` app with its clock replaying
past days), one report per run; `collector publish` then releases each day with the default
ε = 1 and δ = 1e-6 per user-day, and the published numbers are read back from the stats API,
one day at a time (`?days=1`), exactly as the dashboard reads them.

Figures are median relative errors against the exact truth of the simulated users: daily active
users, and the users and the calls of each day's 10 most used features (calls against the true
totals, before any clipping). A feature the API does not show counts as 0 (100% error). Days
after the first are "steady state": the names published on earlier days are public, so they no
longer go through the threshold of partition selection; the first day is reported apart in the
detail column. Several projects are simulated side by side at the small scales, for more samples.

Usage: python benchmarks/accuracy.py [--quick] [--json PATH], or `python -m benchmarks --only accuracy`.
Not a timed test: the figures do not depend on the machine's speed, only on the noise drawn.
"""

import argparse
import datetime
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The client and the collector (a distribution of its own in collector/), both from this checkout.
SOURCE_PATH = os.pathsep.join([ROOT, os.path.join(ROOT, "collector")])
sys.path[:0] = SOURCE_PATH.split(os.pathsep)

from benchmarks import _table, _workload  # noqa: E402
from benchmarks._clocked_collector import ClockedCollector  # noqa: E402

# (daily users, projects simulated side by side)
SCALES = ((100, 6), (1000, 5), (10000, 1))
TARGETS = {"dau": "<= 2", "users": "<= 10", "calls": "<= 20"}  # % at 1,000 daily users (issue 10)
_LABELS = {"dau": "daily active users", "users": "top-10 features' users", "calls": "top-10 features' calls"}
PACKAGE = "simpkg"


def _relative(shown, true):
    return abs(shown - true) / true


def _measure(scale, projects, days, rng, workdir):
    """Errors {metric: {"first": [...], "steady": [...]}} of ``projects`` projects of ``scale`` daily users."""
    import httpx

    from telly_autoinst_collector.registry import create_project
    from telly_autoinst_collector.store import open_store

    db_url = f"sqlite:///{workdir}/accuracy-{scale}.sqlite3"
    store = open_store(db_url)
    created = [create_project(store, f"sim {scale} #{i}", "us") for i in range(projects)]
    store.dispose()
    features = _workload.catalogue(PACKAGE)
    today = datetime.datetime.now(datetime.timezone.utc).date()
    dates = [today - datetime.timedelta(days=days - i) for i in range(days)]
    truths = {}
    collector = ClockedCollector(sys.executable, db_url, workdir, env=dict(os.environ, PYTHONPATH=SOURCE_PATH))
    try:
        for index, date in enumerate(dates):
            collector.set(datetime.datetime.combine(date, datetime.time(12), datetime.timezone.utc))
            bodies = []
            for project_id, _ in created:
                simulated = [_workload.user_day(rng, features, index, days) for _ in range(scale)]
                truths[(project_id, date)] = _workload.truth(simulated)
                for user, day in enumerate(simulated):
                    bodies += [json.dumps(r).encode() for r in _workload.reports(project_id, PACKAGE, user, day)]
            _workload.post_all(collector.url, bodies)
        # The real command, with the real clock: every simulated day is complete by now.
        subprocess.run([sys.executable, "-m", "telly_autoinst", "collector", "publish", "--db", db_url], cwd=ROOT,
                       env=dict(os.environ, PYTHONPATH=SOURCE_PATH, HOME=workdir), check=True, capture_output=True)
        errors = {metric: {"first": [], "steady": []} for metric in TARGETS}
        for index, date in enumerate(dates):
            collector.set(datetime.datetime.combine(date, datetime.time(23), datetime.timezone.utc))
            phase = "first" if index == 0 else "steady"
            for project_id, token in created:
                shown = httpx.get(f"{collector.url}/api/v1/projects/{project_id}/stats?days=1",
                                  headers={"Authorization": f"Bearer {token}"}, timeout=60).json()
                dau, users, calls = truths[(project_id, date)]
                (published,) = shown["dau"]
                errors["dau"][phase].append(_relative(published["value"] or 0, dau))
                rows = {f["key"]: f for f in shown["features"]["by_users"] + shown["features"]["by_calls"]}
                for name in sorted(users, key=lambda n: (-users[n], n))[:10]:
                    row = rows.get(name, {"users": 0, "calls": 0})
                    # A row under --min-group says "fewer than N" (None): no number shown, 100% error.
                    errors["users"][phase].append(_relative(row["users"] or 0, users[name]))
                    errors["calls"][phase].append(_relative(row["calls"] or 0, calls[name]))
    finally:
        collector.stop()
    return errors


def _percent(values):
    return round(100 * statistics.median(values), 1) if values else None


def run(quick=False, seed=None, scales=None):
    days = 3 if quick else 5
    rng = random.Random(seed)
    rows = []
    with tempfile.TemporaryDirectory(prefix="telly-accuracy-") as workdir:
        for scale, projects in SCALES:
            if scales and scale not in scales:
                continue
            errors = _measure(scale, projects, days, rng, workdir)
            for metric, label in _LABELS.items():
                steady, first = errors[metric]["steady"], errors[metric]["first"]
                rows.append(_table.row(
                    f"accuracy at {scale:,} daily users: {label}",
                    "median relative error (%), days after the first, ε = 1 per user-day",
                    _percent(steady), TARGETS[metric] if scale == 1000 else "",
                    f"{len(steady)} samples ({projects} project(s) x {days - 1} days); first day alone: "
                    f"{_percent(first)}% over {len(first)}; 90th percentile {_percent_at(steady, 0.9)}%"))
    return rows


def _percent_at(values, q):
    if not values:
        return None
    ordered = sorted(values)
    return round(100 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 simulated days instead of 5")
    parser.add_argument("--seed", type=int, help="seed of the simulated users (the noise is never seeded)")
    parser.add_argument("--scales", type=lambda text: [int(n) for n in text.split(",")],
                        help="only these daily-user counts, e.g. 1000 (default: 100,1000,10000)")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    rows = run(quick=args.quick, seed=args.seed, scales=args.scales)
    print(_table.format_table(rows))
    print()
    print(_table.format_markdown(rows))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rows, out, indent=2)


if __name__ == "__main__":
    main()
