"""sys.monitoring engine specifics: no object changes, tool ids, shared code objects, hand-offs to wrapt."""

import json
import os
import subprocess
import sys
import types

import pytest

from telly_autoinst import counters
from tests.support.engines import forget_edgecases, import_edgecases, instrumented, project
from tests.support.venvs import ROOT

pytestmark = pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring needs Python 3.12+")


@pytest.fixture
def edge(monkeypatch):
    yield instrumented(monkeypatch, "monitoring")
    forget_edgecases()


def _snapshot(module):
    return dict(vars(module)), {k: dict(vars(v)) for k, v in vars(module).items() if isinstance(v, type)}


def test_tool_id_is_one_nobody_asks_for(edge):
    assert edge.engine.tool in (3, 4, 5)
    assert sys.monitoring.get_tool(edge.engine.tool) == "telly_autoinst"


def test_no_object_changes_and_early_references_count(monkeypatch):
    from telly_autoinst.engines import make_engine

    modules = import_edgecases(monkeypatch)
    meta, aio = modules["edgecases.meta"], modules["edgecases.aio"]
    before = _snapshot(meta), _snapshot(aio)
    early_run = meta.Registry.run  # taken before instrumentation
    settings = project()
    engine, _ = make_engine("monitoring")
    engine.instrument(meta, settings)
    engine.instrument(aio, settings)
    assert (_snapshot(meta), _snapshot(aio)) == before
    early_run(meta.PluginA())
    assert counters.take(settings.project_id) == {"edgecases.meta.Registry.run": 1, "edgecases.meta.PluginA": 1}
    forget_edgecases()


def test_decorated_functions_are_handed_to_wrapt(edge):
    # functools.wraps wrappers share one code object that is not theirs: counted by wrapt.
    assert type(vars(edge.core)["decorated_one"]) is not types.FunctionType
    assert type(vars(edge.core)["describe"]) is not types.FunctionType  # singledispatch
    assert type(vars(edge.core)["add"]) is types.FunctionType


def test_restart_events_does_not_stop_counting(edge):
    edge.core.add(1, 1)
    sys.monitoring.restart_events()
    for _ in range(1000):
        edge.core.add(1, 1)
    assert edge.take() == {"edgecases.core.add": 1001}


def _twin_modules():
    """Two modules whose public functions share one code object (so two keys, one code)."""
    first = types.ModuleType("twin_a")
    exec("def shared(x):\n    return x + 1\n", vars(first))
    second = types.ModuleType("twin_b")
    clone = types.FunctionType(first.shared.__code__, vars(second), "shared")
    clone.__module__ = "twin_b"
    second.shared = clone
    return first, second


def test_a_code_object_shared_by_two_keys_moves_both_to_wrapt():
    from telly_autoinst.engines import make_engine

    engine, _ = make_engine("monitoring")
    first, second = _twin_modules()
    settings = project(packages=["twin_a", "twin_b"])
    assert engine.instrument(first, settings) == ["twin_a.shared"]
    first.shared(1)
    assert engine.instrument(second, settings) == ["twin_b.shared"]
    assert type(vars(first)["shared"]) is not types.FunctionType  # now a wrapt wrapper
    first.shared(1), second.shared(1), second.shared(2)
    assert counters.take(settings.project_id) == {"twin_a.shared": 2, "twin_b.shared": 2}


_NO_FREE_ID = """
import sys
for tool in (3, 4, 5):
    sys.monitoring.use_tool_id(tool, "someone else")
from telly_autoinst.engines import make_engine
engine, note = make_engine("monitoring")
print(engine.name)
print(note)
"""


def test_falls_back_in_frame_when_no_tool_id_is_free(tmp_path):
    proc = subprocess.run([sys.executable, "-c", _NO_FREE_ID], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    name, note = proc.stdout.splitlines()
    assert name == "rewrite" and "no free sys.monitoring tool id" in note and "someone else" in note


_LATE_TOOL = """
import json, sys
sys.path.insert(0, sys.argv[1])
from telly_autoinst.engines import make_engine
from telly_autoinst.settings import project_settings
from telly_autoinst import counters
import edgecases.core as core
engine, _ = make_engine("monitoring")
engine.instrument(core, project_settings({"project_id": "p", "packages": ["edgecases"]}, "t",
                                         environ={}, user_config={}))
# Tools that arrive later keep their usual ids (debugger 0, coverage 1, profiler 2).
for tool in (0, 1, 2):
    sys.monitoring.use_tool_id(tool, "late tool %d" % tool)
    sys.monitoring.set_events(tool, sys.monitoring.events.PY_START)
    sys.monitoring.register_callback(tool, sys.monitoring.events.PY_START, lambda code, offset: sys.monitoring.DISABLE)
core.add(1, 2); core.add(3, 4)
print(json.dumps(counters.take("p")))
"""


def test_other_tools_can_still_claim_their_ids(tmp_path):
    proc = subprocess.run([sys.executable, "-c", _LATE_TOOL, str(ROOT / "tests/fixtures/pkg_edgecases")],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"edgecases.core.add": 2}


def test_a_function_reused_as_an_initializer_in_either_order():
    from telly_autoinst.engines import make_engine

    engine, _ = make_engine("monitoring")
    module = types.ModuleType("reuse_mod")
    exec("__all__ = ['Configured', 'setup']\n"  # the class is selected first
         "def setup(self, n=0):\n    self.n = n\n"
         "class Configured:\n    __init__ = setup\n", vars(module))
    settings = project(packages=["reuse_mod"])
    assert engine.instrument(module, settings) == ["reuse_mod.Configured", "reuse_mod.setup"]
    assert type(vars(module)["setup"]) is not types.FunctionType  # the function key went to wrapt
    assert vars(module.Configured)["__init__"].__code__ is module.setup.__code__
    module.Configured(1), module.setup(types.SimpleNamespace(), 2)
    assert counters.take(settings.project_id) == {"reuse_mod.Configured": 1, "reuse_mod.setup": 1}
