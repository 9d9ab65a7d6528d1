"""Other projects' own test suites give the same results with and without instrumentation."""

import pytest

from tests.support.venvs import find_python
from tests.transparency.harness import SUBJECTS, compare, prepare

pytestmark = pytest.mark.slow

# (python, engine): the oldest supported Python and the default one with the default engine, and
# the sys.monitoring engine on the newest. More: `python -m tests.transparency --python ... --engine ...`.
CONFIGS = [("3.9", "wrapt"), ("3.11", "wrapt"), ("3.13", "monitoring")]


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


@pytest.mark.parametrize("version,engine", CONFIGS, ids=[f"{v}-{e}" for v, e in CONFIGS])
@pytest.mark.parametrize("name", sorted(SUBJECTS))
def test_suite_results_unchanged_and_counted(prepared, name, version, engine):
    work, venv, subjects, trees = prepared(version)
    result = compare(venv, SUBJECTS[name], trees[name], work / engine, version, engine)
    problems = result.problems()
    assert not problems, "\n".join(problems)
