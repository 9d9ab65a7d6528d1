"""Accuracy of the 4-week, weekly and daily views at 10 to 10,000 daily users, through the real collector.

The way a project's history reaches the numbers an author reads: `collector project create
--profile small|large`, `collector project register-keys` with the listing `--dry-run --json`
would print for the simulated package (all its feature keys, its versions), `collector import` of
the simulated reports (benchmarks/_workload.py), `collector publish --through`, and the stats API
of the served collector. Defaults throughout: ε = 1 and δ = 1e-6 per user-day in total,
--min-group 10. Two stages of a project's life:

- *first day*: a new project's one and only day, released and read as its 1-day view
  (``?days=1`` on that day);
- *steady state*: one ISO week and then a whole 4-week block of history, read the day after the
  block: ``?days=28`` (the block), ``?days=7`` (its last week), and its daily users day by day.
  The week before the block gives its first days what a project in its steady state has: names
  and popularity published before.

Figures are median relative errors against the exact truth of the simulated users over the same
days (calls before any clipping), and how many of the true top 10 features the API shows with a
number (a top-10 feature without one counts as 100% error). Medians pool every sample of
``--runs`` independent runs (fresh simulated users and fresh noise each) of a few projects side
by side; each row also gives the spread of the runs' own medians.

Usage: python benchmarks/accuracy_views.py [--scales 10,30,100,1000] [--profiles small,large]
[--stages first,steady] [--runs N] [--seed S] [--json PATH]. --json updates PATH: the rows
measured replace those of the same case, the others stay (so --scales 10000, about 600,000
reports a profile in its steady state, can be measured on its own). With ``--docs``, measures
nothing and rewrites the table of docs/accuracy.md from RESULTS. Not a timed test: the figures
depend on the noise drawn, not on the machine's speed.
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

# Daily users -> projects side by side in one run, on their first day and in their steady state
# (in the order of STAGES; more where a project is cheap to simulate, for more samples).
SCALES = {10: (6, 8), 30: (6, 6), 100: (6, 6), 1000: (4, 1), 10000: (2, 1)}
DEFAULT_SCALES = (10, 30, 100, 1000)  # 10,000 on request: about 600,000 reports a profile
PROFILES = ("small", "large")
STAGES = ("first", "steady")  # the order of SCALES' counts
PACKAGE = "simpkg"
# The targets (median relative error, %; shown: of the true top 10), by (view, metric) and
# the daily users they apply to. Below 1,000 daily users they are the small profile's (every new
# project's); from 1,000 on, both profiles'; the first day's are the large profile's.
_TARGETS = {
    30: {("28", "dau"): "<= 5", ("28", "top10_users"): "<= 12", ("28", "calls"): "<= 25", ("28", "shown"): ">= 8",
         ("7", "dau"): "<= 12"},
    100: {("28", "dau"): "<= 2", ("28", "top5_users"): "<= 3", ("28", "top10_users"): "<= 5", ("28", "calls"): "<= 15",
          ("28", "shown"): ">= 10", ("7", "top5_users"): "<= 8", ("1", "dau"): "<= 20"},
    1000: {("28", "top10_users"): "<= 2", ("28", "calls"): "<= 5", ("7", "top10_users"): "<= 3", ("1", "dau"): "<= 2.5",
           ("first", "top10_users"): "<= 12", ("first", "calls"): "<= 25"},
}
_LABELS = {"dau": "average daily users", "top5_users": "top-5 features' users", "top10_users": "top-10 features' users",
           "calls": "top-10 features' calls", "shown": "of the true top 10 shown"}
_VIEWS = {"first": "first day", "28": "steady state, 4-week view", "7": "steady state, weekly view",
          "1": "steady state, daily"}


def target(scale, profile, view, metric):
    """The issue's target for a row, or "" (a figure shown for context)."""
    if view == "first" and profile != "large":
        return ""
    if scale < 1000 and profile != "small":
        return ""
    return _TARGETS.get(min(scale, 1000), {}).get((view, metric), "")


