"""State files never block and are never read past a cap: FIFOs, devices and huge files count as missing."""

import os
import threading
import time

import pytest

from telly_autoinst import _statefile, consent, identity, index, sender, spool
from tests.support.hook import HATCH_PROGRAM
from tests.support.schema import read_reports


def test_regular_file_within_the_cap(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert _statefile.read_bytes(str(path), 3) == b"abc"
    with pytest.raises(_statefile.NotRegular):
        _statefile.read_bytes(str(path), 2)
    with pytest.raises(FileNotFoundError):
        _statefile.read_bytes(str(tmp_path / "missing"), 10)


@pytest.mark.parametrize("kind", ["fifo", "directory", "device"])
def test_non_regular_files_are_refused_at_once(tmp_path, kind):
    path = tmp_path / "state"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    else:
        os.symlink("/dev/zero", path)
    with pytest.raises(_statefile.NotRegular):
        _statefile.read_bytes(str(path), 1 << 20)


def _in_thread(func):
    """Run ``func`` with a time limit, so a regression fails instead of hanging the test run."""
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("value", func()), daemon=True)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "blocked on a FIFO"
    return result.get("value")


def test_fifo_state_files_in_home_are_treated_as_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    identity.salt.cache_clear()
    for name in (".telly_salt", ".telly_optout", ".telly_optin", ".telly_notices"):
        os.mkfifo(tmp_path / name)
    assert _in_thread(lambda: consent._read_ids(".telly_optout")) == []
    salt, source = _in_thread(identity.salt)
    assert source == "machine_id" and salt
    os.makedirs(os.path.dirname(index.index_path()))
    os.mkfifo(index.index_path())
    assert _in_thread(index.read) is None
    identity.salt.cache_clear()


def test_fifo_in_the_spool_is_recorded_and_skipped(tmp_path):
    os.mkfifo(tmp_path / f"{time.time_ns():020d}-fifo.report")
    assert _in_thread(lambda: sender.drain(str(tmp_path))) == (0, 0)
    assert "spool-corrupt" in (tmp_path / "losses.log").read_text()
    assert spool.entries(str(tmp_path)) == []


# Fresh interpreters of a real venv: the .pth runs with a FIFO at each path.

@pytest.mark.slow
def test_fifo_at_the_index_path_does_not_hang_interpreter_start(hatch_venv, home):
    hatch_venv.run(HATCH_PROGRAM, home, check=True)  # its first non-stdlib import writes the index
    path = hatch_venv.run("from telly_autoinst import index; print(index.index_path())", home,
                          check=True).stdout.strip()
    os.unlink(path)
    os.mkfifo(path)
    # Before: every interpreter start in the venv waited for a writer, for ever.
    proc = hatch_venv.run(HATCH_PROGRAM, home, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "5\n", "")


@pytest.mark.slow
def test_fifo_salt_and_lists_do_not_hang_the_program(hatch_venv, home, tmp_path):
    for name in (".telly_salt", ".telly_optout", ".telly_optin", ".telly_notices"):
        os.mkfifo(home / name)
    out = tmp_path / "out"
    proc = hatch_venv.run(HATCH_PROGRAM, home, timeout=60,
                          env={"TELLY_STORAGE_TYPE": "file", "TELLY_LOCAL_STORAGE_PATH": str(out)})
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "5\n", "")
    (report,) = read_reports(out)
    assert report["level2"]["user"]  # hashed with the machine id, since the salt file is no file
