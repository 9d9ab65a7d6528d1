"""Other projects' own test suites give the same results with and without instrumentation."""

import pytest

from tests.support.venvs import find_python
from tests.transparency.harness import SUBJECTS, compare, prepare

pytestmark = pytest.mark.slow

VERSIONS = ("3.9", "3.11", "3.13")
# Every subject on every supported Python with the default engine and with the proxy engine
# (issue 8). More: `python -m tests.transparency --python ... --engine ...`.
CONFIGS = [(v, e) for v in VERSIONS for e in ("auto", "wrapt")]
# What the proxy engine cannot hide (README, "Engines"): boltons builds namedtuple-style types
# for sys._getframe(1)'s module and pickles them, and reads its caller's frame from a traceback.
WRAPT_VISIBLE = {"boltons": {"tests.test_namedutils::test_namedlist_pickle",
                             "tests.test_namedutils::test_namedtuple_pickle",
                             "tests.test_tbutils::test_contextual"}}


@pytest.fixture(scope="module")
def prepared(venvs, tmp_path_factory):
    """One venv per Python with every subject installed, built on first use."""
    cache = {}

    def get(version):
        if version not in cache:
            python = find_python(version)
            if python is None:
                pytest.skip(f"python {version} is not installed")
            work = tmp_path_factory.mktemp(f"transparency-{version}")
            cache[version] = (work,) + prepare(venvs, work, python=python)
        return cache[version]

    return get


@pytest.fixture(scope="module")
def compared(prepared):
    """``compare`` once per (subject, python, engine) for the whole module."""
    results = {}

    def get(name, version, engine):
        if (name, version, engine) not in results:
            work, venv, subjects, trees = prepared(version)
            results[name, version, engine] = compare(venv, SUBJECTS[name], trees[name], work / engine, version, engine)
        return results[name, version, engine]

    return get


@pytest.mark.parametrize("version,engine", CONFIGS, ids=[f"{v}-{e}" for v, e in CONFIGS])
@pytest.mark.parametrize("name", sorted(SUBJECTS))
def test_suite_results_unchanged_and_counted(compared, name, version, engine):
    result = compared(name, version, engine)
    visible = WRAPT_VISIBLE.get(name) if engine == "wrapt" else None
    if visible:
        changed = {t for t in set(result.plain.outcomes) | set(result.instrumented.outcomes)
                   if result.plain.outcomes.get(t) != result.instrumented.outcomes.get(t)}
        assert changed == visible and {result.instrumented.outcomes[t] for t in visible} == {"failed"}
        return
    problems = result.problems()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", sorted(SUBJECTS))
def test_every_engine_lists_and_counts_the_same_keys(compared, name):
    """The same program gives the same keys whichever engine counts it (3.13 has all three)."""
    results = {engine: compared(name, "3.13", engine) for engine in ("auto", "wrapt", "monitoring")}
    listed = {engine: r.selectable for engine, r in results.items()}
    assert listed["auto"] is not None and listed["auto"] == listed["wrapt"] == listed["monitoring"]
    counted = {engine: {k for k, v in r.instrumented.stats.items() if v} for engine, r in results.items()}
    if name in WRAPT_VISIBLE:
        # The tests that wrapt's frame breaks stop early, so wrapt may miss keys they reach
        # (boltons: tbutils' to_dict and from_tb); it must still count nothing the default misses.
        assert counted["wrapt"] <= counted["auto"], sorted(counted["wrapt"] - counted["auto"])
        del counted["wrapt"]
    differing = {engine: sorted(keys ^ counted["auto"]) for engine, keys in counted.items() if keys != counted["auto"]}
    assert not differing, differing
