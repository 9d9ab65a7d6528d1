"""The whole system on one machine: collector, an opted-in package, its users, and the dashboard.

Steps, each printed as it runs:

1. a venv with telly_autoinst[collector] installed from this checkout (a real wheel, .pth included);
2. a registered project, declared large (its daily releases carry features too), and the sample
   package ``wordstats`` (no telemetry code, only ``[tool.telly]``) installed from a checkout whose
   ``project_id`` is that project's, its feature keys registered from ``--dry-run --json``;
3. a history: ``--simulated`` users a day (default 2,000) over the last ``--days`` days (default
   14), whose reports go over HTTP, in bulk, to the real collector application with its clock
   replaying each day (benchmarks/_clocked_collector.py). A real client process per simulated
   user would take hours; the numbers would be the same;
4. a collector on 127.0.0.1 (``collector serve``) with its embedded SQLite store;
5. ``--dry-run``, then the sample program run by ``--users`` real users (default 12, one HOME
   each) through the real client, the first with TELLY_SHOW_ME=1 so you can see exactly what
   leaves the process; today's simulated users join them;
6. ``collector publish --through-now`` and the published numbers from the JSON API;
7. a small project beside it (``--small`` users a day, default 60, over 28 days; profile small, so
   its days carry daily users only and its weeks and 4-week blocks the rest): its feature keys
   registered from the listing ``--dry-run --json`` prints, its history brought in with
   ``collector import``, released with ``collector publish --through``, and its numbers for the
   latest complete 4-week block (``?days=28``);
8. the dashboard URLs; the collector keeps running until Ctrl-C (``--no-wait`` stops at once).

With thousands of daily users the noise is a few percent of each number; with the 12 real users
alone, differential privacy would hide almost everything (as it should).
"""

import argparse
import datetime
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from benchmarks import _workload  # noqa: E402
from benchmarks._clocked_collector import ClockedCollector  # noqa: E402

# The features of demo/sample_project as the client names them, and how popular each is.
FEATURES = [("wordstats.analysis.count_words", 1.0), ("wordstats.analysis.top_words", 0.7),
            ("wordstats.analysis.Analyzer", 0.5), ("wordstats.analysis.Analyzer.from_lines", 0.45),
            ("wordstats.analysis.Analyzer.add", 0.45), ("wordstats.analysis.Analyzer.report", 0.45),
            ("wordstats.reading_time", 0.3)]


def _step(text):
    print(f"\n==> {text}", flush=True)


def _run(cmd, **kwargs):
    return subprocess.run(cmd, check=True, text=True, **kwargs)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # the server answers
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the collector did not answer at {url} within {timeout:.0f} s")


def _simulated(project_id, count, rng, day_index, days, first_user=0):
    """Report bodies of ``count`` simulated users of wordstats on one day."""
    bodies = []
    for user in range(first_user, first_user + count):
        day = _workload.user_day(rng, FEATURES, day_index, days)
        bodies += [json.dumps(r).encode() for r in _workload.reports(project_id, "wordstats", user, day)]
    return bodies


def _small_project(python, collector_env, client_env, work, daily, rng, today):
    """A project with ``daily`` users over 28 days: keys registered, history imported, released."""
    _step(f"a small project: {daily} users a day; keys registered, history imported, released through yesterday")
    created = json.loads(_run([python, "-m", "telly_autoinst", "collector", "project", "create", "wordstats (small)",
                               "--json"], env=collector_env, capture_output=True).stdout)
    small_id = created["project_id"]
    # What --dry-run --json lists for wordstats, relabelled with the small project's id.
    listing = json.loads(_run([python, "-m", "telly_autoinst", "--dry-run", "--json"], capture_output=True,
                              env={**client_env, "HOME": str(work / "users" / "u0")}).stdout)
    for entry in listing["distributions"]:
        entry["project_id"] = small_id
    (work / "small-keys.json").write_text(json.dumps(listing))
    _run([python, "-m", "telly_autoinst", "collector", "project", "register-keys", "--project", small_id,
          str(work / "small-keys.json")], env=collector_env)
    # The start of the latest complete 4-week block, from the collector itself (the demo's own
    # Python has none of the collector's dependencies).
    first = datetime.date.fromisoformat(_run(
        [python, "-c", "import datetime, sys; from telly_autoinst_collector.dashboard import period; "
                       "print(period(datetime.date.fromisoformat(sys.argv[1]), 28)[0])", today.isoformat()],
        env=collector_env, capture_output=True).stdout.strip())
    days = [first + datetime.timedelta(days=n) for n in range((today - first).days)]
    with open(work / "small-history.jsonl", "w") as out:
        for index, day in enumerate(days):
            for user in range(daily):
                simulated = _workload.user_day(rng, FEATURES, index, len(days))
                for report in _workload.reports(small_id, "wordstats", f"small/{user}", simulated):
                    out.write(json.dumps({"day": day.isoformat(), "report": report}) + "\n")
    done = _run([python, "-m", "telly_autoinst", "collector", "import", "--project", small_id,
                 str(work / "small-history.jsonl")], env=collector_env, capture_output=True)
    print(done.stdout.strip().splitlines()[-1])
    _run([python, "-m", "telly_autoinst", "collector", "publish", "--project", small_id, "--through",
          days[-1].isoformat()], env=collector_env, stdout=subprocess.DEVNULL)
    print(f"released {days[0]} to {days[-1]}; its latest complete 4-week block from the JSON API (?days=28):")
    return small_id, created["read_token"]


