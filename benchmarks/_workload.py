"""Simulated users of one package: what they run on a day, as v1 reports, and the exact truth.

The model (stated in the README next to the accuracy table):

- a catalogue of features whose popularity follows Zipf's law (weight 1/rank);
- each user-day uses 1 to 5 features in most cases (1: 20%, 2: 25%, 3: 20%, 4: 15%, 5: 10%, and
  6 to 13 for the remaining 10%), drawn by popularity without replacement;
- calls of one feature in one user-day are log-normal, median 3 and σ 1 (mean 5; 1 in 20
  user-days calls a feature 15 times or more);
- a user-day is 1 to 3 runs (50/30/20%), each sending its own report with the features it used;
- versions, Pythons, operating systems and architectures are drawn from fixed shares, the newest
  version gaining users day after day.
"""

import concurrent.futures
import hashlib
import http.client
import math
import threading
import time
import urllib.parse
import uuid

VERSIONS = ("1.0.0", "1.1.0", "1.2.0")
PYTHONS = (("CPython", "3.9.18", 0.1), ("CPython", "3.10.13", 0.2), ("CPython", "3.11.7", 0.35),
           ("CPython", "3.12.1", 0.25), ("CPython", "3.13.0", 0.1))
SYSTEMS = (("Linux", 0.6), ("Darwin", 0.25), ("Windows", 0.15))
MACHINES = (("x86_64", 0.75), ("arm64", 0.25))
_FEATURES_PER_DAY = (0.20, 0.25, 0.20, 0.15, 0.10, 0.04, 0.02, 0.015, 0.01, 0.005, 0.005, 0.003, 0.002)
_RUNS = (0.5, 0.3, 0.2)


def catalogue(package, n=40):
    """``n`` feature names of ``package`` with their Zipf weights, most popular first."""
    kinds = ("api.load_", "api.save_", "core.Model_", "util.f_")
    names = [f"{package}.{kinds[i % len(kinds)]}{i}" for i in range(n)]
    return [(name, 1.0 / rank) for rank, name in enumerate(names, start=1)]


def _pick(rng, shares):
    """Index drawn from relative ``shares``."""
    point, total = rng.random() * sum(shares), 0.0
    for index, share in enumerate(shares):
        total += share
        if point < total:
            return index
    return len(shares) - 1


def _version_shares(day_index, days):
    """The newest version gains users over the simulated days, the oldest loses them."""
    progress = day_index / max(1, days - 1)
    return (0.45 - 0.25 * progress, 0.4, 0.15 + 0.25 * progress)


def user_day(rng, features, day_index=0, days=1):
    """One user's day: (version, (implementation, python version), os, arch, [calls of each run])."""
    wanted = min(len(features), 1 + _pick(rng, _FEATURES_PER_DAY))
    pool = list(features)
    chosen = []
    for _ in range(wanted):
        index = _pick(rng, [w for _, w in pool])
        chosen.append(pool.pop(index)[0])
    runs = [{} for _ in range(1 + _pick(rng, _RUNS))]
    for position, name in enumerate(chosen):
        calls = max(1, round(rng.lognormvariate(math.log(3), 1.0)))
        # Every run uses at least one feature; a feature's calls are spread over the runs using it.
        using = [runs[position % len(runs)]] + [r for r in runs if rng.random() < 0.3]
        for i in range(calls):
            run = using[i % len(using)]
            run[name] = run.get(name, 0) + 1
    python = PYTHONS[_pick(rng, [s for *_, s in PYTHONS])]
    return (VERSIONS[_pick(rng, _version_shares(day_index, days))], python[:2],
            SYSTEMS[_pick(rng, [s for _, s in SYSTEMS])][0], MACHINES[_pick(rng, [s for _, s in MACHINES])][0], runs)


def reports(project_id, package, user, day):
    """The v1 reports of one simulated user-day (``day`` from ``user_day``); ``user`` is any id."""
    version, (implementation, python), os_name, arch, runs = day
    digest = hashlib.sha256(f"simulated user {user}".encode()).hexdigest()
    for stats in runs:
        yield {
            "schema_version": 1, "report_id": uuid.uuid4().hex, "project_id": project_id,
            "created_at": "2026-11-29T12:00:00Z", "trigger": "exit", "exit_signal": None,
            "client": {"name": "telly_autoinst", "version": "0.1.0", "engine": "wrapt"},
            "interpreter": {"implementation": implementation, "version": python, "mode": "script"},
            "platform": {"os": os_name, "release": "", "machine": arch, "cpu_model": None, "cpu_count": 4,
                         "memory_mib": 8192, "container": False, "ci": False, "ci_vendor": None, "wsl": False},
            "package": {"name": package, "version": version}, "packages": {},
            "stats": stats, "level2": {"user": digest, "home": None, "machine": None, "host": None},
        }


def truth(days):
    """Exact numbers of a list of user-days: (daily users, {feature: users}, {feature: calls})."""
    users, calls = {}, {}
    for *_, runs in days:
        merged = {}
        for run in runs:
            for name, count in run.items():
                merged[name] = merged.get(name, 0) + count
        for name, count in merged.items():
            users[name] = users.get(name, 0) + 1
            calls[name] = calls.get(name, 0) + count
    return len(days), users, calls


def post_all(url, bodies, threads=16):
    """POST every report body to the collector at ``url``; raise unless each is stored (200).

    Standard library only (the demo runs outside any venv): one keep-alive connection per thread.
    A 503 (overloaded for a moment) is retried, as the client would; anything else is an error,
    since a lost report would bias the truth the figures are compared with.
    """
    parts = urllib.parse.urlsplit(url)
    local = threading.local()

    def send(body):
        for _ in range(50):
            if getattr(local, "conn", None) is None:
                local.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
            try:
                local.conn.request("POST", "/api/v1/reports", body=body, headers={"Content-Type": "application/json"})
                answer = local.conn.getresponse()
                text = answer.read()
            except (OSError, http.client.HTTPException):
                local.conn.close()
                local.conn = None
                time.sleep(0.2)
                continue
            if answer.status != 503:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("the collector kept answering 503 or dropping the connection")
        if answer.status != 200:
            raise RuntimeError(f"report refused: {answer.status} {text[:200]!r}")

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(send, bodies))
