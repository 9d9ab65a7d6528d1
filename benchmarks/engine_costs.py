"""Issue 8's three cost rows, per Python (3.9, 3.11, 3.13), side by side in one run, default engine.

For each Python, one pair of venvs (``hooked`` with the ``.pth``, ``bare`` without; both with
the generated watched package and click installed) and three measurements:

* **whole run**: a short program that imports click (forced in with
  ``TELLY_AUTOINST_PACKAGES=click``), runs one command and exits, its report handed off to the
  spool and a detached sender (the endpoint is unreachable, so reports stay queued), vs the
  same program in the bare venv. The warm case: the index and the rewritten code are cached
  by the warm-up runs, as after a program's first run. The wrapt engine is measured alongside
  for comparison;
* **start-up**: ``python -c pass``, hooked vs bare (the watched packages are installed, not
  imported).

Both process rows compare CPU time (user + system, from ``wait4``): on this shared 2-core machine
other sessions' load stretches wall time by whatever it waited for a core, which CPU time leaves
out; the wall-time ratio is in each row's detail. Where valgrind is installed, each process row
is also counted in instructions executed (callgrind), which the machine's load hardly moves.
* **one counted call**: ``benchmarks/call_overhead.py`` run by the hooked venv's interpreter:
  a counted call's overhead over a plain call, as a ratio to a bare ``wrapt.FunctionWrapper``
  pass-through's (on 3.12+ the sys.monitoring engine's too, the comparison behind the default).

Run alone: ``python -m benchmarks --only engine_costs [--quick]``.
"""


from benchmarks import _measure, _table, call_overhead
from benchmarks._setup import Lab, per_python, script
from tests.support.loopback import dead_url
from tests.support.venvs import clean_env, find_python

VERSIONS = ("3.9", "3.11", "3.13")

# A short program as users write them: define a command, run it once.
PROGRAM = """\
import click


@click.command()
@click.option("--name", default="world")
@click.option("--count", default=1, type=int)
def hello(name, count):
    for _ in range(count):
        click.echo(f"hello {name}")


hello(["--name", "bench", "--count", "2"], standalone_mode=False)
"""


def _timed(venv, argv, env, label):
    return lambda: _measure.checked(_measure.spawn([venv.python, *argv], env), label)


def _medians(samples):
    """Median wall and CPU milliseconds of each variant."""
    return ({k: _measure.median([c.seconds for c in v]) * 1e3 for k, v in samples.items()},
            {k: _measure.median([c.cpu for c in v]) * 1e3 for k, v in samples.items()})


