"""One counted call against the original Telly client 0.9.3's ``count_decorator``."""

from benchmarks import _generate, _measure, _reports, _table
from benchmarks._setup import TELLY_ORIGINAL, Lab, script

CASE = "one counted call vs the original client"

# Both sides run the same loop from a file (count_decorator calls inspect.stack(), which reads
# the source of every frame; a -c string would make it cheaper than in a real program). The
# stack is as shallow as it gets, which favours the original client.
_OURS = """\
import sys, time
from {calls} import work
n = int(sys.argv[1])
start = time.perf_counter()
for _ in range(n):
    work()
print((time.perf_counter() - start) / n)
"""

_ORIGINAL = """\
import sys, time
import telly

def work():
    return None

work = telly.count_decorator(work)
n = int(sys.argv[1])
start = time.perf_counter()
for _ in range(n):
    work()
print((time.perf_counter() - start) / n)
"""


def run(quick=False, lab=None):
    """Per-call time of a function counted by the hook vs one decorated by telly 0.9.3."""
    own = lab is None
    lab = lab or Lab()
    try:
        ours = script(lab, "call_ours.py", _OURS.format(calls=_generate.CALLS))
        original = script(lab, "call_original.py", _ORIGINAL)
        reports = lab.base / "reports-original-ours"
        reports.mkdir(exist_ok=True)
        ours_env = lab.env(lab.home(), TELLY_STORAGE_TYPE="file", TELLY_LOCAL_STORAGE_PATH=reports)
        # The original client's own switches: opt-in mode without an opt-in file means its atexit
        # send returns before touching the network; the server is a closed local port anyway.
        original_env = lab.env(lab.home(), TELLY_OPTIN="1", TELLY_HTTP_SERVER="http://127.0.0.1:9")
        n_ours, n_original = (200_000, 500) if quick else (1_000_000, 2_000)
        variants = {
            "ours": lambda: _measure.checked(_measure.spawn([lab.small.hooked.python, ours, str(n_ours)], ours_env),
                                             "ours"),
            "original": lambda: _measure.checked(
                _measure.spawn([lab.original.python, original, str(n_original)], original_env), "original"),
        }
        rounds = 3 if quick else 7
        samples = _measure.interleave(variants, rounds, warmup=1)
        per_call = {k: _measure.median([float(c.stdout.strip()) for c in v]) for k, v in samples.items()}
        ratio = per_call["ours"] / per_call["original"]
        # Proof that the timed calls were really counted by the hook, not a plain function.
        made = n_ours * (rounds + 1)
        counted = _reports.counted(reports, f"{_generate.CALLS}.work")
        note = "" if counted == made else f"; NOT COUNTED: the reports hold {counted:,} of {made:,} calls"
        return [_table.row(
            CASE, f"per-call time ratio to {TELLY_ORIGINAL} count_decorator", ratio, "<= 1/200",
            f"{per_call['ours'] * 1e9:.0f} ns vs {per_call['original'] * 1e6:.0f} µs per call "
            f"(1/{1 / ratio:,.0f}), medians of {rounds} interleaved runs; whole call, not overhead only{note}",
            met=_table.meets(ratio, "<= 1/200") if counted == made else None)]
    finally:
        if own:
            lab.close()
