"""One counted call: its overhead over a plain call, as a ratio to a bare wrapt pass-through's.

For each kind of callable (function, method, classmethod) the same source is compiled into
separate modules (separate code objects, so sys.monitoring events on one never touch another):

* ``plain``: untouched;
* ``bare``: a ``wrapt.FunctionWrapper`` whose wrapper only calls through, installed where the
  engine would install its own (module attribute; class ``__dict__``, outside ``classmethod``);
* ``wrapt``: instrumented by the wrapt engine;
* ``monitoring``: instrumented by the sys.monitoring engine (CPython 3.12+);
* ``rewrite``: imported from a source file through the default (in-frame) engine's loader.

Variants are timed in turn, round after round (A B C D A B C D ...), in CPU time of the
measuring thread, and medians are compared:
``ratio = (counted - plain) / (bare - plain)``. Targets (issues 4 and 8): <= 1.10 for wrapt,
<= 0.35 for sys.monitoring and for the default engine. ``run()`` returns the rows; below 3.12
it measures the monitoring engine in a 3.12+ venv when one can be built. Run
``python benchmarks/call_overhead.py [--quick]`` to print them (the file is self-contained so it
also runs inside a venv that only has telly_autoinst).
"""

import json
import statistics
import sys
import time
import timeit

_SOURCE = """
def function():
    return None

class Kind:
    def method(self):
        return None

    @classmethod
    def classmethod_(cls):
        return None
"""

_STATEMENTS = {"function": "f()", "method": "obj.method()", "classmethod": "Kind.classmethod_()"}
_TARGETS = {"wrapt": "<= 1.10", "monitoring": "<= 0.35", "rewrite": "<= 0.35"}
_CASES = {
    "wrapt": "one counted call, wrapt engine: {kind}",
    "monitoring": "one counted call, sys.monitoring engine (3.12+): {kind}",
    "rewrite": "one counted call, default engine (rewrite), Python {python}: {kind}",
}
_MEASURED = "overhead over a plain call, ratio to a bare wrapt.FunctionWrapper pass-through's"


def _module(name):
    import types

    module = types.ModuleType(name)
    exec(compile(_SOURCE, f"<{name}>", "exec"), vars(module))
    return module


def _bare(module):
    import wrapt

    def passthrough(wrapped, instance, args, kwargs):
        return wrapped(*args, **kwargs)

    module.function = wrapt.FunctionWrapper(module.function, passthrough)
    for name in ("method", "classmethod_"):
        type.__setattr__(module.Kind, name, wrapt.FunctionWrapper(vars(module.Kind)[name], passthrough))
    return module


def _instrumented(engine_name, name):
    from telly_autoinst.engines import make_engine
    from telly_autoinst.settings import project_settings

    engine, note = make_engine(engine_name)
    if note:
        return None, note
    module = _module(name)
    project = project_settings({"project_id": f"bench-{engine_name}", "packages": [name]}, "benchmark",
                               environ={}, user_config={})
    engine.instrument(module, project)
    return module, None


def _rewritten(name):
    """The source imported from a file through the rewrite engine's loader, as the hook does it."""
    import importlib.util
    import tempfile
    from pathlib import Path

    from telly_autoinst.engines import make_engine
    from telly_autoinst.settings import project_settings

    engine, note = make_engine("rewrite")
    directory = Path(tempfile.mkdtemp(prefix="telly-overhead-"))
    path = directory / f"{name}.py"
    path.write_text(_SOURCE)
    project = project_settings({"project_id": "bench-rewrite", "packages": [name]}, "benchmark",
                               environ={}, user_config={})
    spec = importlib.util.spec_from_file_location(name, path)
    loader = engine.loader_for(spec, project)
    if loader is None:
        return None, "the rewrite engine gave no loader"
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module, note


def _timers(module, kind, number):
    namespace = {"f": module.function, "obj": module.Kind(), "Kind": module.Kind}
    # CPU time of this thread, not wall time: on a shared 2-core machine, time spent descheduled
    # would otherwise land on whichever variant was running.
    timer = timeit.Timer(_STATEMENTS[kind], globals=namespace, timer=time.thread_time)
    return lambda: timer.timeit(number) / number


