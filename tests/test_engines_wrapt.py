"""wrapt engine specifics: what it patches, where, once, and what it leaves alone."""

import types

import pytest

from telly_autoinst.engines import wrapping
from tests.support.engines import forget_edgecases, instrumented, project


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
