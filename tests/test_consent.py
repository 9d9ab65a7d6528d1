"""Consent: kill switches, opt-in/opt-out lists, CI, the first-run notice, re-checks at send time, and the CLI."""

import json
import multiprocessing
import os

import pytest

from telly_autoinst import consent
from telly_autoinst.cli import main as cli_main
from telly_autoinst.settings import process_settings, project_settings


@pytest.fixture
def home(tmp_path, monkeypatch):
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("HOME", str(path))
    for var in ("TELLY_DISABLE", "DO_NOT_TRACK", "TELLY_OPTIN", "CI", "GITHUB_ACTIONS", "BUILD_NUMBER",
                "BUILD_ID", "RUN_ID", "CONTINUOUS_INTEGRATION", "JENKINS_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(consent, "_interactive", lambda: False)
    return path


def _project(pid="proj-x", **table):
    return project_settings({"project_id": pid, **table}, "test", default_packages=("pkg",), environ={},
                            user_config={})


def _process(**env):
    return process_settings(environ=env, user_config={})


def test_default_is_on_without_a_tty(home):
    decision = consent.decide(_project(), _process(), environ={})
    assert decision.send and "opt-out mode" in decision.reason
    assert not (home / ".telly_notices").exists()


@pytest.mark.parametrize("environ, named", [({"TELLY_DISABLE": "1"}, "TELLY_DISABLE"),
                                            ({"TELLY_DISABLE": "YES"}, "TELLY_DISABLE"),
                                            ({"DO_NOT_TRACK": "1"}, "DO_NOT_TRACK"),
                                            ({"DO_NOT_TRACK": "true"}, "DO_NOT_TRACK"),
                                            # Console Do Not Track: set at all, even empty, is not consent.
                                            ({"DO_NOT_TRACK": ""}, "DO_NOT_TRACK"),
                                            ({"DO_NOT_TRACK": "anything"}, "DO_NOT_TRACK")])
def test_kill_switch_env(home, environ, named):
    decision = consent.decide(_project(), _process(), environ=environ)
    assert not decision.send and named in decision.reason


def test_kill_switch_file_wins_over_optin(home):
    consent.optin("proj-x")
    (home / ".telly_disable").write_text("")
    assert not consent.decide(_project(), _process(), environ={}).send


def test_optout_then_optin(home):
    assert consent.optout("proj-x") is True
    assert (home / ".telly_optout").read_text() == "proj-x\n"
    assert not consent.decide(_project(), _process(), environ={}).send
    # Ids compare without regard to case, as in the original client.
    assert not consent.decide(_project("PROJ-X"), _process(), environ={}).send
    assert consent.decide(_project("other"), _process(), environ={}).send
    consent.optin("Proj-X")
    assert (home / ".telly_optout").read_text() == ""
    assert consent.decide(_project(), _process(), environ={}).send


@pytest.mark.parametrize("how", ["env", "project"])
def test_optin_mode(home, how):
    process = _process(TELLY_OPTIN="1") if how == "env" else _process()
    project = _project() if how == "env" else _project(mode="optin")
    decision = consent.decide(project, process, environ={})
    assert not decision.send and "opt-in mode" in decision.reason
    consent.optin("proj-x")
    assert consent.decide(project, process, environ={}).send
    assert not consent.decide(_project("other", mode="optin"), process, environ={}).send


def test_missing_and_unwritable_files(home, monkeypatch):
    assert consent._read_ids(".telly_optin") == []
    monkeypatch.setenv("HOME", str(home / "not-a-dir" / "x"))
    (home / "not-a-dir").write_text("")
    assert consent.decide(_project(), _process(), environ={}).send
    with pytest.raises(OSError):
        consent.optout("proj-x")


def test_cli_errors_become_exit_2(home, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(home / "file"))
    (home / "file").write_text("")
    monkeypatch.setattr(consent, "watched_projects", lambda: {"p": _project("p")})
    assert cli_main(["optout", "p"]) == 2
    assert "cannot write" in capsys.readouterr().err


@pytest.mark.parametrize("environ, send_from_ci, expected", [
    ({"CI": "true"}, False, False),
    ({"GITHUB_ACTIONS": "true"}, False, False),
    ({"CI": "false", "GITHUB_ACTIONS": "true"}, False, True),
    ({"CI": "true"}, True, True),
])
def test_ci(home, environ, send_from_ci, expected):
    project = _project(send_from_ci=send_from_ci)
    assert consent.decide(project, _process(), environ=environ).send is expected


def test_notice_once_per_user_and_project(home, monkeypatch, capsys):
    monkeypatch.setattr(consent, "_interactive", lambda: True)
    assert not consent.decide(_project(), _process(), environ={}, show_notice=False).send
    assert consent.decide(_project(), _process(), environ={}).send
    first = capsys.readouterr()
    assert "pkg (project proj-x) collects anonymous usage statistics" in first.err and first.out == ""
    assert consent.decide(_project(), _process(), environ={}).send
    assert consent.decide(_project(), _process(), environ={}, show_notice=False).send
    assert capsys.readouterr().err == ""
    consent.decide(_project("proj-y"), _process(), environ={})
    assert "proj-y" in capsys.readouterr().err


def test_notice_names_the_distribution_and_its_project_id(home, monkeypatch, capsys):
    # People know the package they installed, not its collector id: the notice names both.
    monkeypatch.setattr(consent, "_interactive", lambda: True)
    project = project_settings({"project_id": "us-3bc8f1"}, "test", distribution="tk-stats",
                               default_packages=("tk_st",), environ={}, user_config={})
    assert consent.decide(project, _process(), environ={}).send
    first_line = capsys.readouterr().err.splitlines()[0]
    assert first_line.startswith("telly_autoinst: tk-stats (project us-3bc8f1) collects anonymous usage statistics")


def test_notice_never_in_ci(home, monkeypatch, capsys):
    monkeypatch.setattr(consent, "_interactive", lambda: True)
    assert consent.decide(_project(), _process(), environ={"CI": "1"}).send
    assert capsys.readouterr().err == ""


def test_notice_unrecordable_means_silent_and_no_send(home, monkeypatch, capsys):
    monkeypatch.setattr(consent, "_interactive", lambda: True)
    monkeypatch.setenv("HOME", str(home / "file"))
    (home / "file").write_text("")
    decision = consent.decide(_project(), _process(), environ={})
    assert not decision.send and "cannot be recorded" in decision.reason
    assert capsys.readouterr().err == ""


def _edit_many(args):
    home, worker = args
    os.environ["HOME"] = home
    for i in range(25):
        consent.optout(f"w{worker}-{i}")
        consent.optin(f"in-w{worker}-{i}")


def test_concurrent_edits_lose_nothing(home):
    with multiprocessing.get_context("spawn").Pool(6) as pool:
        pool.map(_edit_many, [(str(home), w) for w in range(6)])
    out = (home / ".telly_optout").read_text().split()
    assert sorted(out) == sorted(f"w{w}-{i}" for w in range(6) for i in range(25))
    assert len((home / ".telly_optin").read_text().split()) == 150


def test_enable_disable(home, monkeypatch, capsys):
    consent.disable()
    assert (home / ".telly_disable").exists()
    assert not consent.decide(_project(), _process()).send
    assert consent.enable() is True
    assert not (home / ".telly_disable").exists()
    assert consent.decide(_project(), _process()).send
    assert consent.enable() is False
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    assert cli_main(["enable", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["still_disabled_by"] == "DO_NOT_TRACK" and data["removed"] is False


def test_status_table_and_json(home, monkeypatch, capsys):
    consent.optout("gone-proj")
    consent.optin("kept-proj")
    monkeypatch.setenv("TELLY_OPTIN", "1")
    assert cli_main(["status"]) == 0
    text = capsys.readouterr().out
    assert "opt-in for every project" in text
    lines = {line.split()[1]: line for line in text.splitlines() if line.endswith(("opted in (~/.telly_optin)",
                                                                                  "opted out (~/.telly_optout)"))}
    assert " off " in lines["gone-proj"] and " on " in lines["kept-proj"]
    assert cli_main(["status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {r["project_id"]: r for r in data["projects"]}
    assert rows["kept-proj"]["on"] and not rows["gone-proj"]["on"]
    assert data["optin_only"] is True


@pytest.mark.parametrize("author, user, shown", [(True, True, "plain"), (True, False, "yes"), (False, True, "yes")])
def test_status_says_plain_only_when_the_package_and_the_user_agreed(home, monkeypatch, capsys, author, user, shown):
    project = project_settings({"project_id": "corp-tool", "level2_plaintext": author}, "t", default_packages=("x",),
                               environ={}, user_config={})
    monkeypatch.setattr(consent, "watched_projects", lambda: {"corp-tool": project})
    if user:
        monkeypatch.setenv("TELLY_LEVEL2_PLAINTEXT", "1")
    assert cli_main(["status"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("x "))
    assert row.split()[3] == shown
    assert cli_main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["projects"][0]["level2_plaintext"] is (shown == "plain")


def test_status_names_the_package_of_each_project(home, monkeypatch, capsys):
    project = project_settings({"project_id": "us-3bc8f1"}, "t", distribution="tk-stats", default_packages=("tk_st",),
                               environ={}, user_config={})
    monkeypatch.setattr(consent, "watched_projects", lambda: {"us-3bc8f1": project})
    assert cli_main(["status"]) == 0
    table = capsys.readouterr().out.split("\n\n", 1)[1].splitlines()
    assert table[0].split()[:3] == ["PACKAGE", "PROJECT", "STATE"]
    assert table[1].split()[:3] == ["tk-stats", "us-3bc8f1", "on"]
    assert cli_main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["projects"][0]["package"] == "tk-stats"


def test_optout_by_distribution_name_turns_the_project_off(home, monkeypatch, capsys):
    project = project_settings({"project_id": "us-3bc8f1"}, "t", distribution="tk-stats", default_packages=("tk_st",),
                               environ={}, user_config={})
    monkeypatch.setattr(consent, "watched_projects", lambda: {"us-3bc8f1": project})
    assert cli_main(["optout", "tk_st"]) == 0
    assert (home / ".telly_optout").read_text() == "us-3bc8f1\n"
    assert not consent.decide(project, _process(), environ={}).send
    assert cli_main(["optout", "tk_sx"]) == 2  # matches neither: refused, nothing recorded
    assert "nothing was recorded" in capsys.readouterr().err
    assert (home / ".telly_optout").read_text() == "us-3bc8f1\n"


def test_optout_by_the_name_of_either_distribution_that_shares_a_project_id(home, monkeypatch, capsys):
    from telly_autoinst import discovery

    first, second = (project_settings({"project_id": "us-3bc8f1"}, "t", distribution=name, default_packages=(module,),
                                      environ={}, user_config={})
                     for name, module in (("acme-textutils", "acme.textutils"), ("acme-other", "acme.other")))
    monkeypatch.setattr(discovery, "scan", lambda: [])
    monkeypatch.setattr(discovery, "resolve", lambda *a, **k: ({"acme.textutils": first, "acme.other": second}, []))
    for name in ("acme-textutils", "acme-other", "acme.other"):
        assert cli_main(["optout", name]) == 0, capsys.readouterr().err
    assert (home / ".telly_optout").read_text() == "us-3bc8f1\n"


def test_unknown_user_config_key_fails_closed_and_status_names_file_key_and_schema(home, monkeypatch, capsys):
    config = home / ".config" / "telly_autoinst" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("disable = true\n")
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    project = _project("us-3bc8f1")
    monkeypatch.setattr(consent, "watched_projects", lambda: {"us-3bc8f1": project})
    assert cli_main(["status"]) == 0
    out = capsys.readouterr().out
    error = next(line for line in out.splitlines() if line.strip().startswith("error:"))
    assert str(config) in error and "unknown key 'disable'" in error and "user-config.schema.json" in error
    row = next(line for line in out.splitlines() if "us-3bc8f1" in line)
    assert " off " in row and "user config is malformed" in row
    assert cli_main(["status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["user_config"] == str(config) and "unknown key 'disable'" in data["config_error"]
    assert data["projects"][0]["on"] is False


def test_a_malformed_project_table_in_the_user_config_is_listed_off_with_its_error(home, monkeypatch, capsys):
    config = home / ".config" / "telly_autoinst" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[project."us-3bc8f1"]\nmodee = "optin"\n')
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setattr(consent, "watched_projects", lambda: {})  # discovery skips the project
    assert cli_main(["status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (row,) = data["projects"]
    assert row["project_id"] == "us-3bc8f1" and row["on"] is False and data["config_error"] is None
    assert str(config) in row["why"] and "unknown key 'modee'" in row["why"]
    assert "user-config.schema.json" in row["why"]


# The real thing: a fresh interpreter on a pseudo-terminal.

_TTY_CODE = """
from telly_autoinst import consent
from telly_autoinst.settings import process_settings, project_settings
p = project_settings({"project_id": "tty-proj"}, "t", default_packages=("x",))
print("decision", consent.decide(p, process_settings()).send, flush=True)
"""


def _run_on_pty(venv, home, env=None):
    return venv.run_on_tty(_TTY_CODE, home, env)


@pytest.mark.slow
def test_notice_on_a_real_tty_once(venvs, home):
    venv = venvs.get()
    out, tty = _run_on_pty(venv, home)
    assert out.strip() == "decision True"
    assert "x (project tty-proj) collects anonymous usage statistics" in tty
    out, tty = _run_on_pty(venv, home)
    assert out.strip() == "decision True" and "collects" not in tty
    ci_home = home / "ci-home"
    ci_home.mkdir()
    out, tty = _run_on_pty(venv, ci_home, {"CI": "true"})
    assert out.strip() == "decision True" and "collects" not in tty
    assert not (ci_home / ".telly_notices").exists()


def test_allows_counting_is_decided_once_per_project(home, monkeypatch):
    monkeypatch.setattr(consent, "_counting", {})
    assert consent.allows_counting(_project(), _process())
    consent.optout("proj-x")
    # Still counted in this process; the flush asks decide() again and drops the counts.
    assert consent.allows_counting(_project(), _process())
    assert not consent.decide(_project(), _process(), environ={}).send


@pytest.mark.parametrize("value", ["0", "false", "No", "off"])
def test_do_not_track_explicitly_no_does_not_disable(home, value):
    assert consent.decide(_project(), _process(), environ={"DO_NOT_TRACK": value}).send


def test_refusal_at_send_time(home):
    process = _process()
    assert consent.refusal_at_send("p", False, process, environ={}) is None
    assert consent.refusal_at_send("p", False, process, environ={"DO_NOT_TRACK": ""}) == "disabled by DO_NOT_TRACK"
    assert consent.refusal_at_send("p", True, process, environ={}) == "opt-in mode and not opted in (~/.telly_optin)"
    consent.optin("p")
    assert consent.refusal_at_send("p", True, process, environ={}) is None
    consent.optout("P")
    assert consent.refusal_at_send("p", False, process, environ={}) == "opted out (~/.telly_optout)"
    assert consent.refusal_at_send(None, False, process, environ={}) is None


def _editable_project(environ=None, **table):
    return project_settings({"project_id": "proj-x", **table}, "test", default_packages=("pkg",),
                            environ=environ or {}, user_config={}, editable=True)


def test_an_editable_install_does_not_count_or_send_unless_asked(home):
    """An author's own runs (tests, development) of a checkout installed with pip install -e."""
    decision = consent.decide(_editable_project(), _process(), environ={})
    assert not decision.send and "installed editable" in decision.reason
    assert consent.decide(_editable_project(send_from_editable=True), _process(), environ={}).send
    asked = {"TELLY_SEND_FROM_EDITABLE": "1"}
    assert consent.decide(_editable_project(environ=asked), _process(), environ=asked).send


def test_asking_to_send_from_an_editable_install_keeps_the_users_opt_out(home):
    consent.optout("proj-x")
    decision = consent.decide(_editable_project(send_from_editable=True), _process(), environ={})
    assert not decision.send and "opted out" in decision.reason
