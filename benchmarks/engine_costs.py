"""What the hook costs a user, per Python (3.9, 3.11, 3.13), side by side in one run, default engine.

For each Python, one pair of venvs (``hooked`` with the ``.pth``, ``bare`` without; both with the
real packages of ``benchmarks/_packages.py`` installed) and three kinds of rows:

* **whole run**: a short program of ordinary use of one package (click, jinja2, requests, rich,
  attrs, httpx, packaging, more-itertools), the package watched (forced in with
  ``TELLY_AUTOINST_PACKAGES``), run to its exit, its counts handed off to the spool and the
  detached sender (the endpoint is unreachable, so reports stay queued), against the same
  program in the bare venv. The warm case: the untimed warm-up runs fill the caches (index,
  rewritten code) as a program's first run does. Counted in instructions executed (callgrind,
  ``PYTHONHASHSEED=0``) for every package; click and jinja2, which carry the targets (<= 1.12 in
  instructions, <= 1.15 in CPU time), are also timed in CPU time (user + system from ``wait4``,
  interleaved pairs, medians). The other packages are reported for comparison;
* **start-up**: ``python -c pass``, hooked vs bare (the packages installed, none imported), in
  CPU time and in instructions: <= 1.05 on 3.9 and 3.11. On 3.12 and later ``site`` pays for the
  first ``.pth`` file whatever it holds, so there the anchor is a third venv whose ``.pth`` only
  runs ``import sys``: the hooked ratio may exceed that venv's ratio by at most 0.02;
* **one counted call**: ``benchmarks/call_overhead.py`` run by the hooked venv's interpreter: a
  counted call's overhead over a plain call, as a ratio to a bare ``wrapt.FunctionWrapper``
  pass-through's (on 3.12+ the sys.monitoring engine's too, for comparison).

CPU time, not wall time: on a shared 2-core machine other load stretches wall time by whatever it
waited for a core; the wall-time ratio is in each row's detail. Instructions leave out the
kernel's work but hardly move with the machine's load: decide by them, read CPU time beside them.

Run: ``python -m benchmarks --only engine_costs`` (all three Pythons, about 15 minutes on an idle
2-core machine; needs PyPI and valgrind), then keep the JSON under ``benchmarks/results/`` and run
``python -m benchmarks --docs``. ``--quick`` measures one Python only (``--python 3.13``, default
the one running the suite) with fewer rounds: a developer's check in a few minutes.
"""

import subprocess
import sys

from benchmarks import _measure, _packages, _table, call_overhead
from benchmarks._setup import Lab, per_python, script
from tests.support.loopback import dead_url
from tests.support.venvs import find_python

VERSIONS = ("3.9", "3.11", "3.13")
WHOLE_RUN_TARGETS = {"instructions": "<= 1.12", "CPU time": "<= 1.15"}
START_TARGET = "<= 1.05"
# From 3.12 on: the hooked ratio less the ratio of a .pth that only runs ``import sys``.
START_TARGET_OVER_IMPORT_SYS = "<= 0.02"
_INSTRUCTIONS = "ratio of instructions executed (callgrind) to the same run unwatched"
_CPU = "ratio of CPU time to the same run unwatched"


def _timed(python, argv, env, label):
    return lambda: _measure.checked(_measure.spawn([python, *argv], env), label)


def _medians(samples):
    """Median wall and CPU milliseconds of each variant."""
    return ({k: _measure.median([c.seconds for c in v]) * 1e3 for k, v in samples.items()},
            {k: _measure.median([c.cpu for c in v]) * 1e3 for k, v in samples.items()})


def _instructions(argv, env, label):
    """Callgrind's count of ARGV, after one untimed run (the caches a first run fills are not counted)."""
    _measure.checked(_measure.spawn(list(argv), env), label)
    return _measure.instructions(list(argv), env)


def _queued(home):
    """Entries the hooked runs left in the spool: a host queues counts, its sender builds reports."""
    spool = home / ".cache" / "telly_autoinst" / "spool"
    return len([*spool.glob("*.report"), *spool.glob("*.counts")]) if spool.is_dir() else 0


def _whole_run(lab, version, package, quick, dead):
    """The rows of one package's program: instructions, and CPU time for the packages with targets."""
    pair = lab.packages
    home = lab.home()  # one per package: its spool shows whether this program's counts were handed off
    program = script(lab, f"{package.name}_program.py", package.program)
    bare_env = lab.env(home)
    hooked_env = lab.env(home, TELLY_AUTOINST_PACKAGES=package.watched, TELLY_HTTP_SERVER=dead)
    targeted = package.name in _packages.WITH_TARGETS
    name = f"whole run of a short {package.name} program, report handed off, Python {version}"
    case = f"{name}: default engine" if targeted else f"{name} (for comparison)"
    rows = []
    cpu_detail = ""
    if targeted:
        rounds = 10 if quick else 40
        samples = _measure.interleave({
            "bare": _timed(pair.bare.python, [program], bare_env, "bare"),
            "hooked": _timed(pair.hooked.python, [program], hooked_env, "hooked"),
        }, rounds, warmup=2)
        wall, cpu = _medians(samples)
        ratio = cpu["hooked"] / cpu["bare"]
        cpu_detail = (f"medians of {rounds} interleaved pairs, CPU (wall): {cpu['hooked']:.1f} ({wall['hooked']:.1f}) "
                      f"ms vs {cpu['bare']:.1f} ({wall['bare']:.1f}) ms; wall-time ratio "
                      f"{wall['hooked'] / wall['bare']:.3f}")
        rows.append((_CPU, ratio, WHOLE_RUN_TARGETS["CPU time"], cpu_detail))
    bare = _instructions((pair.bare.python, program), bare_env, "bare")
    if bare is not None:
        hooked = _instructions((pair.hooked.python, program), hooked_env, "hooked")
        rows.insert(0, (_INSTRUCTIONS, hooked / bare, WHOLE_RUN_TARGETS["instructions"] if targeted else "-",
                        f"{hooked / 1e6:.1f}M vs {bare / 1e6:.1f}M instructions, PYTHONHASHSEED=0; "
                        "load-independent, kernel work not included"))
    queued = _queued(home)
    out = []
    for measured, value, target, detail in rows:
        detail += f"; {queued} entries handed off to the spool" if queued else "; NO REPORT: the hook did not run"
        met = None if target == "-" else (_table.meets(value, target) and bool(queued))
        out.append(_table.row(case, measured, value, target, detail, met=met))
    return out


