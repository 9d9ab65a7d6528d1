"""The warm state: kept like the index, used only while its key holds, removed by every consent command."""

import json
import os
import stat

import pytest

from telly_autoinst import __version__, _contract, consent, warmstate
from tests.support.hook import HATCH_PROGRAM

STATE = {"fields": ((), ()), "process": (), "projects": [], "modules": [], "settings_files": [],
         "verdicts": {"p": (True, "opt-out mode, not opted out")}}


@pytest.fixture
def user(tmp_path, monkeypatch):
    """HOME, config and cache of this test's own, and no TELLY_* variable from outside."""
    for name in list(os.environ):
        if name.startswith("TELLY_") or name == "DO_NOT_TRACK":
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home" / ".cache"))
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


def _stored(user):
    warmstate.store(warmstate.key(), STATE)
    assert warmstate.load() is not None
    return warmstate.path()


def test_kept_private_and_read_back(user):
    path = _stored(user)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    current, state = warmstate.load()
    assert state["verdicts"] == {"p": [True, "opt-out mode, not opted out"]} or state == STATE
    assert current[1] == __version__


@pytest.mark.parametrize("name", [_contract.FILE_OPTOUT, _contract.FILE_OPTIN, _contract.FILE_NOTICES,
                                  _contract.FILE_DISABLE])
def test_a_consent_file_created_edited_or_deleted_is_a_miss(user, name):
    _stored(user)
    (user / name).write_text("p\n")  # created
    assert warmstate.load() is None
    _stored(user)
    before = os.stat(user / name)
    (user / name).write_text("q\n")  # edited: same size
    os.utime(user / name, ns=(before.st_atime_ns, before.st_mtime_ns))  # and the same mtime
    assert warmstate.load() is None
    _stored(user)
    (user / name).unlink()  # deleted
    assert warmstate.load() is None


def test_a_dangling_kill_switch_link_is_a_miss(user):
    _stored(user)
    os.symlink(user / "nowhere", user / _contract.FILE_DISABLE)
    assert warmstate.load() is None


def test_the_user_config_and_a_settings_file_are_stamped(user, tmp_path):
    _stored(user)
    config = user / ".config" / "telly_autoinst" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("optin_only = true\n")
    assert warmstate.load() is None
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[tool.telly]\n")
    state = dict(STATE, settings_files=[str(pyproject)])
    warmstate.store(warmstate.key([str(pyproject)]), state)
    assert warmstate.load() is not None
    pyproject.write_text("[tool.telly]\nmode = 'optin'\n")
    assert warmstate.load() is None


@pytest.mark.parametrize("name, value", [("TELLY_OPTIN", "1"), ("TELLY_SEND_FROM_CI", "0"), ("DO_NOT_TRACK", "0"),
                                         ("TELLY_AUTOINST_PACKAGES", "json"), ("GITHUB_ACTIONS", "true"),
                                         ("TELLY_SOMETHING_NEW", "1")])
def test_an_environment_variable_that_matters_is_a_miss(user, monkeypatch, name, value):
    _stored(user)
    monkeypatch.setenv(name, value)
    assert warmstate.load() is None
    monkeypatch.delenv(name)
    assert warmstate.load() is not None


def test_every_setting_and_switch_variable_is_in_the_fingerprint():
    names = {row[5] for row in _contract.SETTINGS if row[5]} | {_contract.ENV_DISABLE, _contract.ENV_DO_NOT_TRACK,
                                                              _contract.ENV_DEBUG, "TELLY_NO_CACHE"}
    assert all(n.startswith("TELLY_") or n in warmstate._ENVIRONMENT for n in names)


def test_a_terminal_decides_too(user, monkeypatch):
    # The first-run notice is shown (and waited for) only on a terminal.
    from telly_autoinst import _env

    _stored(user)
    monkeypatch.setattr(_env, "interactive", lambda: True)
    assert warmstate.load() is None


def test_another_version_is_a_miss(user, monkeypatch):
    _stored(user)
    monkeypatch.setattr(warmstate, "__version__", "0.0.0-other")
    assert warmstate.load() is None


def test_a_damaged_file_is_a_miss(user):
    path = _stored(user)
    data = bytearray(open(path, "rb").read())
    data[-3] ^= 0xFF
    with open(path, "wb") as handle:
        handle.write(data)
    assert warmstate.load() is None


def test_no_cache_reads_and_writes_nothing(user, monkeypatch):
    path = _stored(user)
    monkeypatch.setenv("TELLY_NO_CACHE", "1")
    assert warmstate.load() is None
    assert warmstate.status("p") == "off"
    os.unlink(path)
    warmstate.store(warmstate.key(), STATE)
    assert not os.path.exists(path)


def test_status_says_valid_stale_or_none(user):
    assert warmstate.status("p") == "none"
    _stored(user)
    assert warmstate.status("p") == "valid"
    assert warmstate.status("other") == "none"
    (user / _contract.FILE_OPTOUT).write_text("p\n")
    assert warmstate.status("p") == "stale"


