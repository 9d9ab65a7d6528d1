"""Counted calls from 8 threads at once: counts exact, per-call cost close to one thread's."""

from benchmarks import _generate, _measure, _reports, _table
from benchmarks._setup import Lab, script

CASE = "threads: 8 x 200,000 counted calls"
KEY = f"{_generate.CALLS}.work"

# All threads wait on one barrier so they really run at once; the span is timed from the release
# to the last join, so thread start-up is not part of the per-call cost.
_SCRIPT = """\
import sys, threading, time
from {calls} import work
threads_n, calls_n = int(sys.argv[1]), int(sys.argv[2])
barrier = threading.Barrier(threads_n + 1)

def loop():
    f = work
    barrier.wait()
    for _ in range(calls_n):
        f()

threads = [threading.Thread(target=loop) for _ in range(threads_n)]
for t in threads:
    t.start()
barrier.wait()
start = time.perf_counter()
for t in threads:
    t.join()
print(time.perf_counter() - start)
"""


def run(quick=False, lab=None):
    """Per-call cost with 8 threads vs 1 thread, and the counts each run reported."""
    own = lab is None
    lab = lab or Lab()
    try:
        venv = lab.small.hooked
        path = script(lab, "threads.py", _SCRIPT.format(calls=_generate.CALLS))
        calls = 200_000
        runs = {"one": 0, "eight": 0}
        wrong = []

        def variant(label, threads):
            def sample():
                runs[label] += 1
                reports = lab.base / f"reports-threads-{label}-{runs[label]}"
                reports.mkdir(parents=True)
                env = lab.env(lab.home(), TELLY_STORAGE_TYPE="file", TELLY_LOCAL_STORAGE_PATH=reports)
                child = _measure.checked(_measure.spawn([venv.python, path, str(threads), str(calls)], env), label)
                counted = _reports.counted(reports, KEY)
                if counted != threads * calls:
                    wrong.append(f"{label}: {counted:,} counted, {threads * calls:,} made")
                return float(child.stdout.split()[0]) / (threads * calls)
            return sample

        rounds = 3 if quick else 7
        samples = _measure.interleave({"one": variant("one", 1), "eight": variant("eight", 8)}, rounds, warmup=1)
        per_call = {k: _measure.median(v) for k, v in samples.items()}
        ratio = per_call["eight"] / per_call["one"]
        exact = not wrong
        detail = (f"per call {per_call['eight'] * 1e9:.0f} ns (8 threads) vs {per_call['one'] * 1e9:.0f} ns "
                  f"(1 thread), medians of {rounds} interleaved runs each; counts from the reports "
                  + ("exact in every run" if exact else "WRONG: " + "; ".join(wrong[:3])))
        return [
            _table.row(CASE + ", counts", "counted = made, in every run", exact, "== exact",
                       "; ".join(wrong[:3]) or f"{len(samples['eight']) + 1} runs x 1,600,000 and "
                       f"{len(samples['one']) + 1} runs x 200,000 calls, all exact", met=exact),
            _table.row(CASE + ", cost", "per-call cost ratio to one thread", ratio, "<= 1.5", detail),
        ]
    finally:
        if own:
            lab.close()
