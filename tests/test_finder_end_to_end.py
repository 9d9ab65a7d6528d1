"""End to end in a fresh interpreter: import through the hook, call, and find the counts in the report."""

import json
import textwrap

import pytest


@pytest.fixture(scope="module")
def venv(venvs, sample_wheels):
    return venvs.get(extra=[sample_wheels[name] for name in ("pkg_setuptools", "pkg_hatch", "pkg_plain")])


def reports(directory):
    found = {}
    for path in sorted(directory.glob("*.json")):
        data = json.loads(path.read_text())
        found.setdefault(data["project_id"], []).append(data)
    return found


def run_counted(venv, home, tmp_path, code, env=None, args=None, cwd=None):
    out = tmp_path / "reports"
    out.mkdir(exist_ok=True)
    full_env = {"TELLY_STORAGE_TYPE": "file", "TELLY_LOCAL_STORAGE_PATH": str(out), **(env or {})}
    proc = venv.run(args or ["-c", textwrap.dedent(code)], home, env=full_env, cwd=cwd)
    return proc, reports(out)


def test_calls_are_counted_per_project(venv, home, tmp_path):
    proc, found = run_counted(venv, home, tmp_path, """
        import sample_st, sample_hatch
        from sample_st.core import Greeter
        for _ in range(3):
            sample_st.greet("x")
        g = Greeter()
        g.greet("y"); Greeter.default(); Greeter.shout("z"); sample_st.double(2)
        sample_hatch.add(1, 2)
        print("done")
        """)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "done\n", "")
    [st] = found["sample-st-project"]
    assert st["stats"] == {
        "sample_st.core.greet": 3,
        "sample_st.core.Greeter": 2,  # Greeter() and Greeter.default() -> cls()
        "sample_st.core.Greeter.greet": 1,
        "sample_st.core.Greeter.default": 1,
        "sample_st.core.Greeter.shout": 1,
        "sample_st.double": 1,
    }
    [hatch] = found["sample-hatch-project"]
    assert hatch["stats"] == {"sample_hatch.add": 1}


def test_output_and_exit_status_unchanged(venv, home, tmp_path):
    code = """
        import sys, sample_st
        print(sample_st.greet("a"), sample_st.double(21))
        print("err line", file=sys.stderr)
        sys.exit(3)
        """
    hooked, _ = run_counted(venv, home, tmp_path, code)
    plain, _ = run_counted(venv, home, tmp_path, code, env={"TELLY_DISABLE": "1"})
    assert (hooked.returncode, hooked.stdout, hooked.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert hooked.returncode == 3


def test_unwatched_package_not_counted_unless_forced(venv, home, tmp_path):
    code = "import sample_plain; sample_plain.plain(1)"
    _, found = run_counted(venv, home, tmp_path, code)
    assert found == {}
    _, found = run_counted(venv, home, tmp_path, code, env={"TELLY_AUTOINST_PACKAGES": "sample_plain"})
    assert found["local:sample_plain"][0]["stats"] == {"sample_plain.plain": 1}


def test_exclude_pattern_from_telly_toml(venv, home, tmp_path):
    _, found = run_counted(venv, home, tmp_path, """
        from sample_st.sub import tools
        tools.visible(); tools.hidden_tool()
        """)
    assert found["sample-st-project"][0]["stats"] == {"sample_st.sub.tools.visible": 1}


def test_package_imported_before_the_hook(venv, home, tmp_path):
    early = venv.site_packages / "aaa_early_import.pth"
    early.write_text("import sample_hatch\n")
    try:
        _, found = run_counted(venv, home, tmp_path, "import sample_hatch; sample_hatch.add(1, 1)")
    finally:
        early.unlink()
    assert found["sample-hatch-project"][0]["stats"] == {"sample_hatch.add": 1}


def test_python_dash_m(venv, home, tmp_path):
    pkg = tmp_path / "src" / "runme"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("def helper():\n    return 'helped'\n")
    (pkg / "__main__.py").write_text("from runme import helper\nprint(helper())\n")
    proc, found = run_counted(venv, home, tmp_path, None, env={"TELLY_AUTOINST_PACKAGES": "runme"},
                              args=["-m", "runme"], cwd=tmp_path / "src")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "helped\n", "")
    assert found["local:runme"][0]["stats"] == {"runme.helper": 1}


def test_reload_does_not_double_count(venv, home, tmp_path):
    _, found = run_counted(venv, home, tmp_path, """
        import importlib, sample_hatch
        importlib.reload(sample_hatch)
        importlib.reload(sample_hatch)
        sample_hatch.add(1, 2)
        """)
    assert found["sample-hatch-project"][0]["stats"] == {"sample_hatch.add": 1}


def test_threads_count_exactly(venv, home, tmp_path):
    _, found = run_counted(venv, home, tmp_path, """
        import threading, sample_hatch
        def work():
            for _ in range(20000):
                sample_hatch.add(1, 2)
        threads = [threading.Thread(target=work) for _ in range(8)]
        [t.start() for t in threads]; [t.join() for t in threads]
        """)
    assert found["sample-hatch-project"][0]["stats"] == {"sample_hatch.add": 160000}


def test_manual_instrument_api(venv, home, tmp_path):
    _, found = run_counted(venv, home, tmp_path, """
        import telly_autoinst, sample_plain
        keys = telly_autoinst.instrument(sample_plain, project_id="manual-project")
        assert keys == ["sample_plain.plain"], keys
        sample_plain.plain(1)
        """)
    assert found["manual-project"][0]["stats"] == {"sample_plain.plain": 1}


@pytest.mark.parametrize("flags", [["-X", "dev"], ["-W", "error"]])
def test_no_warning_reaches_the_host_with_default_storage(venv, home, flags):
    """The default exit path (spool + detached sender) leaves stderr empty even under -X dev."""
    code = "import sample_st; print(sample_st.greet('w'))"
    proc = venv.run([*flags, "-c", code], home, env={"TELLY_HTTP_SERVER": "http://127.0.0.1:9"})
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "hello w\n", "")