def _per_python(version, quick, base):
    python = find_python(version)
    if python is None:
        return [_table.missing(f"engine costs, Python {version}", "", "", f"Python {version} is not installed")]
    lab = Lab(base / f"py{version}", python=python)
    rows = []
    pair = lab.imports
    home = lab.home()
    program = script(lab, "click_program.py", PROGRAM)
    dead = dead_url()
    forced = {"TELLY_AUTOINST_PACKAGES": "click", "TELLY_HTTP_SERVER": dead}
    variants = {
        "bare": _timed(pair.bare, [program], lab.env(home), "bare"),
        "default": _timed(pair.hooked, [program], lab.env(home, **forced), "hooked, default engine"),
        "wrapt": _timed(pair.hooked, [program], clean_env(home, TELLY_ENGINE="wrapt", **forced), "hooked, wrapt"),
    }
    rounds = 8 if quick else 40
    samples = _measure.interleave(variants, rounds, warmup=2)
    wall, cpu = _medians(samples)
    spool = home / ".cache" / "telly_autoinst" / "spool"
    # A host queues counts (*.counts); its sender builds them into *.report files.
    queued = len([*spool.glob("*.report"), *spool.glob("*.counts")]) if spool.is_dir() else 0
    detail = (f"medians of {rounds} interleaved runs, CPU (wall): bare {cpu['bare']:.1f} ({wall['bare']:.1f}) ms, "
              f"default engine {cpu['default']:.1f} ({wall['default']:.1f}) ms, wrapt engine {cpu['wrapt']:.1f} "
              f"({wall['wrapt']:.1f}) ms; wall-time ratio {wall['default'] / wall['bare']:.3f}; {queued} reports "
              "handed off to the spool")
    for engine, target in (("default", "<= 1.10"), ("wrapt", None)):
        ratio = cpu[engine] / cpu["bare"]
        name = "default engine (rewrite)" if engine == "default" else "wrapt engine, for comparison"
        met = None if target is None else (_table.meets(ratio, target) if queued else False)
        rows.append(_table.row(f"whole run importing click, report handed off, Python {version}: {name}",
                               "ratio of CPU time to the same run unwatched", ratio, target or "-",
                               detail if queued else detail + " (NO REPORT: the hook did not run)", met=met))

    _instruction_row(rows, f"whole run importing click, report handed off, Python {version}: default engine "
                           "(rewrite)", (pair.bare.python, program), lab.env(home),
                     (pair.hooked.python, program), lab.env(home, **forced), "<= 1.10")

    start = {
        "bare": _timed(pair.bare, ["-c", "pass"], lab.env(home), "bare start"),
        "hooked": _timed(pair.hooked, ["-c", "pass"], lab.env(home), "hooked start"),
    }
    rounds = 40 if quick else 200
    samples = _measure.interleave(start, rounds, warmup=3)
    wall, cpu = _medians(samples)
    ratio = cpu["hooked"] / cpu["bare"]
    rows.append(_table.row(f"python -c pass with the hook installed, Python {version}",
                           "ratio of CPU time to the same venv without the .pth", ratio, "<= 1.05",
                           f"medians of {rounds} interleaved runs, CPU (wall): {cpu['hooked']:.2f} "
                           f"({wall['hooked']:.2f}) ms vs {cpu['bare']:.2f} ({wall['bare']:.2f}) ms; wall-time ratio "
                           f"{wall['hooked'] / wall['bare']:.3f}"))

    _instruction_row(rows, f"python -c pass with the hook installed, Python {version}",
                     (pair.bare.python, "-c", "pass"), lab.env(home), (pair.hooked.python, "-c", "pass"),
                     lab.env(home), "<= 1.05", "the same venv without the .pth")

    for item in call_overhead.in_venv(pair.hooked, lab, quick):
        # The monitoring rows (3.12+) are the comparison behind the choice of the default.
        if item["case"].startswith(("one counted call, default engine", "one counted call, sys.monitoring")):
            case = item["case"]
            if "sys.monitoring" in case:
                case = case.replace("(3.12+)", f"(for comparison), Python {version}")
            rows.append(_table.row(case, item["measured"], item["value"], item["target"], item["detail"]))
    lab.close()
    return rows


def _instruction_row(rows, case, bare_argv, bare_env, hooked_argv, hooked_env, target,
                     anchor="the same run unwatched"):
    """The same comparison counted in instructions (see _measure.instructions), when valgrind is here."""
    counts = {}
    for label, argv, env in (("bare", bare_argv, bare_env), ("hooked", hooked_argv, hooked_env)):
        _measure.checked(_measure.spawn(list(argv), env), label)  # caches warm, as in the timed rows
        counts[label] = _measure.instructions(list(argv), env)
    if counts["bare"] is None:
        return
    rows.append(_table.row(case, f"ratio of instructions executed (callgrind) to {anchor}",
                           counts["hooked"] / counts["bare"], target,
                           f"{counts['hooked'] / 1e6:.1f}M vs {counts['bare'] / 1e6:.1f}M instructions, "
                           "PYTHONHASHSEED=0; load-independent, kernel work not included"))


def run(quick=False, lab=None):
    """Every row for every installed Python of VERSIONS."""
    return per_python(VERSIONS, lab, "engine_costs", lambda version, base: _per_python(version, quick, base))
