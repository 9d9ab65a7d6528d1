"""Accuracy of the 4-week, weekly and daily views at 10 to 10,000 daily users, through the real collector.

The way a project's history reaches the numbers an author reads: `collector project create`,
`collector project register-keys` with the listing `--dry-run --json` would print for the
simulated package (all its feature keys, its versions), `collector import` of the simulated
reports (benchmarks/_workload.py) for every day from the start of the latest complete 4-week
block, `collector publish --through` yesterday, and the stats API of the served collector:
`?days=28` (the latest complete 4-week block), `?days=7` (the latest complete ISO week), and the
block's daily users day by day. Defaults throughout: ε = 1 and δ = 1e-6 per user-day in total,
--min-group 10.

Figures are median relative errors against the exact truth of the simulated users over the same
days (calls before any clipping), and how many of the true top 10 features the API shows with a
number (a top-10 feature without one counts as 100% error). Small scales run several projects
side by side, for more samples.

Usage: python benchmarks/accuracy_views.py [--scales 10,30,100,1000] [--json PATH]; with
``--docs``, measures nothing and rewrites the table of docs/accuracy.md from RESULTS (a run's --json).
Not a timed test: the figures depend on the noise drawn, not on the machine's speed.
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
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE_PATH = os.pathsep.join([ROOT, os.path.join(ROOT, "collector")])
sys.path[:0] = SOURCE_PATH.split(os.pathsep)

from benchmarks import _table, _workload  # noqa: E402
from benchmarks._clocked_collector import ClockedCollector  # noqa: E402

# (daily users, projects side by side)
SCALES = ((10, 4), (30, 4), (100, 3), (1000, 1), (10000, 1))
PACKAGE = "simpkg"
# The targets (median relative error, %; shown: of the true top 10).
TARGETS = {
    (30, "28", "dau"): "<= 5", (30, "28", "top10_users"): "<= 12", (30, "28", "calls"): "<= 25",
    (30, "28", "shown"): ">= 8", (30, "7", "dau"): "<= 12",
    (100, "28", "dau"): "<= 2", (100, "28", "top5_users"): "<= 3", (100, "28", "top10_users"): "<= 5",
    (100, "28", "calls"): "<= 15", (100, "28", "shown"): ">= 10", (100, "7", "top5_users"): "<= 8",
    (100, "1", "dau"): "<= 20",
    (1000, "28", "top10_users"): "<= 2", (1000, "28", "calls"): "<= 5", (1000, "7", "top10_users"): "<= 3",
    (1000, "1", "dau"): "<= 2.5",
}
_LABELS = {"dau": "average daily users", "top5_users": "top-5 features' users", "top10_users": "top-10 features' users",
           "calls": "top-10 features' calls", "shown": "of the true top 10 shown"}


def _cli(*args, workdir):
    done = subprocess.run([sys.executable, "-m", "telly_autoinst", "collector", *args], cwd=ROOT, check=True,
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=SOURCE_PATH, HOME=workdir))
    return done.stdout


def _relative(shown, true):
    return abs((shown or 0) - true) / true


def _period(today, days):
    from telly_autoinst_collector.dashboard import period

    return period(today, days)


def _simulate(scale, projects, dates, rng, workdir, db_url):
    """Create, register and import ``projects`` projects; return [(project_id, token, {day: truth})]."""
    features = _workload.catalogue(PACKAGE)
    listing = {"format": "telly-dry-run", "format_version": 1, "distributions": []}
    created = []
    for number in range(projects):
        made = json.loads(_cli("project", "create", f"sim {scale} #{number}", "--json", "--db", db_url,
                               workdir=workdir))
        listing["distributions"].append({"distribution": PACKAGE, "version": _workload.VERSIONS[-1],
                                         "project_id": made["project_id"], "keys": [n for n, _ in features]})
        created.append((made["project_id"], made["read_token"], {}))
    keys_file = os.path.join(workdir, f"keys-{scale}.json")
    with open(keys_file, "w") as out:
        json.dump(listing, out)
    for project_id, _, truths in created:
        _cli("project", "register-keys", "--project", project_id, keys_file,
             "--versions", ",".join(_workload.VERSIONS[:-1]), "--db", db_url, workdir=workdir)
        history = os.path.join(workdir, f"history-{project_id}.jsonl")
        with open(history, "w") as out:
            for index, date in enumerate(dates):
                simulated = [_workload.user_day(rng, features, index, len(dates)) for _ in range(scale)]
                truths[date] = _workload.truth(simulated)
                for user, day in enumerate(simulated):
                    for report in _workload.reports(project_id, PACKAGE, f"{project_id}/{user}", day):
                        out.write(json.dumps({"day": date.isoformat(), "report": report}) + "\n")
        _cli("import", "--project", project_id, history, "--db", db_url, workdir=workdir)
        os.unlink(history)
    _cli("publish", "--through", dates[-1].isoformat(), "--db", db_url, workdir=workdir)
    return created


def _view_errors(stats, truths, first, last, errors):
    """Add the errors of one view (stats of ``?days=N``) against the truth of its days."""
    days = [d for d in truths if first <= d <= last]
    true_dau = statistics.mean(truths[d][0] for d in days)
    users, calls = {}, {}
    for d in days:
        for name, count in truths[d][1].items():
            users[name] = users.get(name, 0) + count
        for name, count in truths[d][2].items():
            calls[name] = calls.get(name, 0) + count
    card = stats["cards"]["period"]
    errors["dau"].append(_relative(card and card["value"], true_dau))
    rows = {f["key"]: f for f in stats["features"]["by_users"] + stats["features"]["by_calls"]}
    top = sorted(users, key=lambda n: (-users[n], n))[:10]
    shown = 0
    for rank, name in enumerate(top):
        row = rows.get(name, {"users": None, "calls": None})
        shown += row["users"] is not None
        error = _relative(row["users"], users[name])
        errors["top10_users"].append(error)
        if rank < 5:
            errors["top5_users"].append(error)
        errors["calls"].append(_relative(row["calls"], calls[name]))
    errors["shown"].append(shown)


def _get(url, project_id, token, days):
    request = urllib.request.Request(f"{url}/api/v1/projects/{project_id}/stats?days={days}",
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=120) as answer:
        return json.load(answer)


def _measure(scale, projects, rng, workdir):
    db_url = f"sqlite:///{workdir}/views-{scale}.sqlite3"
    today = datetime.datetime.now(datetime.timezone.utc).date()
    block, week = _period(today, 28), _period(today, 7)
    first, last = block[0], max(block[1], week[1])
    dates = [first + datetime.timedelta(days=n) for n in range((last - first).days + 1)]
    created = _simulate(scale, projects, dates, rng, workdir, db_url)
    collector = ClockedCollector(sys.executable, db_url, workdir, env=dict(os.environ, PYTHONPATH=SOURCE_PATH))
    errors = {view: {m: [] for m in _LABELS} for view in ("28", "7", "1")}
    try:
        for project_id, token, truths in created:
            month = _get(collector.url, project_id, token, 28)
            _view_errors(month, truths, *block, errors["28"])
            _view_errors(_get(collector.url, project_id, token, 7), truths, *week, errors["7"])
            for entry in month["dau"]:
                day = datetime.date.fromisoformat(entry["day"])
                errors["1"]["dau"].append(_relative(entry["value"], truths[day][0]))
    finally:
        collector.stop()
    return errors


def run(seed=None, scales=None):
    rng = random.Random(seed)
    rows = []
    with tempfile.TemporaryDirectory(prefix="telly-accuracy-views-") as workdir:
        for scale, projects in SCALES:
            if scales and scale not in scales:
                continue
            errors = _measure(scale, projects, rng, workdir)
            for view, label in (("28", "4-week view"), ("7", "weekly view"), ("1", "daily")):
                for metric, values in errors[view].items():
                    if not values:
                        continue
                    if metric == "shown":
                        value, measured = statistics.median(values), "median count per project"
                    else:
                        value, measured = round(100 * statistics.median(values), 1), "median relative error (%)"
                    rows.append(_table.row(f"{scale:,} daily users, {label}: {_LABELS[metric]}", measured, value,
                                           TARGETS.get((scale, view, metric), ""),
                                           f"{len(values)} samples, {projects} project(s), registered keys"))
    return rows


RESULTS = os.path.join(ROOT, "benchmarks", "results", "accuracy_views.json")
DOCS = os.path.join(ROOT, "docs", "accuracy.md")
# The table of docs/accuracy.md sits between these lines, and is never edited by hand.
_BEGIN = "<!-- table: python benchmarks/accuracy_views.py --docs, from benchmarks/results/accuracy_views.json -->"
_END = "<!-- end of table -->"


def docs_page(page, rows):
    """``page`` with its table replaced by the markdown of ``rows``."""
    head, rest = page.split(_BEGIN, 1)
    _, tail = rest.split(_END, 1)
    return f"{head}{_BEGIN}\n\n{_table.format_markdown(rows)}\n\n{_END}{tail}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, help="seed of the simulated users (the noise is never seeded)")
    parser.add_argument("--scales", type=lambda text: [int(n) for n in text.split(",")],
                        help="only these daily-user counts (default: 10,30,100,1000,10000)")
    parser.add_argument("--json", help="also write the rows here")
    parser.add_argument("--docs", action="store_true", help=f"rewrite the table of {DOCS} from {RESULTS}")
    args = parser.parse_args()
    if args.docs:
        with open(RESULTS) as results, open(DOCS, encoding="utf-8") as page:
            text = docs_page(page.read(), json.load(results))
        with open(DOCS, "w", encoding="utf-8") as page:
            page.write(text)
        return
    rows = run(seed=args.seed, scales=args.scales)
    print(_table.format_table(rows))
    print()
    print(_table.format_markdown(rows))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rows, out, indent=2)


if __name__ == "__main__":
    main()