def test_a_key_moved_while_the_state_was_read_is_not_stored(user):
    early = warmstate.key()
    (user / _contract.FILE_OPTOUT).write_text("p\n")
    assert warmstate.key_since(early, []) is None
    assert warmstate.key_since(warmstate.key(), []) is not None


def _version(monkeypatch, user):
    monkeypatch.setattr(warmstate, "__version__", "0.0.0-other")


def _file(monkeypatch, user):
    (user / _contract.FILE_OPTOUT).write_text("p\n")


def _variable(monkeypatch, user):
    monkeypatch.setenv("TELLY_OPTIN", "1")


def _terminal(monkeypatch, user):
    from telly_autoinst import _env

    monkeypatch.setattr(_env, "interactive", lambda: True)


def _hand_made(monkeypatch, user):
    warmstate.store(("hand", "made"), STATE)


@pytest.mark.parametrize("change, words", [
    (_version, "written by another version of the client"), (_file, "{home}/.telly_optout changed"),
    (_variable, "a TELLY_* or home variable changed"), (_terminal, "the CI vendor or the terminal changed"),
    (_hand_made, "written by another version of the client")])
def test_telly_debug_says_why_a_warm_state_is_not_used(user, monkeypatch, capsys, change, words):
    monkeypatch.setenv("TELLY_DEBUG", "1")
    _stored(user)
    capsys.readouterr()
    change(monkeypatch, user)
    assert warmstate.load() is None
    assert capsys.readouterr().err == f"telly_autoinst: the warm state is stale ({words.format(home=user)}): " \
                                      "deciding again\n"


def test_telly_debug_says_why_a_warm_state_is_not_kept(user, monkeypatch, capsys):
    monkeypatch.setenv("TELLY_DEBUG", "1")
    early = warmstate.key()
    (user / _contract.FILE_NOTICES).write_text("p\n")
    assert warmstate.key_since(early, []) is None
    assert capsys.readouterr().err == (f"telly_autoinst: the warm state is not kept: {user}/.telly_notices changed "
                                       "while this run read it\n")


@pytest.mark.parametrize("command", [lambda: consent.optout("p"), lambda: consent.optin("p"), consent.disable,
                                     consent.enable])
def test_every_consent_command_removes_the_warm_state(user, command):
    path = _stored(user)
    command()
    assert not os.path.exists(path)


def test_purge_removes_the_warm_state(user):
    from telly_autoinst import purge

    path = _stored(user)
    assert path in purge.leftovers() or os.path.dirname(path) in purge.leftovers()
    purge.remove(purge.leftovers())
    assert not os.path.exists(path)


# -- in a real interpreter -------------------------------------------------------------------------


def _env(tmp_path, **env):
    return {"TELLY_STORAGE_TYPE": "file", "TELLY_LOCAL_STORAGE_PATH": str(tmp_path / "reports"), "TELLY_DEBUG": "1",
            **env}


def _run(venv, home, tmp_path, **env):
    out = tmp_path / "reports"
    out.mkdir(exist_ok=True)
    proc = venv.run(HATCH_PROGRAM, home, env=_env(tmp_path, **env))
    assert proc.returncode == 0, proc.stderr
    reports = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    for path in out.iterdir():
        path.unlink()
    return proc.stderr, [r["stats"] for r in reports]


def test_a_warm_run_reuses_the_verdict_and_a_hand_edit_takes_effect(hatch_venv, home, tmp_path):
    counted = [{"sample_hatch.add": 1}]
    err, found = _run(hatch_venv, home, tmp_path)
    assert "from the warm state" not in err and found == counted
    err, found = _run(hatch_venv, home, tmp_path)
    assert "from the warm state" in err and found == counted
    err, found = _run(hatch_venv, home, tmp_path, TELLY_NO_CACHE="1")
    assert "from the warm state" not in err and found == counted
    (home / ".telly_optout").write_text("sample-hatch-project\n")
    (home / ".telly_optout").chmod(0o600)  # else the run that reads it tightens it: one more change
    err, found = _run(hatch_venv, home, tmp_path)
    assert "from the warm state" not in err and found == []
    assert f"the warm state is stale ({home / '.telly_optout'} changed)" in err
    err, found = _run(hatch_venv, home, tmp_path)
    assert "from the warm state" in err and found == []
    assert "stale" not in err
    # In the same environment as the runs: another fingerprint would be another state.
    proc = hatch_venv.run(["-m", "telly_autoinst", "--dry-run", "--json"], home, env=_env(tmp_path))
    [entry] = [d for d in json.loads(proc.stdout)["distributions"] if d["project_id"] == "sample-hatch-project"]
    assert entry["warm_state"] == "valid"
    proc = hatch_venv.run(["-m", "telly_autoinst", "--dry-run"], home, env=_env(tmp_path, TELLY_NO_CACHE="1"))
    assert "warm state: not used (TELLY_NO_CACHE)" in proc.stdout
