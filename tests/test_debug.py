"""TELLY_DEBUG: read from the environment only; every swallowed error and every consent decision is printed."""

import pytest

from telly_autoinst import _debug


def test_swallowed_prints_where_and_the_traceback_only_when_asked(monkeypatch, capsys):
    monkeypatch.delenv("TELLY_DEBUG", raising=False)
    try:
        raise KeyError("boom")
    except KeyError:
        _debug.swallowed("somewhere")
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("TELLY_DEBUG", "1")
    try:
        raise KeyError("boom")
    except KeyError:
        _debug.swallowed("somewhere")
    err = capsys.readouterr().err
    assert err.startswith("telly_autoinst: somewhere, error swallowed:\nTraceback")
    assert "KeyError: 'boom'" in err


@pytest.fixture(scope="module")
def venv(venvs, sample_wheels):
    return venvs.get(extra=[sample_wheels["pkg_hatch"]])


PROGRAM = "import sample_hatch\nprint(sample_hatch.add(2, 3))\n"


@pytest.mark.slow
def test_a_broken_config_file_cannot_silence_debug(venv, home):
    config = home / ".config" / "telly_autoinst" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('timer_interval_sec = "soon"\n')
    quiet = venv.run(PROGRAM, home)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "5\n", "")
    loud = venv.run(PROGRAM, home, env={"TELLY_DEBUG": "1"})
    assert (loud.returncode, loud.stdout) == (0, "5\n")
    assert "sample_hatch, error swallowed:" in loud.stderr
    assert "timer_interval_sec: expected a positive number of seconds, got 'soon'" in loud.stderr


@pytest.mark.slow
def test_consent_decisions_and_losses_are_printed(venv, home):
    (home / ".telly_optout").write_text("sample-hatch-project\n")
    proc = venv.run(PROGRAM, home, env={"TELLY_DEBUG": "1"})
    assert proc.stdout == "5\n"
    assert ("consent for sample-hatch-project: do not send (opted out (~/.telly_optout))" in proc.stderr)


@pytest.mark.slow
def test_a_malformed_package_table_is_named_at_run_time(venvs, sample_wheels, home):
    venv = venvs.get(extra=[sample_wheels["pkg_hatch"], sample_wheels["pkg_badconfig"]])
    proc = venv.run("import sample_hatch\n", home, env={"TELLY_DEBUG": "1"})
    assert "ignoring a package's settings:" in proc.stderr and "include: expected an array, got 5" in proc.stderr
