"""wrapt engine specifics: what it patches, where, once, and what it leaves alone."""

import os
import subprocess
import sys
import types

import pytest

from telly_autoinst.engines import wrapping
from tests.support.engines import forget_edgecases, instrumented, project
from tests.support.venvs import ROOT


@pytest.fixture
def edge(monkeypatch):
    yield instrumented(monkeypatch, "wrapt")
    forget_edgecases()


def test_functions_and_methods_are_patched_in_place_classes_are_not(edge):
    core = edge.core
    assert type(vars(core)["add"]) is wrapping._CountedFunction
    assert type(vars(core)["Shape"]) is type
    shape_dict = vars(core.Shape)
    assert type(shape_dict["describe"]) is wrapping._CountedFunction
    # wrapt sits outside classmethod/staticmethod, and still looks like them.
    assert type(shape_dict["unit"]) is wrapping._CountedFunction and isinstance(shape_dict["unit"], classmethod)
    assert isinstance(shape_dict["sum_sides"], staticmethod)
    assert type(shape_dict["__init__"]) is wrapping._CountedInit
    assert "__init__" not in vars(core.Triangle)  # observed through Shape.__init__, nothing added
    assert isinstance(shape_dict["label"], property)  # properties are left as they are
    assert type(vars(core)["square_lambda"]) is types.FunctionType


def test_restrictive_metaclass_is_bypassed_for_patching(edge):
    assert type(vars(edge.meta.Locked)["ping"]) is wrapping._CountedFunction


def test_one_wrapper_per_original_and_no_wrapper_of_a_wrapper(edge):
    core = edge.core
    assert type(core.add.__wrapped__) is types.FunctionType
    assert edge.engine.instrument(core, edge.project) == []
    assert type(core.add.__wrapped__) is types.FunctionType
    # A second project instrumenting the same module object adds nothing either.
    assert edge.engine.instrument(core, project()) == []


def test_bound_wrappers_pickle_like_bound_methods(edge):
    shape = edge.core.Shape("b")
    reduced = shape.describe.__reduce_ex__(4)
    assert reduced == (getattr, (shape, "describe"))
    assert edge.core.Shape.unit.__reduce_ex__(4) == (getattr, (edge.core.Shape, "unit"))
    assert edge.core.Shape.sum_sides.__reduce_ex__(4) == (getattr, (edge.core.Shape, "sum_sides"))
    assert edge.core.square.__reduce_ex__(4) == "square"


def test_a_target_that_cannot_be_patched_is_skipped_not_the_module(edge, monkeypatch):
    real_set = wrapping._set

    def refuse_add(owner, name, value):
        if name == "add":
            raise TypeError("read-only")
        real_set(owner, name, value)

    monkeypatch.setattr(wrapping, "_set", refuse_add)
    forget_edgecases()
    again = instrumented(monkeypatch, "wrapt")
    assert "edgecases.core.add" not in again.keys["edgecases.core"]
    assert "edgecases.core.square" in again.keys["edgecases.core"]
    again.core.add(1, 1), again.core.square(2)
    assert again.take() == {"edgecases.core.square": 1}


_FORK_WHILE_INSTRUMENTING = """
import os, sys, threading, types
from telly_autoinst.engines import make_engine
from telly_autoinst.settings import project_settings
engine, _ = make_engine("wrapt")
held, release = threading.Event(), threading.Event()
def hold():
    with engine._lock:  # another thread is in the middle of instrumenting a module
        held.set()
        release.wait()
threading.Thread(target=hold, daemon=True).start()
held.wait()
child = os.fork()
if child == 0:
    module = types.ModuleType("forked_mod")
    exec("def f():\\n    return 1\\n", vars(module))
    keys = engine.instrument(module, project_settings({"project_id": "p", "packages": ["forked_mod"]}, "t",
                                                      environ={}, user_config={}))
    os._exit(0 if keys == ["forked_mod.f"] else 3)
release.set()
_, status = os.waitpid(child, 0)
print(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_fork_during_instrumentation_does_not_deadlock_the_child(tmp_path):
    proc = subprocess.run([sys.executable, "-c", _FORK_WHILE_INSTRUMENTING], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "0"
