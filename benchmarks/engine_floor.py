"""The floor under issue 8's whole-run row: what the in-frame engine's per-run work costs on its own.

The whole-run row compares a short click program hooked against the same program unwatched
(``engine_costs``). This case runs that program in the hooked venv with the hook switched off
(``TELLY_DISABLE=1``: the ``.pth`` still runs and its stand-in leaves at the first import) and a
driver in front of it that does only what every run of an in-frame design must do once the
rewritten code is cached: import the engine, and for each of click's modules load the cached
rewritten code and bind its counters (``RewriteEngine.loader_for``). Three variants:

* **engine imported only**: the driver imports the engine and installs nothing, so click loads
  as usual; what is left above the bare run is start-up and the engine's imports;
* **load and bind**: nothing else. No settings, index, consent or pipeline, no selection after a
  module ran, no exit hand-off: the counts are never reported;
* **+ selection and arming**: the engine picks and enables the counted targets after each
  module ran, as it does in a real run (targets it cannot count in frame are dropped, not
  handed to a fallback).

All three are counted in instructions (callgrind), against the bare venv's run of the same
program. The second row less the first is what loading and binding add by themselves: any warm
path that binds counters into rewritten code at every run pays it, on top of its own start-up
and imports and of whatever decides consent and hands the counts off at exit.

Run alone: ``python -m benchmarks --only engine_floor``; needs valgrind.
"""

from benchmarks import _measure, _table
from benchmarks._packages import CLICK_PROGRAM as PROGRAM
from benchmarks._setup import Lab, per_python, script
from benchmarks.engine_costs import VERSIONS
from tests.support.venvs import find_python

# Imported before PROGRAM: drives the engine by hand, with no finder, settings, consent or pipeline.
_DRIVER = """\
import os
import sys
from _frozen_importlib_external import PathFinder

from telly_autoinst.engines.rewrite import RewriteEngine


class _Project:
    project_id = "click"
    packages = ("click",)
    include = ("*",)
    exclude = ()


_engine = RewriteEngine()
# "bind": each module's last statement calls this no-op instead of selecting and arming its targets.
if os.environ["FLOOR"] == "bind":
    _engine._module_ran = lambda modname, project, kept=None: (lambda: None)


class _Finder:
    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] != "click":
            return None
        spec = PathFinder.find_spec(fullname, path, target)
        if spec is not None:
            loader = _engine.loader_for(spec, _Project)
            if loader is None:  # the engine swallowed an error: a row must never measure plain loads
                raise RuntimeError(f"the engine did not rewrite {fullname} (TELLY_DEBUG=1 says why)")
            spec.loader = loader
        return spec


if os.environ["FLOOR"] != "imports":
    sys.meta_path.insert(0, _Finder())
"""


def _per_python(version, base):
    python = find_python(version)
    if python is None:
        return [_table.missing(f"engine floor, Python {version}", "", "", f"Python {version} is not installed")]
    lab = Lab(base / f"py{version}", python=python)
    try:
        pair = lab.imports
        home = lab.home()
        program = script(lab, "click_program.py", PROGRAM)
        # The driver is a module with its .pyc written up front: a script is compiled at every
        # run, which would count the compiler's work (several million instructions) as ours.
        driver = script(lab, "_floor_driver.py", _DRIVER)
        _measure.checked(_measure.spawn([pair.hooked.python, "-m", "py_compile", driver], lab.env(home)), "compile")
        driven = script(lab, "click_program_driven.py", "import _floor_driver  # noqa: F401\n" + PROGRAM)
        counts = {}
        runs = (("bare", pair.bare, program, {}), ("imports", pair.hooked, driven, {"FLOOR": "imports"}),
                ("bind", pair.hooked, driven, {"FLOOR": "bind"}), ("select", pair.hooked, driven, {"FLOOR": "select"}))
        for label, venv, path, extra in runs:
            env = lab.env(home, TELLY_DISABLE="1", **extra)
            for _ in range(2):  # the rewritten code is cached by the first run, as after a program's first run
                _measure.checked(_measure.spawn([venv.python, path], env), label)
            counts[label] = _measure.instructions([venv.python, path], env)
        if counts["bare"] is None:
            return [_table.missing(f"engine floor, Python {version}", "", "", "valgrind is not installed")]
        rows = []
        for label, name in (("imports", "engine imported, nothing bound"), ("bind", "load and bind only"),
                            ("select", "load, bind, select and arm")):
            rows.append(_table.row(
                f"floor of the whole run importing click, Python {version}: {name}",
                "ratio of instructions executed (callgrind) to the same run unwatched",
                counts[label] / counts["bare"], "-",
                f"{counts[label] / 1e6:.1f}M vs {counts['bare'] / 1e6:.1f}M instructions, PYTHONHASHSEED=0; "
                "no settings, consent, pipeline or exit hand-off"))
        return rows
    finally:
        lab.close()


def run(quick=False, lab=None):
    """Three rows per installed Python of VERSIONS (``quick`` changes nothing: counts are exact)."""
    return per_python(VERSIONS, lab, "engine_floor", _per_python)
