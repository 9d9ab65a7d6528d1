"""The cached index: one file per real interpreter and environment, whatever the spelling."""

import json
import os

import pytest

from tests.support.hook import HATCH_PROGRAM

pytestmark = pytest.mark.slow


def test_every_spelling_of_one_interpreter_shares_one_index(hatch_venv, home):
    bindir = os.path.dirname(hatch_venv.python)
    spellings = {os.path.join(bindir, name) for name in os.listdir(bindir) if name.startswith("python")}
    spellings.add(os.path.join(bindir, "..", "bin", "python"))
    assert len(spellings) >= 3
    original = hatch_venv.python
    try:
        for python in sorted(spellings):
            hatch_venv.python = python  # the shared venv: put back below
            hatch_venv.run("import sample_hatch", home, check=True)
    finally:
        hatch_venv.python = original
    cache = home / ".cache" / "telly_autoinst"
    assert len([p for p in cache.iterdir() if p.name.startswith("index-")]) == 1


def test_no_cache_neither_reads_nor_writes_the_index(tmp_path, monkeypatch):
    from telly_autoinst import index

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("TELLY_NO_CACHE", raising=False)
    path = index.write(index.base_stamps(), {"pkg"}, "00")
    assert index.read() == ({"pkg"}, "00")
    written = os.stat(path).st_mtime_ns
    monkeypatch.setenv("TELLY_NO_CACHE", "1")
    assert index.read() is None
    assert index.write(index.base_stamps(), {"other"}, "01") is None
    assert os.stat(path).st_mtime_ns == written
    monkeypatch.delenv("TELLY_NO_CACHE")
    assert index.read() == ({"pkg"}, "00")


def test_a_run_with_no_cache_counts_and_leaves_no_cache(hatch_venv, home, tmp_path):
    out = tmp_path / "out"
    env = {"TELLY_NO_CACHE": "1", "TELLY_STORAGE_TYPE": "file", "TELLY_LOCAL_STORAGE_PATH": str(out)}
    for _ in range(2):
        hatch_venv.run(HATCH_PROGRAM, home, env=env, check=True)
    reports = [json.loads(p.read_text()) for p in out.glob("*.json")]
    assert [r["stats"].get("sample_hatch.add") for r in reports] == [1, 1]
    cache = home / ".cache" / "telly_autoinst"
    assert not cache.exists() or not [p for p in cache.rglob("*") if p.is_file()]
