"""Importing a watched package: a generated one and a real one, hooked vs plain."""

from benchmarks import _generate, _measure, _table
from benchmarks._setup import REAL_PACKAGE, Lab, script

CASE = "import a watched package"

# Timed inside the child: the interpreter's own start-up is a separate case. The first import of
# a watched package pays for everything the hook defers (wrapt, discovery, the pipeline), so
# that cost is inside the timed span, as a user would feel it. The script then reports how many
# callables were instrumented, so a silently inactive hook cannot pass for a fast one.
_SCRIPT = """\
import sys, time
start = time.perf_counter()
import {name}
elapsed = time.perf_counter() - start
keys = -1
if "telly_autoinst.engines" in sys.modules:
    try:
        from telly_autoinst import engines, finder
        keys = sum(len(engines.instrumented_keys(p)) for p in finder.projects())
    except Exception:
        keys = -2
print(elapsed, keys)
"""


def _measure_one(lab, pair, name, env_extra, quick):
    path = script(lab, f"import_{name}.py", _SCRIPT.format(name=name))
    home = lab.home()
    reports = lab.base / f"reports-import-{name}"
    reports.mkdir(exist_ok=True)
    # File storage: the exit path must not try the network while we time the import.
    env = lab.env(home, TELLY_STORAGE_TYPE="file", TELLY_LOCAL_STORAGE_PATH=reports, **env_extra)
    variants = {
        label: (lambda venv=venv, label=label: _measure.checked(_measure.spawn([venv.python, path], env), label))
        for label, venv in (("hooked", pair.hooked), ("plain", pair.bare))
    }
    rounds = 6 if quick else 20
    samples = _measure.interleave(variants, rounds, warmup=1)
    seconds = {k: _measure.median([float(c.stdout.split()[0]) for c in v]) for k, v in samples.items()}
    keys = int(samples["hooked"][-1].stdout.split()[1])
    return seconds, keys, rounds


def run(quick=False, lab=None):
    """Import time of the generated package (opted in) and of click (forced), vs no hook."""
    own = lab is None
    lab = lab or Lab()
    rows = []
    try:
        pair = lab.imports
        for label, name, env_extra in (
            (f"generated, {_generate.MODULES} modules, {_generate.PUBLIC_CALLABLES:,} callables", _generate.GEN, {}),
            (f"real: {REAL_PACKAGE} (forced)", REAL_PACKAGE.partition("==")[0],
             {"TELLY_AUTOINST_PACKAGES": REAL_PACKAGE.partition("==")[0]}),
        ):
            try:
                seconds, keys, rounds = _measure_one(lab, pair, name, env_extra, quick)
            except Exception as exc:  # one broken case must not hide the others
                rows.append(_table.missing(f"{CASE}: {label}", "ratio to the plain import", "<= 1.10",
                                           f"failed: {exc}"))
                continue
            ratio = seconds["hooked"] / seconds["plain"]
            active = keys > 0
            note = f"{keys:,} keys instrumented" if active else f"HOOK NOT ACTIVE (instrumented keys: {keys})"
            rows.append(_table.row(
                f"{CASE}: {label}", "ratio to the plain import", ratio, "<= 1.10",
                f"median {seconds['hooked'] * 1e3:.1f} ms vs {seconds['plain'] * 1e3:.1f} ms over {rounds} "
                f"interleaved imports each, in fresh interpreters; {note}",
                met=_table.meets(ratio, "<= 1.10") if active else False))
        return rows
    finally:
        if own:
            lab.close()

