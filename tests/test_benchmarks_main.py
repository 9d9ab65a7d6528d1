"""``python -m benchmarks``: a run leaves the user's home as it found it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_run_writes_nothing_of_its_venvs_into_the_home(tmp_path):
    # The hooked venvs' interpreters (their set-up included) would write the hook's index and
    # caches into the home they are given: a run gives them one of its own. (The interpreter
    # running the benchmark may have the hook itself, as in tests/run, and write its own index.)
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "TELLY_", "PYTHON"))}
    env["HOME"] = str(home)
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--only", "startup", "--quick",
                           "--work", str(work), "--json", str(tmp_path / "rows.json")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert any((work / "venvs").iterdir())  # the run made its venvs there
    written = [p for p in home.rglob("*") if p.is_file() and str(work) in p.read_text(errors="replace")]
    assert written == []
