"""Fresh interpreters in real venvs: spawn pickling, counts across fork, and the engine suites on 3.9/3.13.

The engine is called directly (the import hook is kept out with TELLY_DISABLE), so these tests
pin the engines' own behaviour in an installed project, whatever the hook does.
"""

import json
import sys

import pytest

from tests.support.venvs import ROOT, find_python

pytestmark = pytest.mark.slow

_SCRIPT = r'''
import json, multiprocessing, os, sys
from telly_autoinst import counters
from telly_autoinst.engines import make_engine
from telly_autoinst.settings import project_settings
import edgecases.core as core

engine, note = make_engine(sys.argv[1])
settings = project_settings({"project_id": "proc", "packages": ["edgecases"]}, "test", environ={}, user_config={})
engine.instrument(core, settings)

if __name__ == "__main__":
    out = {"engine": engine.name, "note": note}
    spawn = multiprocessing.get_context("spawn")
    shape = core.Shape("spawned")
    with spawn.Pool(1) as pool:
        out["map"] = pool.map(core.square, [1, 2, 3])
        out["bound"] = pool.apply(shape.describe)
        out["classmethod"] = pool.apply(core.Shape.unit).name
        out["staticmethod"] = pool.apply(core.Shape.sum_sides, (core.Square(1),))
    core.add(1, 1), core.add(1, 1), core.add(1, 1)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        core.add(2, 2), core.Triangle("child")
        os.write(write, json.dumps(counters.take("proc")).encode())
        os._exit(0)
    os.waitpid(child, 0)
    out["child"] = json.loads(os.read(read, 65536))
    out["parent"] = counters.take("proc")
    print(json.dumps(out))
'''

_CASES = [pytest.param(None, "wrapt", id="wrapt")]
if find_python("3.13"):
    _CASES.append(pytest.param("3.13", "monitoring", id="monitoring-3.13", marks=pytest.mark.cross_python))


@pytest.mark.skipif(sys.platform == "win32", reason="needs os.fork")
@pytest.mark.parametrize(("version", "engine"), _CASES)
def test_spawn_pickling_and_fork_counts(venvs, sample_wheels, home, tmp_path, version, engine):
    venv = venvs.get(python=find_python(version) if version else None, extra=[sample_wheels["pkg_edgecases"], "pytest"])
    script = tmp_path / "run_engine.py"
    script.write_text(_SCRIPT)
    proc = venv.run([str(script), engine], home, env={"TELLY_DISABLE": "1"}, timeout=180)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["engine"], out["note"]) == (engine, None)
    assert out["map"] == [1, 4, 9]
    assert out["bound"] == "spawned with 0 sides" and out["classmethod"] == "unit" and out["staticmethod"] == 4
    assert out["child"] == {"edgecases.core.add": 1, "edgecases.core.Triangle": 1}
    assert out["parent"] == {"edgecases.core.Shape": 1, "edgecases.core.Square": 1, "edgecases.core.add": 3}


_SUITES = ["tests/test_engines_edgecases.py", "tests/test_engines_wrapt.py", "tests/test_engines_monitoring.py",
           "tests/test_engines_instances.py", "tests/test_engines_factory.py", "tests/test_counters.py",
           "tests/test_selection.py"]


_OTHER_PYTHONS = [v for v in ("3.9", "3.13") if find_python(v) and v != "%d.%d" % sys.version_info[:2]]


# tests/run's 3.9 and 3.13 runs run these suites there directly: this test is for a plain pytest
# run, and for tests/run --full.
@pytest.mark.full
@pytest.mark.cross_python
@pytest.mark.parametrize("version", _OTHER_PYTHONS)
def test_engine_suites_pass_on_other_pythons(venvs, sample_wheels, home, version):
    """The in-process engine suites, run by another interpreter (3.13 runs the monitoring half)."""
    venv = venvs.get(python=find_python(version), extra=[sample_wheels["pkg_edgecases"], "pytest"])
    proc = venv.run(["-m", "pytest", "-q", "-p", "no:cacheprovider", *_SUITES], home, cwd=ROOT,
                    env={"TELLY_DISABLE": "1"}, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout.splitlines()[-1]
