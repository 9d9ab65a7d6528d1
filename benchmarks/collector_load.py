"""Collector load: reports/s at zero errors, and p99 latency at half that rate; one worker, SQLite and PostgreSQL.

The collector runs as `python -m telly_autoinst collector serve` (one process, one worker) and the
load comes from Debian's `wrk` in a separate process on loopback, posting distinct valid v1
reports (a new report_id each) with keep-alive connections:

1. Capacity: closed loop at 64, 256, 512 and 1024 connections; the best rate whose run had no
   socket error and no non-2xx answer is "reports/s at zero errors".
2. Latency: each of 64 connections pauses between requests (calibrated on a short run) so that
   the offered load is half the capacity; wrk's p50/p99 of those requests are reported.
3. Check: the store holds exactly as many reports as were acknowledged.

Also measured: the CPU per report of the ingest handler alone (in process, no HTTP, no commit)
and of the batched insert, which bound the rate one core can reach; GET /healthz on the same
server (the HTTP stack alone, to read the figures as a ratio on a busy machine); and the stats
API over 30 days of `TELLY_BENCH_STATS_REPORTS` (default 1,000,000) stored reports, released
through the real publish path.

PostgreSQL is measured when TELLY_BENCH_POSTGRES_URL (or TELLY_TEST_POSTGRES_URL) names a server;
a fresh database is created and dropped. Usage: python benchmarks/collector_load.py [--quick],
or as one case of `python -m benchmarks --only collector_load`.
"""

import contextlib
import datetime
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The client and the collector (a distribution of its own in collector/), both from this checkout.
SOURCE_PATH = os.pathsep.join([ROOT, os.path.join(ROOT, "collector")])
sys.path[:0] = SOURCE_PATH.split(os.pathsep)

