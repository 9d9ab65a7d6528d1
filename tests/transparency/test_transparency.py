"""Other projects' own test suites give the same results with and without instrumentation."""

import pytest

from tests.support.venvs import find_python
from tests.transparency.harness import SUBJECTS, Runs

pytestmark = pytest.mark.slow

VERSIONS = ("3.9", "3.11", "3.13")
# Every subject on every supported Python with the default engine, and with the proxy engine on
# 3.13 (the Python on which all three engines are compared below); the proxy engine on 3.9 and
# 3.11 is marked `full` (tests/run --full, docs/testing.md). More:
# `python -m tests.transparency --python ... --engine ...`.
CONFIGS = [pytest.param(v, "auto", id=f"{v}-auto") for v in VERSIONS] + [
    pytest.param(v, "wrapt", id=f"{v}-wrapt", marks=() if v == "3.13" else pytest.mark.full) for v in VERSIONS]
# What the proxy engine cannot hide (docs/engines.md): boltons builds namedtuple-style types
# for sys._getframe(1)'s module and pickles them, and reads its caller's frame from a traceback.
WRAPT_VISIBLE = {"boltons": {"tests.test_namedutils::test_namedlist_pickle",
                             "tests.test_namedutils::test_namedtuple_pickle",
                             "tests.test_tbutils::test_contextual"}}
ENGINES_COMPARED = ("auto", "wrapt", "monitoring")


def _needed(item):
    """The (subject, Python, engine) runs a selected test of this module compares."""
    params = item.callspec.params
    if item.originalname == "test_suite_results_unchanged_and_counted":
        return [(params["name"], params["version"], params["engine"])]
    return [(params["name"], "3.13", engine) for engine in ENGINES_COMPARED]


@pytest.fixture(scope="module")
def runs(venvs, tmp_path_factory, request):
    """Every run this module's selected tests compare, queued at once in the tests' order.

    The pool of two then never waits for a test to ask, and a subject's plain run is done once
    per Python however many engines are compared with it.
    """
    runs = Runs(venvs, tmp_path_factory.mktemp("transparency"))
    for item in request.session.items:
        if getattr(item, "module", None) is request.module:
            for name, version, engine in _needed(item):
                if find_python(version):
                    runs.submit(name, version, engine)
    yield runs
    runs.close()


def _compared(runs, name, version, engine):
    if find_python(version) is None:
        pytest.skip(f"python {version} is not installed")
    return runs.comparison(name, version, engine)


@pytest.mark.parametrize("version,engine", CONFIGS)
@pytest.mark.parametrize("name", sorted(SUBJECTS))
def test_suite_results_unchanged_and_counted(runs, name, version, engine):
    result = _compared(runs, name, version, engine)
    visible = WRAPT_VISIBLE.get(name) if engine == "wrapt" else None
    if visible:
        # What it cannot hide fails; nothing else changes (timing-dependent tests are not compared).
        assert set(result.changed()) == visible and {result.instrumented.outcomes[t] for t in visible} == {"failed"}
        return
    problems = result.problems()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", sorted(SUBJECTS))
def test_every_engine_lists_and_counts_the_same_keys(runs, name):
    """The same program gives the same keys whichever engine counts it (3.13 has all three)."""
    results = {engine: _compared(runs, name, "3.13", engine) for engine in ENGINES_COMPARED}
    listed = {engine: r.selectable for engine, r in results.items()}
    assert listed["auto"] is not None and results["auto"].not_counted is not None
    # What only the in-frame engine cannot count (a generated __init__: no source to rewrite) it
    # lists as not counted, where a proxy counts it; everything else is the same for every engine.
    in_frame_only = results["auto"].not_counted - (results["wrapt"].not_counted or set())
    assert listed["auto"] | in_frame_only == listed["wrapt"] == listed["monitoring"]
    counted = {engine: {k for k, v in r.instrumented.stats.items() if v} for engine, r in results.items()}
    counted = {engine: keys if engine == "auto" else keys - in_frame_only for engine, keys in counted.items()}
    if name in WRAPT_VISIBLE:
        # The tests that wrapt's frame breaks stop early, so wrapt may miss keys they reach
        # (boltons: tbutils' to_dict and from_tb); it must still count nothing the default misses.
        assert counted["wrapt"] <= counted["auto"], sorted(counted["wrapt"] - counted["auto"])
        del counted["wrapt"]
    differing = {engine: sorted(keys ^ counted["auto"]) for engine, keys in counted.items() if keys != counted["auto"]}
    assert not differing, differing