def _summary(stats):
    """The published numbers as a new user reads them on the dashboard, with their noise."""
    cards = stats["cards"]
    latest = cards.get("today") or {}
    for name, label in (("today", f"daily users, {latest.get('day')}{' (partial)' if latest.get('partial') else ''}"),
                        ("week", "daily users, 7-day average"), ("month", "daily users, 30-day average"),
                        ("period", f"daily users, {stats['first_day']} to {stats['last_day']}")):
        card = cards.get(name)
        if card and card["value"] is not None:
            print(f"  {label:32} {card['value']:>7,} ±{card['band']:,} at 95%")
    print(f"  {'feature':42} {'user-days':>16} {'calls':>18} {'calls/user':>10}")
    for f in stats["features"]["by_users"]:
        if f["users"] is None:
            print(f"  {f['key']:42} {'fewer than ' + str(f['fewer_than']):>16}")
            continue
        print(f"  {f['key']:42} {f['users']:>9,} ±{f['users_band']:<5,} {f['calls']:>10,} ±{f['calls_band']:<6,} "
              f"{f['calls_per_user']:>10}")
    versions = ", ".join(f"{r['key']}: {r['users'] if r['users'] is not None else 'fewer than ' + str(r['fewer_than'])}"
                         for r in stats["versions"]["rows"])
    print(f"  versions (user-days): {versions}")
    p = stats["privacy"]
    person = p["per_person"]["28"]
    weekly = p["new_name_threshold"]["week"]
    print(f"  privacy: ε {p['epsilon_per_user_day']} and δ {p['delta_per_user_day']} per user-day in total; "
          f"ε spent at most {p['epsilon_max_user_day']} by any user-day; one person active on 28 days: "
          f"ε {person['epsilon']} at δ {person['delta']:g}"
          + (f"; a name nobody registered needs about {weekly} user-days of a week" if weekly else ""))


def _stop_on_signal(signum, frame):
    """SIGTERM or SIGHUP ends the demo like Ctrl-C does: through the ``finally`` that stops the collector.

    Python's default for these signals ends the process at once, leaving the collector serving.
    """
    raise SystemExit(128 + signum)


