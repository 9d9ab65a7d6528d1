"""The harness's own machinery: it must tell outcomes apart and notice every kind of difference."""

import dataclasses
import subprocess
import sys
import textwrap

from tests.transparency.harness import SUBJECTS, Comparison, RunResult, parse_junit, parse_summary

_SUITE = textwrap.dedent("""
    import pytest

    @pytest.fixture
    def broken():
        raise RuntimeError("fixture broke")

    def test_pass():
        pass

    def test_fail():
        assert 1 == 2

    def test_skip():
        pytest.skip("not here")

    @pytest.mark.xfail(reason="known")
    def test_xfail():
        assert False

    @pytest.mark.xfail(reason="strict", strict=True)
    def test_xpass_strict():
        pass

    def test_error(broken):
        pass

    @pytest.mark.parametrize("n", [1, 2])
    def test_param(n):
        assert n
""")


def _run(tmp_path):
    (tmp_path / "test_sample.py").write_text(_SUITE)
    junit = tmp_path / "junit.xml"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
                           "test_sample.py"], cwd=tmp_path, capture_output=True, text=True)
    return proc, junit


def test_junit_and_summary_tell_every_outcome_apart(tmp_path):
    proc, junit = _run(tmp_path)
    outcomes, messages = parse_junit(junit)
    by_name = {test.split("::")[1]: outcome for test, outcome in outcomes.items()}
    assert by_name == {
        "test_pass": "passed", "test_fail": "failed", "test_skip": "skipped", "test_xfail": "xfailed",
        "test_xpass_strict": "failed", "test_error": "error", "test_param[1]": "passed", "test_param[2]": "passed",
    }
    assert "assert 1 == 2" in next(m for t, m in messages.items() if t.endswith("test_fail"))
    assert parse_summary(proc.stdout) == {"failed": 2, "passed": 3, "skipped": 1, "xfailed": 1, "error": 1}


def _result(mode, outcomes, module_file="/venv/site-packages/click/__init__.py", stats=None):
    return RunResult(mode=mode, returncode=0, outcomes=outcomes, messages={"t::b": "boom"},
                     summary={"passed": len(outcomes)}, module_file=module_file, sys_path=[], stats=stats or {},
                     report_files=1, stderr_tail="")


def _comparison(plain, instrumented, selectable=None):
    stats = instrumented.stats
    return Comparison(subject=SUBJECTS["click"], python="3.11", engine="wrapt", plain=plain,
                      instrumented=instrumented, site_packages="/venv/site-packages",
                      selectable=set(stats) if selectable is None else selectable, not_counted=set(),
                      dry_run_error="")


def _many_counts():
    return {f"click.core.f{i}": 1 for i in range(SUBJECTS["click"].min_counted)}


def test_identical_runs_with_enough_counts_have_no_problems():
    same = {"t::a": "passed", "t::b": "failed"}
    comparison = _comparison(_result("plain", same), _result("instrumented", same, stats=_many_counts()))
    assert comparison.problems() == []
    assert comparison.row()["verdict"] == "same"


def test_every_difference_is_reported():
    plain = _result("plain", {"t::a": "passed", "t::b": "passed"}, module_file="/src/click/__init__.py")
    stats = dict(_many_counts(), **{"other.f": 1, "click.zero": 0})
    instrumented = _result("instrumented", {"t::a": "passed", "t::b": "failed"}, stats=stats)
    problems = "\n".join(_comparison(plain, instrumented, selectable=set(_many_counts())).problems())
    assert "plain: click was imported from '/src/click/__init__.py'" in problems
    assert "outcome counts differ" in problems
    assert "t::b: plain passed, instrumented failed\n    boom" in problems
    assert "counted keys outside click: ['other.f']" in problems
    assert "non-positive or non-integer counts for ['click.zero']" in problems
    assert "--dry-run does not list" in problems


def test_too_few_counted_functions_is_a_problem():
    same = {"t::a": "passed"}
    comparison = _comparison(_result("plain", same), _result("instrumented", same, stats={"click.core.main": 3}))
    assert any("only 1 distinct click functions counted" in p for p in comparison.problems())


def test_timing_dependent_tests_are_named_not_compared():
    subject = dataclasses.replace(SUBJECTS["click"], flaky=("t::slow",))
    plain = _result("plain", {"t::a": "passed", "t::slow": "failed"})
    instrumented = _result("instrumented", {"t::a": "passed", "t::slow": "passed"}, stats=_many_counts())
    comparison = dataclasses.replace(_comparison(plain, instrumented), subject=subject)
    assert comparison.problems() == []
    assert comparison.row()["verdict"] == "same (timing-dependent, not compared: t::slow)"
    # Any other difference is still one.
    instrumented.outcomes["t::a"] = "failed"
    assert any("t::a: plain passed, instrumented failed" in p for p in comparison.problems())
    assert comparison.changed() == ["t::a"]


def test_changed_leaves_out_only_the_timing_dependent_tests():
    """The tests that differ, for the engines whose known differences are compared exactly."""
    subject = dataclasses.replace(SUBJECTS["click"], flaky=("t::slow",))
    plain = _result("plain", {"t::a": "passed", "t::b": "passed", "t::slow": "passed"})
    instrumented = _result("instrumented", {"t::a": "failed", "t::b": "passed", "t::slow": "failed",
                                            "t::new": "passed"}, stats=_many_counts())
    comparison = dataclasses.replace(_comparison(plain, instrumented), subject=subject)
    assert comparison.changed() == ["t::a", "t::new"]
    assert comparison.flaky_changes() == ["t::slow"]
