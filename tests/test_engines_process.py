"""Fresh interpreters in real venvs: multiprocessing spawn with counted objects, and counts across fork.

The engine is called directly (the import hook is kept out with TELLY_DISABLE), so these tests
pin the engines' own behaviour in an installed project, whatever the hook does.
"""

import json
import sys

import pytest

from tests.support.venvs import find_python

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
    _CASES.append(pytest.param("3.13", "monitoring", id="monitoring-3.13"))


@pytest.mark.skipif(sys.platform == "win32", reason="needs os.fork")
@pytest.mark.parametrize(("version", "engine"), _CASES)
def test_spawn_pickling_and_fork_counts(venvs, sample_wheels, home, tmp_path, version, engine):
    venv = venvs.get(python=find_python(version) if version else None, extra=[sample_wheels["pkg_edgecases"]])
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
