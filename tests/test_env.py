"""Reading the environment: the same answers as os.environ, read live, without its cost per variable;
and TELLY_DEBUG, read from the environment only, printing every swallowed error and every consent decision."""

import os

import pytest

from telly_autoinst import _env
from tests.support.hook import HATCH_PROGRAM


@pytest.fixture
def clean(monkeypatch):
    for name in list(os.environ):
        if name.startswith("TELLY_") or name in ("CI", "GITHUB_ACTIONS", "BUILD_ID"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_a_variable_reads_what_os_environ_holds_now(clean):
    assert _env.variable("TELLY_ENV_TEST") is None
    clean.setenv("TELLY_ENV_TEST", "été")
    assert _env.variable("TELLY_ENV_TEST") == os.environ["TELLY_ENV_TEST"] == "été"
    os.environ["TELLY_ENV_TEST"] = "changed by the program"
    assert _env.variable("TELLY_ENV_TEST") == "changed by the program"
    del os.environ["TELLY_ENV_TEST"]
    assert _env.variable("TELLY_ENV_TEST") is None


@pytest.mark.skipif(os.name != "posix", reason="bytes names exist on POSIX only")
def test_undecodable_names_and_values_read_as_os_environ_reads_them(clean):
    os.environb[b"TELLY_\xff"] = b"\xfe"
    try:
        [name] = [n for n in os.environ if n.startswith("TELLY_")]
        assert _env.names_with("TELLY_") == [name]
        assert _env.variable(name) == os.environ[name]
    finally:
        del os.environb[b"TELLY_\xff"]
    assert _env.names_with("TELLY_") == []


def test_names_with_a_prefix_only(clean):
    clean.setenv("TELLY_ONE", "1")
    clean.setenv("TELLY_TWO", "")
    clean.setenv("NOT_TELLY_THREE", "3")
    assert sorted(_env.names_with("TELLY_")) == ["TELLY_ONE", "TELLY_TWO"]


def test_an_environment_that_is_not_os_environs_own_is_read_through_its_mapping(clean):
    clean.setattr(os, "environ", {"TELLY_ONE": "1", "GITHUB_ACTIONS": "true"})
    assert _env.variable("TELLY_ONE") == "1"
    assert _env.variable("TELLY_TWO") is None
    assert _env.names_with("TELLY_") == ["TELLY_ONE"]
    assert _env.ci_vendor() == (True, "github_actions")


@pytest.mark.parametrize("variables, expected", [
    ({}, (False, None)), ({"CI": "true"}, (True, None)), ({"CI": "false", "GITHUB_ACTIONS": "true"}, (False, None)),
    ({"GITHUB_ACTIONS": "true"}, (True, "github_actions")), ({"GITHUB_ACTIONS": ""}, (False, None)),
    ({"BUILD_ID": "7"}, (True, None))])
def test_ci_vendor_from_os_environ_and_from_a_mapping(clean, variables, expected):
    assert _env.ci_vendor(variables) == expected
    for name, value in variables.items():
        clean.setenv(name, value)
    assert _env.ci_vendor() == expected


# -- TELLY_DEBUG --------------------------------------------------------------------------------


def test_swallowed_prints_where_and_the_traceback_only_when_asked(monkeypatch, capsys):
    monkeypatch.delenv("TELLY_DEBUG", raising=False)
    try:
        raise KeyError("boom")
    except KeyError:
        _env.swallowed("somewhere")
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("TELLY_DEBUG", "1")
    try:
        raise KeyError("boom")
    except KeyError:
        _env.swallowed("somewhere")
    err = capsys.readouterr().err
    assert err.startswith("telly_autoinst: somewhere, error swallowed:\nTraceback")
    assert "KeyError: 'boom'" in err


@pytest.mark.slow
def test_a_broken_config_file_cannot_silence_debug(hatch_venv, home):
    config = home / ".config" / "telly_autoinst" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('timer_interval_sec = "soon"\n')
    quiet = hatch_venv.run(HATCH_PROGRAM, home)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "5\n", "")
    loud = hatch_venv.run(HATCH_PROGRAM, home, env={"TELLY_DEBUG": "1"})
    assert (loud.returncode, loud.stdout) == (0, "5\n")
    assert "sample_hatch, error swallowed:" in loud.stderr
    assert "timer_interval_sec: expected a positive number of seconds, got 'soon'" in loud.stderr


@pytest.mark.slow
def test_consent_decisions_and_losses_are_printed(hatch_venv, home):
    (home / ".telly_optout").write_text("sample-hatch-project\n")
    proc = hatch_venv.run(HATCH_PROGRAM, home, env={"TELLY_DEBUG": "1"})
    assert proc.stdout == "5\n"
    assert ("consent for sample-hatch-project: do not send (opted out (~/.telly_optout))" in proc.stderr)


@pytest.mark.slow
def test_a_malformed_package_table_is_named_at_run_time(venvs, sample_wheels, home):
    venv = venvs.get(extra=[sample_wheels["pkg_hatch"], sample_wheels["pkg_badconfig"]])
    proc = venv.run("import sample_hatch\n", home, env={"TELLY_DEBUG": "1"})
    assert "ignoring a package's settings:" in proc.stderr and "include: expected an array, got 5" in proc.stderr
