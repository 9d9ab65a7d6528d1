"""The engine factory: singletons, fallbacks with a note, and the record of instrumented keys."""

import importlib
import sys

import pytest

from telly_autoinst.engines import instrumented_keys, make_engine
from tests.support.engines import forget_edgecases, instrumented


def test_the_in_frame_rewrite_is_the_default_and_a_singleton():
    engine, note = make_engine()
    assert engine.name == "rewrite" and note is None
    assert make_engine("auto")[0] is engine and make_engine("rewrite")[0] is engine


def test_wrapt_only_on_request_and_a_singleton():
    engine, note = make_engine("wrapt")
    assert engine.name == "wrapt" and note is None
    assert make_engine("wrapt")[0] is engine


def test_unknown_engine_falls_back_in_frame_with_a_note():
    engine, note = make_engine("bytecode")
    assert engine.name == "rewrite" and "bytecode" in note


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="the fallback is for Pythons without sys.monitoring")
def test_monitoring_before_3_12_falls_back_in_frame_with_a_note():
    engine, note = make_engine("monitoring")
    assert engine.name == "rewrite" and "3.12" in note


@pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring needs Python 3.12+")
def test_monitoring_is_a_singleton():
    engine, note = make_engine("monitoring")
    assert engine.name == "monitoring" and note is None
    assert make_engine("monitoring")[0] is engine


def test_instrumented_keys_is_a_copy_per_project(monkeypatch):
    edge = instrumented(monkeypatch, "wrapt")
    keys = instrumented_keys(edge.project.project_id)
    assert "edgecases.core.add" in keys and "edgecases.meta.Box.get" in keys
    keys.clear()
    assert instrumented_keys(edge.project.project_id)
    assert instrumented_keys("never-instrumented") == set()
    forget_edgecases()


@pytest.mark.parametrize("module, names", [
    ("engines", ["Engine", "ENGINES", "make_engine", "engine_name", "instrumented_keys", "fallback"]),
    ("selection", ["select", "plan_of", "uncounted"]),
    ("engines._base", ["Target", "make_target", "Instantiations", "unwrapped", "package_init_owner", "record"]),
    ("counters", ["tick_for", "steps_for", "enable_keys", "take", "give_back", "pending_projects"]),
])
def test_names_the_rest_of_the_client_uses(module, names):
    # No __all__ outside the package's __init__ (tests/test_exported_members.py): these are the
    # names other modules import, so they must stay public and defined.
    imported = importlib.import_module(f"telly_autoinst.{module}")
    assert [n for n in names if not hasattr(imported, n)] == []