def _cli(*args, workdir):
    done = subprocess.run([sys.executable, "-m", "telly_autoinst", "collector", *args], cwd=ROOT, check=True,
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=SOURCE_PATH, HOME=workdir))
    return done.stdout


def _relative(shown, true):
    return abs((shown or 0) - true) / true


def _create(name, profile, features, workdir, db_url):
    """A project of ``profile`` with the simulated package's keys and versions registered: (id, token)."""
    made = json.loads(_cli("project", "create", name, "--profile", profile, "--json", "--db", db_url,
                           workdir=workdir))
    listing = {"format": "telly-dry-run", "format_version": 1, "distributions": [
        {"distribution": PACKAGE, "version": _workload.VERSIONS[-1], "project_id": made["project_id"],
         "keys": [n for n, _ in features]}]}
    keys_file = os.path.join(workdir, f"keys-{made['project_id']}.json")
    with open(keys_file, "w") as out:
        json.dump(listing, out)
    _cli("project", "register-keys", "--project", made["project_id"], keys_file,
         "--versions", ",".join(_workload.VERSIONS[:-1]), "--db", db_url, workdir=workdir)
    return made["project_id"], made["read_token"]


def _import(project_id, scale, dates, features, rng, workdir, db_url):
    """Simulate ``scale`` users on each of ``dates`` and import their reports; return {day: truth}."""
    truths = {}
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
    return truths


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


def _days(first, last):
    return [first + datetime.timedelta(days=n) for n in range((last - first).days + 1)]


def _measure(scale, profiles, stages, rng, workdir):
    """{(profile, view): {metric: [errors]}} of SCALES[scale] projects of each profile and stage."""
    from telly_autoinst_collector import privacy

    db_url = f"sqlite:///{workdir}/views-{scale}.sqlite3"
    features = _workload.catalogue(PACKAGE)
    yesterday = datetime.datetime.now(datetime.timezone.utc).date() - datetime.timedelta(days=1)
    # The latest complete 4-week block (it ends before today), and the ISO week before it.
    block = privacy.period("block", privacy.period("block", yesterday)[1] - datetime.timedelta(days=28))
    steady_dates = _days(block[0] - datetime.timedelta(days=7), block[1])
    week = privacy.period("week", block[1])
    made = []  # (profile, stage, project_id, token, truths)
    for profile in profiles:
        for stage in stages:
            for number in range(SCALES[scale][STAGES.index(stage)]):
                project_id, token = _create(f"sim {scale} {profile} {stage} #{number}", profile, features, workdir,
                                            db_url)
                dates = steady_dates if stage == "steady" else [yesterday]
                made.append((profile, stage, project_id, token,
                             _import(project_id, scale, dates, features, rng, workdir, db_url)))
    _cli("publish", "--through", yesterday.isoformat(), "--db", db_url, workdir=workdir)
    collector = ClockedCollector(sys.executable, db_url, workdir, env=dict(os.environ, PYTHONPATH=SOURCE_PATH))
    errors = {}

    def bucket(profile, view):
        return errors.setdefault((profile, view), {m: [] for m in _LABELS})

    try:
        for profile, stage, project_id, token, truths in made:
            if stage == "first":
                collector.set(datetime.datetime.combine(yesterday, datetime.time(23), datetime.timezone.utc))
                _view_errors(_get(collector.url, project_id, token, 1), truths, yesterday, yesterday,
                             bucket(profile, "first"))
                continue
            # The day after the block: its latest complete block is the block, its latest week the block's last.
            collector.set(datetime.datetime.combine(block[1] + datetime.timedelta(days=1), datetime.time(12),
                                                    datetime.timezone.utc))
            month = _get(collector.url, project_id, token, 28)
            _view_errors(month, truths, *block, bucket(profile, "28"))
            _view_errors(_get(collector.url, project_id, token, 7), truths, *week, bucket(profile, "7"))
            for entry in month["dau"]:
                day = datetime.date.fromisoformat(entry["day"])
                bucket(profile, "1")["dau"].append(_relative(entry["value"], truths[day][0]))
    finally:
        collector.stop()
    return errors


