"""What the host hands over at exit: how the interpreter was started, and its counts queued for a sender."""

import os
import subprocess
import sys
import types

import pytest

from telly_autoinst import pipeline, spool

MODE = "from telly_autoinst.pipeline import describe_interpreter; print(describe_interpreter()['mode'])\n"


@pytest.mark.parametrize("args, expected", [
    (["-c", MODE], "command"),
    (["-m", "modemod"], "module"),
    (["modemod.py"], "script"),
])
def test_run_mode(tmp_path, args, expected):
    (tmp_path / "modemod.py").write_text(MODE)
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert out.stdout == expected + "\n"


def test_run_mode_repl():
    code = "import sys; sys.ps1 = '>>> '\n" + MODE
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "repl"


def test_python_version_matches_platform():
    import platform

    assert pipeline.python_version() == platform.python_version()


class _FakeIPythonApp:
    """What the run-mode check reads of IPython's TerminalIPythonApp."""

    settings: dict = {}

    @classmethod
    def initialized(cls):
        return True

    @classmethod
    def instance(cls):
        return types.SimpleNamespace(**{"file_to_run": "", "code_to_run": "", "module_to_run": "",
                                        "force_interact": False, **cls.settings})


@pytest.mark.parametrize("settings, expected", [
    ({"file_to_run": "script.py"}, "script"),
    ({"code_to_run": "print(1)"}, "command"),
    ({"module_to_run": "pkg.mod"}, "module"),
    ({}, "repl"),
    ({"file_to_run": "script.py", "force_interact": True}, "repl"),
])
def test_run_mode_under_the_ipython_command(monkeypatch, settings, expected):
    """`ipython script.py` and `ipython -c` set sys.ps1 too, but they are no repl."""
    monkeypatch.setattr(_FakeIPythonApp, "settings", settings)
    ipapp = types.ModuleType("IPython.terminal.ipapp")
    ipapp.TerminalIPythonApp = _FakeIPythonApp
    monkeypatch.setitem(sys.modules, "IPython", types.ModuleType("IPython"))
    monkeypatch.setitem(sys.modules, "IPython.terminal.ipapp", ipapp)
    monkeypatch.setattr(sys, "ps1", "In [1]: ", raising=False)
    assert pipeline.describe_interpreter()["mode"] == expected


@pytest.mark.slow
@pytest.mark.parametrize("args, expected", [(["modemod.py"], "script"), (["-c", MODE], "command")])
def test_run_mode_of_a_real_ipython(venvs, home, args, expected):
    venv = venvs.get(extra=["ipython"])
    (home / "modemod.py").write_text(MODE)
    proc = venv.run([str(venv.path / "bin" / "ipython"), "--quick", "--no-banner", *args], home, check=True)
    assert proc.stdout.strip().splitlines()[-1] == expected


def test_hand_off_leaves_the_caps_to_the_senders(tmp_path, monkeypatch):
    # Listing a full spool at every exit is what a long outage would cost each program: the host
    # leaves the caps to the senders, whether it started one, one is draining, or one ran recently
    # (the next one enforces them).
    monkeypatch.setattr(spool, "MAX_FILES", 2)
    directory = str(tmp_path / "spool")
    started = []
    monkeypatch.setattr(pipeline, "spawn", lambda d, timeout: started.append((d, timeout)) or 12345)
    for i in range(4):
        assert pipeline.hand_off(directory, "http://x", f"p{i}", {"report_id": f"r{i}"}, timeout=2.5) is None
    assert started == [(directory, 2.5)] * 4 and len(spool.entries(directory)) == 4  # the senders will drop two

    monkeypatch.setattr(pipeline, "spawn", lambda d, timeout: None)  # one is draining, or ran recently
    assert pipeline.hand_off(directory, "http://x", "p4", {"report_id": "r4"}) is None
    assert [n.split("-", 1)[1] for n in spool.entries(directory)] == [f"r{i}.counts" for i in range(5)]
    assert not (tmp_path / "spool" / "losses.log").exists()


def test_hand_off_says_why_nothing_was_queued(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "spawn", lambda d, timeout: pytest.fail("no sender for nothing queued"))
    assert pipeline.hand_off(str(tmp_path), None, "p", {"report_id": "r"}) == "no-endpoint"
    assert pipeline.hand_off(None, "http://x", "p", {"report_id": "r"}) == "no-spool-dir"
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert pipeline.hand_off(str(blocked / "spool"), "http://x", "p", {"report_id": "r"}).startswith("spool-error:")


def test_counts_entry_format_is_the_spools(tmp_path):
    directory = str(tmp_path / "spool")
    name = pipeline.enqueue_counts(directory, "http://x", "p", {"report_id": "r"}, optin=True)
    assert spool.is_counts(name) and spool.entries(directory) == [name]
    assert spool.read_counts(directory, name) == {"url": "http://x", "project_id": "p", "optin": True,
                                                  "captured": {"report_id": "r"}}


def test_default_dir(tmp_path, monkeypatch):
    assert pipeline.default_dir("/somewhere") == "/somewhere"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert pipeline.default_dir() == os.path.join(str(tmp_path), "telly_autoinst", "spool")


def test_capture_names_the_engine_it_is_given():
    from telly_autoinst.settings import project_settings

    project = project_settings({"project_id": "p"}, "test", default_packages=("pkg",), environ={}, user_config={})
    captured = pipeline.capture(project, {"pkg.f": 2, "pkg.g": 0}, trigger="exit", engine="monitoring")
    assert captured["engine"] == "monitoring" and captured["stats"] == {"pkg.f": 2}
    assert pipeline.capture(project, {}, trigger="exit")["engine"] == "rewrite"  # engines.engine_name("auto")
