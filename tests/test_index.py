"""The cached index: one file per real interpreter and environment, whatever the spelling."""

import os

import pytest

pytestmark = pytest.mark.slow


def test_every_spelling_of_one_interpreter_shares_one_index(venvs, sample_wheels, home):
    venv = venvs.get(extra=[sample_wheels["pkg_hatch"]])
    bindir = os.path.dirname(venv.python)
    spellings = {os.path.join(bindir, name) for name in os.listdir(bindir) if name.startswith("python")}
    spellings.add(os.path.join(bindir, "..", "bin", "python"))
    assert len(spellings) >= 3
    original = venv.python
    try:
        for python in sorted(spellings):
            venv.python = python  # the shared venv: put back below
            venv.run("import sample_hatch", home, check=True)
    finally:
        venv.python = original
    cache = home / ".cache" / "telly_autoinst"
    assert len([p for p in cache.iterdir() if p.name.startswith("index-")]) == 1