def _summary(metric, runs):
    """(value, spread) of a metric's samples over the runs: the pooled median, and the runs' medians."""
    pooled = [value for run in runs for value in run]
    if metric == "shown":
        return statistics.median(pooled), [statistics.median(run) for run in runs]
    return round(100 * statistics.median(pooled), 1), [round(100 * statistics.median(run), 1) for run in runs]


def run(seed=None, scales=DEFAULT_SCALES, profiles=PROFILES, stages=STAGES, runs=3):
    rng = random.Random(seed)
    rows = []
    for scale in scales:
        measured = []
        for _ in range(runs):
            with tempfile.TemporaryDirectory(prefix="telly-accuracy-views-") as workdir:
                measured.append(_measure(scale, profiles, stages, rng, workdir))
        for profile in profiles:
            for view in _VIEWS:
                if (profile, view) not in measured[0]:
                    continue
                for metric in _LABELS:
                    samples = [errors[(profile, view)][metric] for errors in measured]
                    if not samples[0] or (view, profile) == ("first", "small") and metric not in ("dau", "shown"):
                        continue  # a small project's first day shows no feature: its errors say nothing more
                    value, spread = _summary(metric, samples)
                    how = "median count per project" if metric == "shown" else "median relative error (%)"
                    projects = SCALES[scale][STAGES.index("first" if view == "first" else "steady")]
                    rows.append(dict(_table.row(
                        f"{scale:,} daily users, {profile} profile, {_VIEWS[view]}: {_LABELS[metric]}",
                        f"{how}, {runs} run(s) x {projects} project(s)", value, target(scale, profile, view, metric),
                        f"{sum(map(len, samples))} samples; the runs' medians: {', '.join(map(str, spread))}"),
                        order=[scale, PROFILES.index(profile), list(_VIEWS).index(view), list(_LABELS).index(metric)]))
    return rows


def merge(old, new):
    """``old`` rows with those of ``new`` cases replaced, and new cases added, in the table's order."""
    cases = {row["case"]: row for row in old}
    cases.update((row["case"], row) for row in new)
    return sorted(cases.values(), key=lambda row: row.get("order", []))


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


def _numbers(text):
    return [int(n) for n in text.split(",")]


def _names(allowed):
    def parse(text):
        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = set(names) - set(allowed)
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown: {', '.join(sorted(unknown))}; choose from {', '.join(allowed)}")
        return names
    return parse


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, help="seed of the simulated users (the noise is never seeded)")
    parser.add_argument("--scales", type=_numbers, default=DEFAULT_SCALES,
                        help="daily-user counts, from 10,30,100,1000,10000 (default: 10,30,100,1000)")
    parser.add_argument("--profiles", type=_names(PROFILES), default=PROFILES, help="default: small,large")
    parser.add_argument("--stages", type=_names(STAGES), default=STAGES, help="default: first,steady")
    parser.add_argument("--runs", type=int, default=3, help="independent runs pooled into each median (default 3)")
    parser.add_argument("--json", help="update the rows of this results file (created if missing)")
    parser.add_argument("--docs", action="store_true", help=f"rewrite the table of {DOCS} from {RESULTS}")
    args = parser.parse_args()
    if args.docs:
        with open(RESULTS) as results, open(DOCS, encoding="utf-8") as page:
            text = docs_page(page.read(), json.load(results))
        with open(DOCS, "w", encoding="utf-8") as page:
            page.write(text)
        return
    unknown = set(args.scales) - set(SCALES)
    if unknown:
        parser.error(f"--scales: no such scale {sorted(unknown)}; choose from {', '.join(map(str, SCALES))}")
    rows = run(args.seed, args.scales, args.profiles, args.stages, args.runs)
    print(_table.format_table(rows))
    if args.json:
        old = []
        if os.path.exists(args.json):
            with open(args.json) as results:
                old = json.load(results)
        with open(args.json, "w") as out:
            json.dump(merge(old, rows), out, indent=2)
            out.write("\n")


if __name__ == "__main__":
    main()