def measure(quick=False):
    """Rows for every engine this interpreter offers, measured in this process."""
    variants = {"plain": _module("overhead_plain"), "bare": _bare(_module("overhead_bare"))}
    notes = {}
    engines = ["rewrite", "wrapt"] + (["monitoring"] if sys.version_info >= (3, 12) else [])
    for engine in engines:
        if engine == "rewrite":
            module, note = _rewritten("overhead_rewrite")
        else:
            module, note = _instrumented(engine, f"overhead_{engine}")
        if module is None:
            notes[engine] = note
        else:
            variants[engine] = module
    rounds, number = (5, 50_000) if quick else (11, 200_000)
    rows = []
    for kind in _STATEMENTS:
        timers = {label: _timers(module, kind, number) for label, module in variants.items()}
        for timer in timers.values():  # warm-up round, untimed
            timer()
        samples = {label: [] for label in timers}
        for _ in range(rounds):
            for label, timer in timers.items():
                samples[label].append(timer())
        ns = {label: statistics.median(values) * 1e9 for label, values in samples.items()}
        best = {label: min(values) * 1e9 for label, values in samples.items()}
        for engine in engines:
            case = _CASES[engine].format(kind=kind, python="%d.%d" % sys.version_info[:2])
            if engine not in ns:
                rows.append(_row(case, None, engine, notes[engine]))
                continue
            ratio = (ns[engine] - ns["plain"]) / (ns["bare"] - ns["plain"])
            # The fastest rounds are the least disturbed by other load: shown beside the medians.
            best_ratio = (best[engine] - best["plain"]) / (best["bare"] - best["plain"])
            detail = (f"medians of {rounds} interleaved rounds x {number:,} calls, Python "
                      f"{sys.version.split()[0]}: plain {ns['plain']:.0f} ns, bare wrapt {ns['bare']:.0f} ns, "
                      f"counted {ns[engine]:.0f} ns per call; fastest rounds: ratio {best_ratio:.2f}")
            rows.append(_row(case, ratio, engine, detail, ns))
    return rows


def _row(case, value, engine, detail, ns=None):
    return {"case": case, "measured": _MEASURED, "value": value, "target": _TARGETS[engine], "detail": detail,
            "ns": ns or {}}


def _monitoring_elsewhere(quick, lab):
    """Below 3.12: run this file in a venv of the newest CPython with sys.monitoring."""
    import subprocess
    from pathlib import Path

    from tests.support.venvs import find_python

    python = next((p for p in map(find_python, ("3.13", "3.12")) if p), None)
    if python is None:
        return [_row(_CASES["monitoring"].format(kind=kind), None, "monitoring", "no CPython 3.12+ found")
                for kind in _STATEMENTS]
    venv = lab.factory.get(python=python)
    argv = [venv.python, str(Path(__file__).resolve()), "--json"] + (["--quick"] if quick else [])
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=900,
                         env=lab.env(lab.home()), cwd=str(lab.base))
    return [row for row in json.loads(out.stdout) if row["case"].startswith("one counted call, sys.monitoring")]


def in_venv(venv, lab, quick):
    """This file's rows as measured by ``venv``'s interpreter (per-Python rows of the engine case)."""
    import subprocess
    from pathlib import Path

    argv = [venv.python, str(Path(__file__).resolve()), "--json"] + (["--quick"] if quick else [])
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=900,
                         env=lab.env(lab.home()), cwd=str(lab.base))
    return json.loads(out.stdout)


def run(quick=False, lab=None):
    """The rows of this case (``list[dict]`` in the suite's row format)."""
    rows = measure(quick)
    if sys.version_info < (3, 12):
        own = lab is None
        if own:
            from benchmarks._setup import Lab

            lab = Lab()
        try:
            rows += _monitoring_elsewhere(quick, lab)
        except Exception as exc:  # the wrapt figures still stand
            rows += [_row(_CASES["monitoring"].format(kind=kind), None, "monitoring",
                          f"failed: {type(exc).__name__}: {exc}") for kind in _STATEMENTS]
        finally:
            if own:
                lab.close()
    return rows


def _print(rows):
    for row in rows:
        value = "-" if row["value"] is None else f"{row['value']:.3f}"
        print(f"{row['case']:<58} {value:>7}  target {row['target']:<8} {row['detail']}")


if __name__ == "__main__":
    result = measure(quick="--quick" in sys.argv)
    if "--json" in sys.argv:
        print(json.dumps(result))
    else:
        _print(result)
