"""Exit delay: a program that imported and called a watched package, endpoint unreachable, vs no hook.

The hooked venv and the bare one (no ``.pth``) hold the same packages; both run the same script
file, interleaved A/B. The difference of the medians is what the hook adds to the life of the
process; the "nothing counted" variant (imported, instrumented, never called) separates the
import-time cost from the report hand-off at exit (counts written to the spool, sender spawned).
Run alone: ``python -m benchmarks.exit_delay [--quick]``.
"""

import sys

from benchmarks import _generate, _measure, _table
from benchmarks._setup import Lab, script
from tests.support.loopback import dead_url

CASE = "process exit, report pending, endpoint unreachable"
_CALLED = f"import {_generate.CALLS} as m\nm.work()\nm.Worker().run()\n"
_NOT_CALLED = f"import {_generate.CALLS}\n"


def run(quick=False, lab=None):
    """Median wall time of each variant and the hooked-minus-bare differences, in milliseconds."""
    own = lab is None
    lab = lab or Lab()
    try:
        pair = lab.small
        called = script(lab, "exit_called.py", _CALLED)
        not_called = script(lab, "exit_not_called.py", _NOT_CALLED)
        home = lab.home()
        env = lab.env(home, TELLY_HTTP_SERVER=dead_url())
        file_env = lab.env(home, TELLY_STORAGE_TYPE="file", TELLY_LOCAL_STORAGE_PATH=str(home / "reports"))

        def variant(venv, path, environ, label):
            return lambda: _measure.checked(_measure.spawn([venv.python, path], environ), label).seconds

        variants = {
            "bare": variant(pair.bare, called, env, "bare"),
            "hooked, http_async": variant(pair.hooked, called, env, "hooked"),
            "hooked, nothing counted": variant(pair.hooked, not_called, env, "hooked, nothing counted"),
            "hooked, file": variant(pair.hooked, called, file_env, "hooked, file"),
        }
        rounds = 30 if quick else 150
        samples = _measure.interleave(variants, rounds, warmup=3)
        ms = {label: _measure.median(values) * 1e3 for label, values in samples.items()}
        spool = home / ".cache" / "telly_autoinst" / "spool"
        # A host queues counts (*.counts); its sender builds them into *.report files.
        queued = len([*spool.glob("*.report"), *spool.glob("*.counts")]) if spool.is_dir() else 0
        detail = (f"medians over {rounds} interleaved runs: " + ", ".join(f"{k} {v:.2f} ms" for k, v in ms.items())
                  + f"; IQR/median bare {_measure.spread(samples['bare']):.0%}, hooked "
                  f"{_measure.spread(samples['hooked, http_async']):.0%}; {queued} report(s) left in the spool "
                  "(endpoint down, as intended)")
        return [
            _table.row(CASE, "extra wall time over no hook (ms)", ms["hooked, http_async"] - ms["bare"], "<= 5",
                       detail),
            _table.row(CASE + ", of which the report hand-off", "hooked minus hooked-with-nothing-counted (ms)",
                       ms["hooked, http_async"] - ms["hooked, nothing counted"], "<= 5",
                       "write the counts to the spool, spawn the detached sender (which builds the report)"),
            _table.row("process exit, report written to a file (TELLY_STORAGE_TYPE=file)",
                       "extra wall time over no hook (ms)", ms["hooked, file"] - ms["bare"], "<= 5", detail),
        ]
    finally:
        if own:
            lab.close()


if __name__ == "__main__":
    for item in run(quick="--quick" in sys.argv):
        print(f"{item['case']}: {item['measured']} = {item['value']:.2f} (target {item['target']})\n  {item['detail']}")
