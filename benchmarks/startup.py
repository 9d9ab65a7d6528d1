"""Interpreter start-up with the hook installed and a watched package present but not imported."""

from benchmarks import _measure, _table
from benchmarks._setup import Lab

CASE = "interpreter start, python -c pass"
# A child's ru_maxrss also counts the parent's pages it was forked (or vforked) from, so the peak
# is read by the child itself: VmHWM belongs to the mm created by exec, i.e. to python alone.
_HWM = "print(open('/proc/self/status').read())"
# Start-up puts the finder's stand-in first on sys.meta_path (the finder itself comes at the first
# watched import): that stand-in is what shows the hook ran.
_PROBE = ("import sys; print(any(getattr(f, 'telly_autoinst_gate', False) for f in sys.meta_path), "
          "'_telly_autoinst_bootstrap' in sys.modules)")


def run(quick=False, lab=None):
    """Time and peak memory of ``python -c pass``, hooked venv vs the same venv without the .pth."""
    own = lab is None
    lab = lab or Lab()
    try:
        pair = lab.small
        home = lab.home()  # one HOME for every run: the index is cached there after the first start
        env = lab.env(home)
        # The case is only meaningful when the hook really runs: its stand-in must be installed.
        probe = _measure.checked(_measure.spawn([pair.hooked.python, "-c", _PROBE], env), "probe").stdout.split()
        hook_active = probe[:1] == ["True"]
        variants = {
            label: (lambda venv=venv, label=label:
                    _measure.checked(_measure.spawn([venv.python, "-c", "pass"], env), label))
            for label, venv in (("hooked", pair.hooked), ("bare", pair.bare))
        }
        rounds = 40 if quick else 200
        samples = _measure.interleave(variants, rounds, warmup=3)
        times = {k: _measure.median([c.seconds for c in v]) for k, v in samples.items()}
        peaks = _measure.interleave({
            label: (lambda venv=venv, label=label:
                    _hwm(_measure.checked(_measure.spawn([venv.python, "-c", _HWM], env), label)))
            for label, venv in (("hooked", pair.hooked), ("bare", pair.bare))
        }, 5 if quick else 20)
        rss = {k: _measure.median(v) for k, v in peaks.items()}
        ratio = times["hooked"] / times["bare"]
        extra_mib = (rss["hooked"] - rss["bare"]) / 2**20
        note = "" if hook_active else "; HOOK NOT ACTIVE in the hooked venv (its stand-in is not installed)"
        return [
            _table.row(CASE, "ratio to the same venv without the .pth", ratio, "<= 1.05",
                       f"median {times['hooked'] * 1e3:.2f} ms vs {times['bare'] * 1e3:.2f} ms over {rounds} "
                       f"interleaved runs each "
                       f"(IQR/median {_measure.spread([c.seconds for c in samples['hooked']]):.0%}"
                       f" / {_measure.spread([c.seconds for c in samples['bare']]):.0%}){note}",
                       met=_table.meets(ratio, "<= 1.05") if hook_active else False),
            _table.row(CASE + ", resident memory", "difference of peak RSS (MiB)", extra_mib, "<= 1",
                       f"median VmHWM {rss['hooked'] / 2**20:.2f} MiB vs {rss['bare'] / 2**20:.2f} MiB{note}",
                       met=_table.meets(extra_mib, "<= 1") if hook_active else False),
        ]
    finally:
        if own:
            lab.close()


def _hwm(child):
    """Peak resident memory in bytes, from the child's own /proc/self/status."""
    for line in child.stdout.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")
