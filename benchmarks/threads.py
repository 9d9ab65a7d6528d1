"""Counted calls from 8 threads at once: counts exact, per-call cost close to one thread's."""

from benchmarks import _generate, _measure, _reports, _table
from benchmarks._setup import Lab, script

CASE = "threads: 8 x 200,000 counted calls"
KEY = f"{_generate.CALLS}.work"

# All threads wait on one barrier so they really run at once. The clock starts before the main
# thread releases the barrier (once every worker waits on it): taken after the release, the
# main thread would first have to win the GIL back from the running workers, and the span
# would lose up to a few switch intervals. One thread makes as many calls as the eight
# together, so one-time costs weigh the same on both sides.
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
while barrier.n_waiting < threads_n:
    time.sleep(0.001)
start = time.perf_counter()
barrier.wait()
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
        shapes = {"one": (1, 8 * calls), "eight": (8, calls)}
        runs = {"one": 0, "eight": 0}
        wrong = []

        def variant(label):
            threads, per_thread = shapes[label]

            def sample():
                runs[label] += 1
                reports = lab.base / f"reports-threads-{label}-{runs[label]}"
                reports.mkdir(parents=True)
                env = lab.env(lab.home(), TELLY_STORAGE_TYPE="file", TELLY_LOCAL_STORAGE_PATH=reports)
                argv = [venv.python, path, str(threads), str(per_thread)]
                child = _measure.checked(_measure.spawn(argv, env), label)
                counted = _reports.counted(reports, KEY)
                if counted != threads * per_thread:
                    wrong.append(f"{label}: {counted:,} counted, {threads * per_thread:,} made")
                return float(child.stdout.split()[0]) / (threads * per_thread)
            return sample

        rounds = 3 if quick else 7
        samples = _measure.interleave({"one": variant("one"), "eight": variant("eight")}, rounds, warmup=1)
        per_call = {k: _measure.median(v) for k, v in samples.items()}
        ratio = per_call["eight"] / per_call["one"]
        exact = not wrong
        detail = (f"per call {per_call['eight'] * 1e9:.0f} ns (8 threads) vs {per_call['one'] * 1e9:.0f} ns "
                  f"(1 thread making 1,600,000 calls), medians of {rounds} interleaved runs each; "
                  "counts from the reports "
                  + ("exact in every run" if exact else "WRONG: " + "; ".join(wrong[:3])))
        return [
            _table.row(CASE + ", counts", "counted = made, in every run", exact, "== exact",
                       "; ".join(wrong[:3]) or f"{len(samples['eight']) + 1} runs of 8 x 200,000 and "
                       f"{len(samples['one']) + 1} runs of 1 x 1,600,000 calls, all exact", met=exact),
            _table.row(CASE + ", cost", "per-call cost ratio to one thread", ratio, "<= 1.5", detail),
        ]
    finally:
        if own:
            lab.close()