def _die_with_the_demo():
    """Run in the collector's child before exec: on Linux, the kernel sends it SIGTERM when the
    demo dies, even by SIGKILL, which no handler sees."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def main():
    for name in ("SIGTERM", "SIGHUP"):
        signal.signal(getattr(signal, name), _stop_on_signal)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=os.environ.get("TELLY_DEMO_DIR"),
                        help="working directory (default: a temp dir)")
    parser.add_argument("--users", type=int, default=12, help="real client runs today (default 12)")
    parser.add_argument("--simulated", type=int, default=2000,
                        help="simulated users per day, posted in bulk (default 2000)")
    parser.add_argument("--days", type=int, default=14, help="days of simulated history before today (default 14)")
    parser.add_argument("--small", type=int, default=60, help="daily users of the small project (default 60; 0: none)")
    parser.add_argument("--no-wait", action="store_true", help="stop the collector at the end instead of serving")
    args = parser.parse_args()

    work = Path(args.dir or tempfile.mkdtemp(prefix="telly-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    venv = work / "venv"
    python = str(venv / "bin" / "python")

    _step(f"venv with telly_autoinst and its collector from this checkout, in {venv}")
    if not (venv / "bin" / "python").exists():
        _run([sys.executable, "-m", "venv", str(venv)])
    _run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(ROOT), str(ROOT / "collector")])

    db_url = f"sqlite:///{work / 'collector.db'}"
    collector_env = {**os.environ, "TELLY_COLLECTOR_DB": db_url, "TELLY_DISABLE": "1"}
    # Thousands of daily users: declared large, so that its daily releases carry features too.
    created = json.loads(_run([python, "-m", "telly_autoinst", "collector", "project", "create", "wordstats",
                               "--profile", "large", "--json"], env=collector_env, capture_output=True).stdout)
    project_id, token = created["project_id"], created["read_token"]
    print(f"registered project {project_id} (profile large)")

    _step("the author's checkout of wordstats: [tool.telly] gets the project id; no code changes")
    checkout = work / "wordstats-checkout"
    shutil.rmtree(checkout, ignore_errors=True)
    shutil.copytree(DEMO / "sample_project", checkout, ignore=shutil.ignore_patterns("*.egg-info", "build"))
    pyproject = checkout / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("REPLACED-BY-DEMO", project_id))
    print(pyproject.read_text().split("[tool.telly]")[1].strip().join(["[tool.telly]\n", ""]))
    _run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(checkout)])
    _step("the author registers wordstats' feature keys from `--dry-run --json`: public names, released daily")
    (work / "users" / "u0").mkdir(parents=True, exist_ok=True)
    listing = _run([python, "-m", "telly_autoinst", "--dry-run", "--json"], capture_output=True,
                   env={**{k: v for k, v in os.environ.items() if not k.startswith("TELLY_")},
                        "HOME": str(work / "users" / "u0")}).stdout
    (work / "keys.json").write_text(listing)
    _run([python, "-m", "telly_autoinst", "collector", "project", "register-keys", "--project", project_id,
          str(work / "keys.json")], env=collector_env)

    rng = random.Random(2026)
    today = datetime.datetime.now(datetime.timezone.utc).date()
    if args.days > 0 and args.simulated > 0:
        _step(f"history: {args.simulated:,} simulated users a day over the {args.days} days before today, "
              f"posted in bulk over HTTP to the collector with its clock replaying each day")
        history = ClockedCollector(python, db_url, work, env=collector_env)
        try:
            for index in range(args.days):
                day = today - datetime.timedelta(days=args.days - index)
                history.set(datetime.datetime.combine(day, datetime.time(12), datetime.timezone.utc))
                bodies = _simulated(project_id, args.simulated, rng, index, args.days + 1)
                _workload.post_all(history.url, bodies)
                print(f"  {day}: {len(bodies):,} reports of {args.simulated:,} users stored", flush=True)
        finally:
            history.stop()

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    _step(f"collector on {base} (SQLite store {work / 'collector.db'})")
    log = open(work / "collector.log", "w")
    server = subprocess.Popen([python, "-m", "telly_autoinst", "collector", "serve", "--host", "127.0.0.1",
                               "--port", str(port)], env=collector_env, stdout=log, stderr=subprocess.STDOUT,
                              preexec_fn=_die_with_the_demo)
    try:
        _wait_for(f"{base}/healthz")
        client_env = {k: v for k, v in os.environ.items() if not k.startswith("TELLY_") and k != "DO_NOT_TRACK"}
        client_env.update({"TELLY_HTTP_SERVER": base, "TELLY_STORAGE_TYPE": "http", "CI": "false"})
        _step("python -m telly_autoinst --dry-run")
        _run([python, "-m", "telly_autoinst", "--dry-run"], env={**client_env, "HOME": str(work / "users" / "u0")})

        _step(f"{args.users} real users run a program that uses wordstats; user 0 has TELLY_SHOW_ME=1")
        for user in range(args.users):
            home = work / "users" / f"u{user}"
            home.mkdir(parents=True, exist_ok=True)
            env = {**client_env, "HOME": str(home)}
            if user == 0:
                env["TELLY_SHOW_ME"] = "1"
            proc = subprocess.run([python, str(DEMO / "use_wordstats.py"), str(user)], env=env, text=True,
                                  capture_output=True)
            if user == 0:
                print(proc.stdout + proc.stderr)
            if proc.returncode != 0:
                raise SystemExit(f"user {user}'s program failed:\n{proc.stderr}")
        print(f"{args.users} runs done")
        if args.simulated > args.users:
            today_users = args.simulated - args.users
            _workload.post_all(base, _simulated(project_id, today_users, rng, args.days, args.days + 1,
                                                first_user=10**6))
            print(f"and {today_users:,} simulated users of today, posted in bulk")

        _step("collector publish --through-now (differentially private release, spends budget)")
        _run([python, "-m", "telly_autoinst", "collector", "publish", "--through-now", "--project", project_id],
             env=collector_env, stdout=subprocess.DEVNULL)
        print(f"released the {args.days} days of history and today's partial day")

        _step("published numbers from the JSON API (± is the 95% noise interval)")
        request = urllib.request.Request(f"{base}/api/v1/projects/{project_id}/stats",
                                         headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            _summary(json.load(response))
        print(f"\nThese are {args.simulated:,} simulated users a day (bulk reports) plus {args.users} real client "
              f"runs today; with only a handful of users the noise would hide almost everything.")

        small = _small_project(python, collector_env, client_env, work, args.small, rng, today) if args.small else None
        if small is not None:
            request = urllib.request.Request(f"{base}/api/v1/projects/{small[0]}/stats?days=28",
                                             headers={"Authorization": f"Bearer {small[1]}"})
            with urllib.request.urlopen(request, timeout=30) as response:
                _summary(json.load(response))

        _step("dashboards")
        print(f"open {base}/projects/{project_id}")
        print(f"read token: {token}")
        if small is not None:
            print(f"small project (its page opens on the latest 4 weeks): open {base}/projects/{small[0]}")
            print(f"read token: {small[1]}")
        if args.no_wait:
            return
        print("the collector keeps serving; Ctrl-C (or SIGTERM to the demo) stops it", flush=True)
        try:
            server.wait()
        except KeyboardInterrupt:
            pass
    finally:
        server.terminate()
        server.wait(10)
        log.close()


if __name__ == "__main__":
    main()
