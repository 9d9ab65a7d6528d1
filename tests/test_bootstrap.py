"""Interpreter start with the hook installed: kill switches, the cached index, and doing no harm."""

import sys

import pytest

from telly_autoinst._env import kill_switch, truthy
from tests.support.hook import KINDS, PROBE, WATCHED

HEAVY = ("wrapt", "requests", "tomli", "tomllib", "importlib.metadata", "importlib_metadata", "json", "threading",
         "telly_autoinst.discovery", "telly_autoinst.settings", "telly_autoinst.finder")


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("YES", True), ("y", True), ("On", True),
                                              ("0", False), ("no", False), ("", False), (None, False), ("2", False)])
def test_truthy_values(value, expected):
    assert truthy(value) is expected


def test_kill_switch_order_and_values(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert kill_switch({}) is None
    assert kill_switch({"TELLY_DISABLE": "Yes"}) == "TELLY_DISABLE"
    assert kill_switch({"DO_NOT_TRACK": "1"}) == "DO_NOT_TRACK"
    assert kill_switch({"DO_NOT_TRACK": "0"}) is None
    (tmp_path / ".telly_disable").touch()
    assert kill_switch({}) == "~/.telly_disable"


def test_start_installs_finder_and_imports_nothing_heavy(st_hatch_venv, home):
    st_hatch_venv.run("import sample_st", home, check=True)  # a warm start follows: the index exists
    proc = st_hatch_venv.run(f"import sys; heavy = {HEAVY!r}; print(sorted(m for m in heavy if m in sys.modules)); "
                             + PROBE, home, check=True)
    assert proc.stdout.split("\n")[:2] == ["[]", "True"]
    assert proc.stderr == ""


def test_a_first_start_that_imports_nothing_outside_the_stdlib_never_scans(st_hatch_venv, home):
    # No index yet (a fresh home): the scan waits for the first non-stdlib import.
    heavy = f"sorted(m for m in {HEAVY!r} if m in sys.modules)"
    proc = st_hatch_venv.run(f"import sys; print({heavy}); import json, sample_hatch; "
                             f"print({KINDS})",
                             home, check=True)
    assert proc.stdout.split("\n")[:2] == ["[]", "['WatchFinder']"]
    assert list((home / ".cache" / "telly_autoinst").glob("index-*.txt"))


def test_the_first_watched_import_puts_the_finder_in_the_stand_ins_place(st_hatch_venv, home):
    st_hatch_venv.run("pass", home, check=True)
    proc = st_hatch_venv.run(f"import sys; print({KINDS}); import sample_hatch; print({KINDS}, sys.meta_path.index("
                             "next(f for f in sys.meta_path if type(f).__name__ == 'WatchFinder')))", home, check=True)
    assert proc.stdout.split("\n")[:2] == ["['stand-in']", "['WatchFinder'] 0"]


# Our modules in sys.modules: the package's, and the bootstrap module beside it.
OURS = "sorted(m for m in sys.modules if m.startswith(('telly_autoinst', '_telly_autoinst')))"
# What a start imports: the bootstrap module, and on Python 3.9 its helper (the venvs run this Python).
AT_START = ["_telly_autoinst_bootstrap"] + (["_telly_autoinst_stdlib"] if sys.version_info < (3, 10) else [])


def test_start_imports_only_bootstrap(st_hatch_venv, home):
    st_hatch_venv.run("import sample_st", home, check=True)  # a fresh index, and a watched package
    proc = st_hatch_venv.run(f"import sys; print({OURS})", home, check=True)
    assert proc.stdout.strip() == str(AT_START)


# After the first import from outside the standard library: is sample_st's function left alone,
# is the hook gone from sys.meta_path, and which of our modules were imported.
KILLED = f"import sample_st, sys; print(type(sample_st.greet).__name__, bool({KINDS}), {OURS})"
CHECKED_ONLY = f"function False {sorted(AT_START + ['telly_autoinst', 'telly_autoinst._env', 'telly_autoinst._wake'])}"


@pytest.mark.parametrize("env", [{"TELLY_DISABLE": "1"}, {"TELLY_DISABLE": "on"}, {"TELLY_DISABLE": "Y"},
                                 {"DO_NOT_TRACK": "1"}, {"DO_NOT_TRACK": "true"}])
def test_kill_switch_variables_turn_everything_off(st_hatch_venv, home, env):
    # The stand-in checks the kill switches before it reads or writes anything, then leaves.
    proc = st_hatch_venv.run(KILLED, home, env=env, check=True)
    assert proc.stdout.strip() == CHECKED_ONLY
    assert not (home / ".cache").exists()


def test_kill_switch_file(st_hatch_venv, home):
    (home / ".telly_disable").touch()
    assert st_hatch_venv.run(KILLED, home, check=True).stdout.strip() == CHECKED_ONLY
    assert not (home / ".cache").exists()


def test_falsy_disable_keeps_hook(st_hatch_venv, home):
    proc = st_hatch_venv.run("import sample_st; " + PROBE, home, env={"TELLY_DISABLE": "0"}, check=True)
    assert proc.stdout.strip() == "True"


def test_a_start_that_imports_only_the_stdlib_leaves_the_stand_in_asleep(st_hatch_venv, home):
    (home / ".telly_disable").touch()  # even a kill switch is not read before the stand-in wakes
    proc = st_hatch_venv.run(f"import json, sys; print({OURS}, {KINDS}, getattr(sys.meta_path[0], '__name__', None))",
                             home, check=True)
    assert proc.stdout.strip() == f"{AT_START} ['stand-in'] _telly_autoinst_bootstrap"


def test_broken_cache_is_rebuilt_and_program_untouched(st_hatch_venv, home):
    st_hatch_venv.run("import sample_st", home, check=True)  # the first non-stdlib import writes the index
    [index_file] = (home / ".cache" / "telly_autoinst").glob("index-*.txt")
    index_file.write_bytes(b"\xff\xfe garbage\nstamp\t\t\n")
    proc = st_hatch_venv.run("import sample_st; print(sample_st.greet('a'))", home, check=True)
    assert proc.stdout == "hello a\n" and proc.stderr == ""
    assert index_file.read_text().startswith("telly_autoinst-index\t")


def _assert_untouched(venv, home, env, cwd):
    """The program runs as without the hook, and the hook did not install (PROBE prints False)."""
    proc = venv.run("import sample_st; print(sample_st.greet('b')); " + PROBE, home, env=env, cwd=cwd)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.split("\n")[:2] == ["hello b", "False"]


def test_site_packages_taken_off_sys_path_after_start(st_hatch_venv, home, tmp_path):
    # pip's isolated build environments do this (with a sitecustomize) after our .pth ran: the
    # stand-in wakes at the first import from elsewhere, cannot import the package, and leaves.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "mine.py").write_text("X = 1\n")
    st_hatch_venv.run("import sample_st", home, check=True)  # a warm index: the wake would read it
    code = ("import sys; sys.path[:] = [p for p in sys.path if 'site-packages' not in p]; "
            f"sys.path.insert(0, {str(elsewhere)!r}); import mine; print(mine.X); " + PROBE)
    proc = st_hatch_venv.run(code, home, env={"TELLY_DEBUG": "1"})
    assert (proc.returncode, proc.stdout.split("\n")[:2], proc.stderr) == (0, ["1", "False"], "")


def test_no_home_means_untouched(st_hatch_venv, tmp_path):
    _assert_untouched(st_hatch_venv, tmp_path / "home", {"HOME": None}, tmp_path)


def test_home_that_is_a_file_means_untouched(st_hatch_venv, tmp_path):
    home = tmp_path / "home"
    home.write_text("not a directory")
    _assert_untouched(st_hatch_venv, home, {}, tmp_path)


def test_unwritable_cache_means_untouched(st_hatch_venv, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    # Writes fail in /proc/self even for root.
    _assert_untouched(st_hatch_venv, home, {"XDG_CACHE_HOME": "/proc/self"}, tmp_path)


def test_install_and_uninstall_rebuild_the_index(venvs, sample_wheels, home):
    venv = venvs.new(extra=[sample_wheels["pkg_setuptools"]])
    assert venv.run(WATCHED, home, check=True).stdout.strip() == "['sample_st']"
    venv.pip(str(sample_wheels["pkg_hatch"]))
    assert venv.run(WATCHED, home, check=True).stdout.strip() == "['sample_hatch', 'sample_st']"
    venv.pip_uninstall("sample-st")
    assert venv.run(WATCHED, home, check=True).stdout.strip() == "['sample_hatch']"


def test_start_is_idempotent(st_hatch_venv, home):
    code = f"import sys, _telly_autoinst_bootstrap as b; b.start(); b._started = False; b.start(); print({KINDS})"
    assert st_hatch_venv.run(code, home, check=True).stdout.strip() == "['stand-in']"


def test_pth_file_and_bootstrap_at_site_packages_root(st_hatch_venv):
    pth = st_hatch_venv.site_packages / "telly_autoinst.pth"
    assert pth.is_file()
    assert "import _telly_autoinst_bootstrap" in pth.read_text()
    assert (st_hatch_venv.site_packages / "_telly_autoinst_bootstrap.py").is_file()


def test_pth_line_survives_missing_package(venvs, home):
    """A leftover .pth whose package is gone must not print 'Error processing line'."""
    venv = venvs.new(with_telly=False)
    pth_text = (venvs.project_root / "telly_autoinst.pth").read_text()
    (venv.site_packages / "telly_autoinst.pth").write_text(pth_text)
    proc = venv.run("print('ok')", home)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "ok\n", "")


def test_system_site_packages_venv(venvs, home, sample_wheels):
    """The venv's .pth runs before base site-packages are on sys.path; the hook still starts cleanly."""
    venv = venvs.new(extra=[sample_wheels["pkg_hatch"]], system_site_packages=True)
    proc = venv.run(PROBE, home)
    assert (proc.returncode, proc.stdout.strip(), proc.stderr) == (0, "True", "")


def test_code_that_walks_sys_meta_path_lives_with_the_stand_in(st_hatch_venv, home):
    # The stand-in is a module on sys.meta_path, with find_spec as its only finder method: what
    # walks the finders (invalidate_caches, importlib.metadata's distribution finders) skips it,
    # and it stays asleep, since all of that is the standard library.
    code = ("import importlib, importlib.metadata, sys; importlib.invalidate_caches(); "
            "print('sample_st' in {d.metadata['Name'].replace('-', '_') for d in importlib.metadata.distributions()}, "
            f"{KINDS}, {OURS})")
    proc = st_hatch_venv.run(code, home, check=True)
    assert (proc.stdout.strip(), proc.stderr) == (f"True ['stand-in'] {AT_START}", "")


def test_site_addsitedir_at_run_time_starts_nothing_twice(st_hatch_venv, home):
    # site.addsitedir() runs the .pth line again: it finds the bootstrap module imported already.
    code = f"import site, sys; site.addsitedir({str(st_hatch_venv.site_packages)!r}); print({KINDS})"
    proc = st_hatch_venv.run(code, home, check=True)
    assert (proc.stdout.strip(), proc.stderr) == ("['stand-in']", "")


def test_a_missing_python39_helper_leaves_the_program_untouched(st_hatch_venv, home):
    # On Python 3.9 a start needs _telly_autoinst_stdlib beside the bootstrap module; without it (a
    # broken install) the hook stays out and nothing is printed. Other Pythons never import it.
    helper = st_hatch_venv.site_packages / "_telly_autoinst_stdlib.py"
    hidden = helper.with_suffix(".hidden")
    helper.rename(hidden)
    try:
        proc = st_hatch_venv.run("import sample_st; print(sample_st.greet('c')); " + PROBE, home)
    finally:
        hidden.rename(helper)
    hooked = str(sys.version_info >= (3, 10))
    assert (proc.returncode, proc.stdout.split("\n")[:2], proc.stderr) == (0, ["hello c", hooked], "")


def test_the_stand_in_keeps_no_os_alive():
    # It stays on sys.meta_path until exit; on Python 3.11 a module it references through its
    # globals lives into the last stage of shutdown, which with os there costs every start
    # measurably (docs/decisions/0024-start-up-stand-in.md).
    import _telly_autoinst_bootstrap

    assert "os" not in vars(_telly_autoinst_bootstrap)


def test_imports_of_other_platforms_modules_leave_the_stand_in_asleep(st_hatch_venv, home):
    # The standard library tries them (ntpath `import nt`, mimetypes `import winreg`): on Python
    # 3.9, which does not list them, ntpath's woke the stand-in in the middle of importing pathlib.
    proc = st_hatch_venv.run(f"import pathlib, mimetypes, sys; print({OURS}, {KINDS})", home, check=True)
    assert (proc.stdout.strip(), proc.stderr) == (f"{AT_START} ['stand-in']", "")