def _start_up(lab, version, quick):
    """``python -c pass`` hooked vs bare (and vs a .pth that only runs ``import sys``, from 3.12 on)."""
    rows = []
    pair = lab.packages
    home = lab.home()
    env = lab.env(home)
    case = f"python -c pass with the hook installed, Python {version}"
    anchored = tuple(map(int, version.split("."))) >= (3, 12)
    pythons = {"bare": pair.bare.python, "hooked": pair.hooked.python}
    if anchored:
        pythons["import sys"] = lab.import_sys_only.python
    rounds = 40 if quick else 200
    samples = _measure.interleave({label: _timed(python, ["-c", "pass"], env, label)
                                   for label, python in pythons.items()}, rounds, warmup=3)
    wall, cpu = _medians(samples)
    timed = (f"medians of {rounds} interleaved runs, CPU (wall): hooked {cpu['hooked']:.2f} ({wall['hooked']:.2f}) ms, "
             f"bare {cpu['bare']:.2f} ({wall['bare']:.2f}) ms")
    counts = {label: _instructions((python, "-c", "pass"), env, label) for label, python in pythons.items()}
    counted = counts["bare"] is not None
    if counted:
        counting = (f"{counts['hooked'] / 1e6:.1f}M (hooked) vs {counts['bare'] / 1e6:.1f}M (bare) instructions"
                    + (f", {counts['import sys'] / 1e6:.1f}M (import sys)" if anchored else "")
                    + ", PYTHONHASHSEED=0")
    if not anchored:
        rows.append(_table.row(case, "ratio of CPU time to the same venv without the .pth",
                               cpu["hooked"] / cpu["bare"], START_TARGET, timed))
        if counted:
            rows.append(_table.row(case, "ratio of instructions executed (callgrind) to the same venv without the "
                                   ".pth", counts["hooked"] / counts["bare"], START_TARGET, counting))
        return rows
    ratio, anchor = cpu["hooked"] / cpu["bare"], cpu["import sys"] / cpu["bare"]
    rows.append(_table.row(case, "ratio of CPU time to the same venv without the .pth, less that of a .pth that "
                           "only runs import sys", ratio - anchor, START_TARGET_OVER_IMPORT_SYS,
                           f"ratios {ratio:.3f} (hooked) and {anchor:.3f} (import sys); {timed}, import sys "
                           f"{cpu['import sys']:.2f} ({wall['import sys']:.2f}) ms"))
    if counted:
        ratio, anchor = counts["hooked"] / counts["bare"], counts["import sys"] / counts["bare"]
        rows.append(_table.row(case, "ratio of instructions executed (callgrind) to the same venv without the "
                               ".pth, less that of a .pth that only runs import sys", ratio - anchor,
                               START_TARGET_OVER_IMPORT_SYS,
                               f"ratios {ratio:.3f} (hooked) and {anchor:.3f} (import sys); {counting}"))
    return rows


def _per_call(lab, version, quick):
    """call_overhead's rows of the default engine (and of sys.monitoring, for comparison) in this Python."""
    rows = []
    for item in call_overhead.in_venv(lab.packages.hooked, lab, quick):
        case = item["case"]
        if case.startswith("one counted call, sys.monitoring"):
            rows.append(_table.row(case.replace("(3.12+)", f"(for comparison), Python {version}"),
                                   item["measured"], item["value"], item["target"], item["detail"]))
        elif case.startswith("one counted call, default engine"):
            rows.append(_table.row(case, item["measured"], item["value"], item["target"], item["detail"]))
    return rows


def _per_python(version, python, quick, base):
    if python is None:
        return [_table.missing(f"engine costs, Python {version}", "", "", f"Python {version} is not installed")]
    lab = Lab(base / f"py{version}", python=python)
    try:
        dead = dead_url()
        rows = []
        for package in _packages.PACKAGES:
            rows += _whole_run(lab, version, package, quick, dead)
        rows += _start_up(lab, version, quick)
        rows += _per_call(lab, version, quick)
        return rows
    finally:
        lab.close()


def run(quick=False, lab=None):
    """Every row for every installed Python of VERSIONS; with ``quick``, for the lab's Python only."""
    if quick:
        python = (lab.python if lab else None) or sys.executable
        version = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        return per_python((version,), lab, "engine_costs",
                          lambda version, base: _per_python(version, python, True, base))
    return per_python(VERSIONS, lab, "engine_costs",
                      lambda version, base: _per_python(version, find_python(version), False, base))