_LUA = r"""
local template = os.getenv("TELLY_BENCH_BODY")
local delay_ms = tonumber(os.getenv("TELLY_BENCH_DELAY_MS") or "0")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local counter, prefix = 0, nil
function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  prefix = string.format("%08x%08x", math.random(0, 0x7fffffff), math.random(0, 0x7fffffff))
end
function request()
  counter = counter + 1
  return wrk.format(nil, nil, nil, (template:gsub("REPORTID", prefix .. string.format("%016x", counter), 1)))
end
if delay_ms > 0 then function delay() return delay_ms end end
function done(summary, latency, requests)
  io.write(string.format('\nRESULT {"requests": %d, "duration_us": %d, "non2xx": %d, "errors": %d, ' ..
    '"p50_ms": %.3f, "p99_ms": %.3f}\n', summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""

_REPORT = {
    "schema_version": 1, "report_id": "REPORTID", "project_id": None, "created_at": "2026-11-29T01:02:03Z",
    "trigger": "exit", "exit_signal": None,
    "client": {"name": "telly_autoinst", "version": "0.1.0", "engine": "wrapt"},
    "interpreter": {"implementation": "CPython", "version": "3.11.7", "mode": "script"},
    "platform": {"os": "Linux", "release": "6.1.0", "machine": "x86_64", "cpu_model": "Intel Xeon", "cpu_count": 2,
                 "memory_mib": 2048, "container": False, "ci": False, "ci_vendor": None, "wsl": False},
    "package": {"name": "demo", "version": "1.4.0"},
    "packages": {"wrapt": "1.16.0", "requests": "2.32.3", "numpy": "2.1.0"},
    "stats": {"demo.core.load": 12, "demo.core.save": 3, "demo.Model.fit": 1, "demo.Model": 1, "demo.util.fmt": 40},
    "level2": {"user": "3f" * 32, "home": None, "machine": "a1" * 32, "host": None},
}


def _postgres_url():
    return os.environ.get("TELLY_BENCH_POSTGRES_URL") or os.environ.get("TELLY_TEST_POSTGRES_URL")


@contextlib.contextmanager
def _database(backend, workdir):
    if backend == "sqlite":
        yield f"sqlite:///{workdir}/bench.sqlite3"
        return
    import psycopg

    admin = _postgres_url()
    name = "telly_bench_" + secrets.token_hex(4)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield admin.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextlib.contextmanager
def _server(db_url, workdir, workers=1):
    import httpx

    env = dict(os.environ, HOME=workdir, PYTHONPATH=SOURCE_PATH)
    proc = subprocess.Popen([sys.executable, "-m", "telly_autoinst", "collector", "serve", "--port", "0",
                             "--db", db_url, "--rate-limit", "0", "--publish-interval", "0", "--min-group", "1",
                             "--workers", str(workers)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        base = re.search(r"listening on (http://\S+)", proc.stdout.readline()).group(1)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield base, proc.pid
    finally:
        proc.terminate()
        proc.wait(30)


def _wrk(url, connections, seconds, body=None, delay_ms=0):
    env = dict(os.environ, TELLY_BENCH_BODY=body or "", TELLY_BENCH_DELAY_MS=str(delay_ms))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_LUA)
    try:
        args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", url]
        if body is not None:
            args[-1:-1] = ["-s", script.name]
            out = subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout
            return json.loads(out.split("RESULT ", 1)[1])
        out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
        return {"rate": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    finally:
        os.unlink(script.name)


def _ticks(path):
    with open(path) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _cpu_snapshot(server_pid):
    """CPU ticks so far: the server's event-loop threads and its other threads (writer, thread
    pool), wrk and everything else run by this benchmark (its children), and the whole machine."""
    loop = other = 0
    pids = [server_pid]
    with contextlib.suppress(OSError):
        with open(f"/proc/{server_pid}/task/{server_pid}/children") as children:
            pids += [int(p) for p in children.read().split()]  # forked workers
    for pid in pids:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                ticks = _ticks(f"/proc/{pid}/task/{tid}/stat")
                if tid == str(pid):
                    loop += ticks
                else:
                    other += ticks
    with open("/proc/stat") as stat:
        cpu = [int(v) for v in stat.readline().split()[1:]]
    usage = os.times()
    return {"loop": loop, "other": other, "children": usage.children_user + usage.children_system,
            "machine_busy": sum(cpu) - cpu[3] - cpu[4], "machine_all": sum(cpu)}


def _cpu_spent(before, after, requests):
    """Microseconds of CPU per report, by whom, between two snapshots (see _cpu_snapshot)."""
    hz = os.sysconf("SC_CLK_TCK")
    per = 1e6 / max(1, requests)
    delta = {k: after[k] - before[k] for k in before}
    machine_share = delta["machine_busy"] / max(1, delta["machine_all"])
    return {
        "server_loop_us": round(delta["loop"] / hz * per, 1),
        "server_other_threads_us": round(delta["other"] / hz * per, 1),
        "wrk_us": round(delta["children"] * per, 1),
        # Every process on the machine (PostgreSQL's and other people's too), per report.
        "machine_us": round(delta["machine_busy"] / hz * per, 1),
        "machine_busy_share": round(machine_share, 2),
    }


def _rate(result):
    return result["requests"] / (result["duration_us"] / 1e6)


def _paced(url, body, target, seconds, connections=64):
    """A run offering about ``target`` reports/s: each connection pauses between its requests.

    wrk's pause comes on top of the response time, so the pause is calibrated on a short run first.
    """
    delay = connections * 1000 / target
    probe = _wrk(url, connections, 3, body, delay_ms=max(1, round(delay)))
    # per-connection period = pause + latency; solve for the pause that gives the target rate.
    latency = max(0.0, connections * 1000 / _rate(probe) - delay)
    return probe, _wrk(url, connections, seconds, body, delay_ms=max(1, round(delay - latency)))


def _ingest(backend, seconds, workers=1):
    from telly_autoinst_collector.registry import create_project
    from telly_autoinst_collector.store import open_store

    with tempfile.TemporaryDirectory() as workdir, _database(backend, workdir) as db_url:
        store = open_store(db_url)
        project_id, _ = create_project(store, "bench", "us")
        body = json.dumps(dict(_REPORT, project_id=project_id))
        with _server(db_url, workdir, workers) as (base, pid):
            url = base + "/api/v1/reports"
            warm = _wrk(url, 32, 2, body)  # warm-up: window key, caches, connections
            runs = {}
            for c in (64, 256, 512, 1024):
                before = _cpu_snapshot(pid)
                runs[c] = _wrk(url, c, seconds, body)
                runs[c]["cpu"] = _cpu_spent(before, _cpu_snapshot(pid), runs[c]["requests"])
            clean = {c: r for c, r in runs.items() if r["errors"] == 0 and r["non2xx"] == 0}
            best_c, best = max(clean.items(), key=lambda kv: _rate(kv[1])) if clean else (None, None)
            capacity = _rate(best) if best else 0.0
            probe = half = None
            if capacity:
                probe, half = _paced(url, body, capacity / 2, seconds)
            healthz = _wrk(base + "/healthz", 64, 3)["rate"]
        every = [r for r in (warm, *runs.values(), probe, half) if r]
        acked = sum(r["requests"] - r["non2xx"] for r in every)
        stored = len(store.report_ids(project_id))
        in_flight = sum(runs) + 32 + 64 * 2 + sum(r["errors"] for r in every)
        store.dispose()
    return {
        "workers": workers,
        "cpu_us_per_report_at_best": best["cpu"] if best else None,
        "reports_per_s_zero_errors": round(capacity),
        "best_connections": best_c,
        "runs": {
            str(c): {"rate": round(_rate(r)), "non2xx": r["non2xx"], "errors": r["errors"]} for c, r in runs.items()
        },
        "half_rate_offered": round(capacity / 2),
        "half_rate_achieved": round(_rate(half)) if half else None,
        "p50_ms_at_half_rate": half["p50_ms"] if half else None,
        "p99_ms_at_half_rate": half["p99_ms"] if half else None,
        "healthz_req_per_s": round(healthz),
        "ingest_to_healthz_ratio": round(capacity / healthz, 3) if healthz else None,
        # Every acknowledged report is stored; at most the requests wrk left in flight (or timed out) more.
        "stored_equals_acknowledged": acked <= stored <= acked + in_flight,
        "stored": stored,
        "acknowledged": acked,
    }


def _stats_latency(backend, n_reports):
    """Release 30 days of n_reports raw reports, then time GET stats (30 days) through the server."""
    import httpx

    from telly_autoinst_collector import jobs
    from telly_autoinst_collector.registry import create_project
    from telly_autoinst_collector.store import open_store

    with tempfile.TemporaryDirectory() as workdir, _database(backend, workdir) as db_url:
        store = open_store(db_url)
        project_id, token = create_project(store, "bench", "us")
        today = datetime.datetime.now(datetime.timezone.utc).date()
        per_day = n_reports // 30
        features = [f"demo.mod{i // 10}.func{i}" for i in range(200)]
        t0 = time.perf_counter()
        for back in range(30, 0, -1):
            day = today - datetime.timedelta(days=back)
            rows = []
            for i in range(per_day):
                stats = {features[(i * 7 + k * 13) % 200]: 1 + (i + k) % 9 for k in range(5)}
                rows.append({"project_id": project_id, "report_id": uuid.uuid4().hex, "day": day,
                             "uid": f"{i % (per_day // 3 + 1):032x}", "version": f"1.{i % 6}.0",
                             "python": f"CPython 3.{9 + i % 5}", "os": ("Linux", "Darwin", "Windows")[i % 3],
                             "arch": ("x86_64", "arm64")[i % 2], "stats": json.dumps(stats)})
            for start in range(0, len(rows), 20000):
                store.insert_reports(rows[start:start + 20000])
        loaded = time.perf_counter() - t0
        t0 = time.perf_counter()
        jobs.publish(store, [project_id], today)
        published = time.perf_counter() - t0
        timings = []
        with _server(db_url, workdir) as (base, _pid), httpx.Client(base_url=base, timeout=60) as client:
            headers = {"Authorization": f"Bearer {token}"}
            # 31 days ending today (not yet released) cover the 30 released days.
            url = f"/api/v1/projects/{project_id}/stats?days=31"
            client.get(url, headers=headers)
            for _ in range(30):
                t = time.perf_counter()
                response = client.get(url, headers=headers)
                timings.append((time.perf_counter() - t) * 1000)
                assert response.status_code == 200 and len(response.json()["dau"]) == 30
        store.dispose()
    timings.sort()
    return {
        "stored_reports": per_day * 30,
        "load_seconds": round(loaded, 1),
        "publish_seconds": round(published, 1),
        "stats_p50_ms": round(statistics.median(timings), 2),
        "stats_p99_ms": round(timings[int(len(timings) * 0.99) - 1], 2),
        "stats_max_ms": round(timings[-1], 2),
    }


def _cpu_per_report(backend, n=20000):
    """CPU per report of the ingest handler alone (in process: no HTTP, no commit) and of the batch insert."""
    import asyncio

    from telly_autoinst_collector.app import Config
    from telly_autoinst_collector.ratelimit import RateLimiter
    from telly_autoinst_collector.receive import IngestEndpoints
    from telly_autoinst_collector.registry import Registry, create_project
    from telly_autoinst_collector.store import open_store
    from telly_autoinst_collector.window import Window

    class _Rows:
        rows = []

        async def submit(self, rows):
            self.rows.extend(rows)

    with tempfile.TemporaryDirectory() as workdir, _database(backend, workdir) as db_url:
        store = open_store(db_url)
        project_id, _ = create_project(store, "bench", "us")
        sink = _Rows()
        endpoints = IngestEndpoints(Config(rate=0), Registry(store), RateLimiter(0, 0), Window(store), sink)
        bodies = [json.dumps(dict(_REPORT, project_id=project_id, report_id=uuid.uuid4().hex)).encode()
                  for _ in range(n)]

        async def handle_all():
            async def send(_message):
                pass

            for i, body in enumerate(bodies):
                if i == 1000:
                    start = time.process_time()

                async def receive(body=body):
                    return {"type": "http.request", "body": body, "more_body": False}

                await endpoints.v1({"headers": [(b"content-type", b"application/json"),
                                          (b"content-length", str(len(body)).encode())]}, receive, send)
            return (time.process_time() - start) / (n - 1000)

        handler = asyncio.run(handle_all())
        start = time.process_time()
        for i in range(0, len(sink.rows), 256):
            store.insert_reports(sink.rows[i:i + 256])
        insert = (time.process_time() - start) / len(sink.rows)
        store.dispose()
    return {"handler_us": round(handler * 1e6, 1), "insert_us_batches_of_256": round(insert * 1e6, 1)}


_LABEL = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
_INGEST_TARGET = {"sqlite": ">= 10000", "postgresql": ">= 5000"}


def _cpu_text(ingest):
    cpu = ingest["cpu_us_per_report_at_best"]
    if not cpu:
        return "CPU not measured"
    return (f"CPU per report at the best rate: server event loop {cpu['server_loop_us']} us, its other threads "
            f"{cpu['server_other_threads_us']} us, wrk {cpu['wrk_us']} us, whole machine {cpu['machine_us']} us "
            f"(busy {cpu['machine_busy_share']:.0%})")


def _ingest_rows(label, ingest):
    runs = ", ".join(f"{c} conns {r['rate']}/s" + (f" ({r['non2xx']} non-2xx, {r['errors']} errors)"
                                                    if r["non2xx"] or r["errors"] else "")
                     for c, r in ingest["runs"].items())
    backend = "postgresql" if "PostgreSQL" in label else "sqlite"
    # The targets are for one worker; more workers are measured to show how far one machine goes.
    target = _INGEST_TARGET[backend] if ingest["workers"] == 1 else ""
    return [
        {"case": f"collector ingestion, {label}", "measured": "reports/s at zero errors",
         "value": ingest["reports_per_s_zero_errors"], "target": target,
         "detail": f"{runs}; /healthz on the same server {ingest['healthz_req_per_s']}/s "
                   f"(ratio {ingest['ingest_to_healthz_ratio']}); stored == acknowledged: "
                   f"{ingest['stored_equals_acknowledged']} "
                   f"({ingest['stored']} stored, {ingest['acknowledged']} acked); {_cpu_text(ingest)}"},
        {"case": f"collector ingestion, p99 latency at half rate, {label}", "measured": "ms",
         "value": ingest["p99_ms_at_half_rate"], "target": "<= 50" if ingest["workers"] == 1 else "",
         "detail": f"offered {ingest['half_rate_offered']}/s, achieved {ingest['half_rate_achieved']}/s, "
                   f"p50 {ingest['p50_ms_at_half_rate']} ms"},
    ]


def _rows(backend, cpu, ingest, stats):
    """The figures of one backend as rows of the benchmarks table (case, measured, value, target, detail)."""
    label = _LABEL[backend]
    return _ingest_rows(label, ingest) + [
        {"case": f"dashboard JSON API, 30 days, {stats['stored_reports']:,} reports, {label}",
         "measured": "time to answer, p99 of 30 (ms)", "value": stats["stats_p99_ms"], "target": "<= 300",
         "detail": f"p50 {stats['stats_p50_ms']} ms, max {stats['stats_max_ms']} ms; loading took "
                   f"{stats['load_seconds']} s, publishing 30 days {stats['publish_seconds']} s"},
        {"case": f"collector CPU per report, {label}", "measured": "us (handler + batched insert)",
         "value": round(cpu["handler_us"] + cpu["insert_us_batches_of_256"], 1), "target": "",
         "detail": f"handler {cpu['handler_us']} us (parse, validate, re-key, queue; no HTTP), "
                   f"insert {cpu['insert_us_batches_of_256']} us per row in batches of 256"},
    ]


def run(quick=False):
    """Every measurement as rows of the benchmarks table (see benchmarks/_table.py)."""
    if not shutil.which("wrk"):
        raise SystemExit("benchmarks/collector_load.py needs wrk: apt-get install wrk")
    backends = ["sqlite"] + (["postgresql"] if _postgres_url() else [])
    seconds = 4 if quick else 10
    n_reports = int(os.environ.get("TELLY_BENCH_STATS_REPORTS", 100_000 if quick else 1_000_000))
    rows = []
    for backend in backends:
        rows += _rows(backend, _cpu_per_report(backend), _ingest(backend, seconds), _stats_latency(backend, n_reports))
    if _postgres_url():
        # `serve --workers 2` beside the one-worker row above: the same load, one database.
        rows += _ingest_rows("PostgreSQL, 2 workers", _ingest("postgresql", seconds, workers=2))
    if not _postgres_url():
        rows.append({"case": "collector ingestion, PostgreSQL", "measured": "reports/s at zero errors",
                     "value": None, "target": _INGEST_TARGET["postgresql"],
                     "detail": "not measured: set TELLY_BENCH_POSTGRES_URL (or TELLY_TEST_POSTGRES_URL)"})
    return rows


if __name__ == "__main__":
    for result in run(quick="--quick" in sys.argv):
        print(json.dumps(result))
