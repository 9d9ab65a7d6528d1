"""Level I facts: CI detection, run mode, bounded distribution versions."""

import json
import subprocess
import sys
import types

import pytest

from telly_autoinst import _runinfo, facts


@pytest.mark.parametrize("environ, expected", [
    ({}, (False, None)),
    ({"CI": "true"}, (True, None)),
    ({"CI": "1", "GITHUB_ACTIONS": "true"}, (True, "github_actions")),
    ({"GITLAB_CI": "true"}, (True, "gitlab")),
    ({"BUILD_NUMBER": "7"}, (True, None)),
    ({"JENKINS_URL": "http://jenkins"}, (True, "jenkins")),
    ({"CI": "false", "GITHUB_ACTIONS": "true"}, (False, None)),
    ({"CI": "0", "BUILD_ID": "3"}, (False, None)),
    ({"CI": ""}, (False, None)),
])
def test_ci_vendor(environ, expected):
    assert _runinfo.ci_vendor(environ) == expected


MODE = "from telly_autoinst._runinfo import interpreter; print(interpreter()['mode'])\n"


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


def test_platform_facts_shape():
    data = facts.platform_facts()
    assert set(data) == {"os", "release", "machine", "cpu_model", "cpu_count", "memory_mib", "container", "ci",
                         "ci_vendor", "wsl"}
    assert data["memory_mib"] is None or data["memory_mib"] > 100
    json.dumps(data)


def _dist(site, name, version, requires=()):
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n\nlong description\nRequires-Dist: not-a-header\n")


def test_distribution_versions_only_own_requirements(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    _dist(site, "watched_pkg", "1.2.3", ["Dep-One>=1", "dep_two[extra] ; python_version > '3'", "missing-dep"])
    _dist(site, "dep_one", "4.5")
    _dist(site, "dep_two", "0.1")
    _dist(site, "private_inhouse_thing", "9.9")
    monkeypatch.setattr(sys, "path", [str(site)])
    facts._installed.cache_clear()
    try:
        own, deps = facts.distribution_versions("Watched.Pkg")
    finally:
        facts._installed.cache_clear()
    assert own == "1.2.3"
    assert deps == {"dep-one": "4.5", "dep-two": "0.1"}


def test_distribution_versions_unknown():
    assert facts.distribution_versions("surely-not-installed-xyz") == (None, {})
    assert facts.distribution_versions(None) == (None, {})


def test_python_version_and_uname_match_platform():
    import platform

    assert _runinfo.python_version() == platform.python_version()
    uname = platform.uname()
    assert facts._uname() == (uname.system, uname.release, uname.machine)


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
    assert _runinfo.interpreter()["mode"] == expected


@pytest.mark.slow
@pytest.mark.parametrize("args, expected", [(["modemod.py"], "script"), (["-c", MODE], "command")])
def test_run_mode_of_a_real_ipython(venvs, home, args, expected):
    venv = venvs.get(extra=["ipython"])
    (home / "modemod.py").write_text(MODE)
    proc = venv.run([str(venv.path / "bin" / "ipython"), "--quick", "--no-banner", *args], home, check=True)
    assert proc.stdout.strip().splitlines()[-1] == expected
