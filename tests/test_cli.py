"""The command line against a mock of the domain API: arguments in, text and exit codes out."""

import json
import subprocess
import sys

import pytest

from telly_autoinst import cli, consent, dryrun, preview
from telly_autoinst.errors import ConfigError
from tests.support.venvs import ROOT, clean_env


@pytest.fixture
def calls(monkeypatch):
    """Every consent edit is recorded instead of touching a home directory."""
    seen = []
    monkeypatch.setattr(consent, "optin", lambda project_id: seen.append(("optin", project_id)))
    monkeypatch.setattr(consent, "optout", lambda project_id: seen.append(("optout", project_id)))
    monkeypatch.setattr(consent, "watched_projects", lambda: {"proj-1": object()})
    return seen


def test_command_with_positional(calls, capsys):
    assert cli.main(["optin", "proj-1"]) == 0
    assert calls == [("optin", "proj-1")]
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("opted in: proj-1\n", "")


def test_json_flag_before_or_after_command(calls, capsys):
    cli.main(["--json", "optout", "proj-1"])
    cli.main(["optout", "proj-1", "--json"])
    outputs = capsys.readouterr().out.strip().split("\n}\n")
    assert [json.loads(o + ("\n}" if not o.endswith("}") else ""))["project_id"] for o in outputs] == ["proj-1"] * 2


@pytest.mark.parametrize("bad", ["", "has space", "two\nlines", "x" * 129, "é"])
def test_invalid_project_ids_are_refused_before_any_edit(calls, capsys, bad):
    assert cli.main(["optout", bad]) == 2
    captured = capsys.readouterr()
    assert calls == [] and captured.out == ""
    assert "is not a valid project id" in captured.err


def test_a_name_that_matches_no_project_is_refused(calls, capsys):
    # A typo must not look like an opt-out while the package keeps reporting.
    assert cli.main(["optout", "someone-else"]) == 2
    captured = capsys.readouterr()
    assert calls == [] and captured.out == ""
    assert "'someone-else' is neither the project id nor the distribution name" in captured.err


def test_a_distribution_name_stands_for_its_project(calls, monkeypatch, capsys):
    from types import SimpleNamespace

    project = SimpleNamespace(project_id="us-3bc8f1", distribution="tk-stats", packages=("tk_st",))
    monkeypatch.setattr(consent, "watched_projects", lambda: {"us-3bc8f1": project})
    for name in ("tk-stats", "TK_Stats", "tk_st", "US-3BC8F1"):
        assert cli.main(["optout", name]) == 0
    assert calls == [("optout", "us-3bc8f1")] * 4
    assert capsys.readouterr().out.splitlines()[0] == "opted out: tk-stats (project us-3bc8f1)"
    assert cli.main(["--json", "optin", "tk-stats"]) == 0
    assert json.loads(capsys.readouterr().out)["project_id"] == "us-3bc8f1"


def test_dry_run_says_that_distributions_sharing_a_project_id_are_reported_apart(monkeypatch, capsys):
    def entry(name):
        return {"distribution": name, "version": "1.0", "project_id": "us-3bc8f1", "packages": [name], "source": "t",
                "engine": "rewrite", "engine_note": None, "endpoint": None, "problems": [], "keys": [], "engines": {},
                "not_counted": []}

    monkeypatch.setattr(dryrun, "plan", lambda: {"ok": True, "kill_switch": None, "errors": [],
                                                 "distributions": [entry("acme-other"), entry("acme-textutils")]})
    assert cli.main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "  shares project us-3bc8f1 with acme-textutils: reported apart, under its own name and version" in out
    assert "  shares project us-3bc8f1 with acme-other: reported apart, under its own name and version" in out


def test_option_handler_exit_code(monkeypatch, capsys):
    monkeypatch.setattr(dryrun, "plan", lambda: {"ok": False, "kill_switch": None, "errors": ["bad table"],
                                                 "distributions": []})
    assert cli.main(["--dry-run", "--json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["errors"] == ["bad table"]
    assert "error: bad table" in captured.err


def test_errors_go_to_stderr_with_exit_code_2(calls, monkeypatch, capsys):
    def broken(project_id):
        raise OSError("read-only file system")

    monkeypatch.setattr(consent, "optout", broken)
    assert cli.main(["optout", "proj-1"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "read-only file system" in captured.err


def test_config_error_of_a_handler_goes_to_stderr(monkeypatch, capsys):
    def broken():
        raise ConfigError("pyproject.toml: include: expected a list")

    monkeypatch.setattr(preview, "preview", broken)
    assert cli.main(["show"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "include: expected a list" in captured.err


def test_enable_says_removed_only_when_it_removed(monkeypatch, capsys):
    monkeypatch.setattr(consent, "enable", lambda: False)
    cli.main(["enable"])
    assert "there was none; nothing changed" in capsys.readouterr().out
    monkeypatch.setattr(consent, "enable", lambda: True)
    cli.main(["enable"])
    assert "~/.telly_disable removed" in capsys.readouterr().out


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 2
    assert "usage:" in capsys.readouterr().out


def test_every_command_has_a_handler_in_the_cli_module():
    for name, _, _, handler in cli._COMMANDS:
        assert callable(handler) and handler.__module__ == cli.__name__, name
    for flag, _, handler in cli._OPTIONS:
        assert callable(handler) and handler.__module__ == cli.__name__, flag


@pytest.mark.parametrize("args", [["status"], ["--dry-run"], ["show", "--json"]])
def test_broken_pipe_is_quiet(tmp_path, args):
    """`--dry-run | head -1`: the reader is gone before the output is written; no traceback, normal exit code."""
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)  # deterministic: every write the child makes hits a closed pipe (EPIPE)
    try:
        proc = subprocess.run([sys.executable, "-m", "telly_autoinst", *args], stdout=write_end,
                              stderr=subprocess.PIPE, env=clean_env(tmp_path, PYTHONPATH=str(ROOT)),
                              timeout=120, cwd=str(tmp_path))
    finally:
        os.close(write_end)
    assert proc.stderr.decode() == ""
    assert proc.returncode == 0
