"""Every test runs with HOME and XDG_* in a temporary directory of its own (tests/support/fixtures.py)."""

import os
from pathlib import Path

import pytest

_seen = []


@pytest.mark.parametrize("run", [1, 2])
def test_home_and_xdg_directories_are_temporary_and_per_test(tmp_path_factory, run):
    home = Path(os.environ["HOME"])
    assert str(home).startswith(str(tmp_path_factory.getbasetemp()) + os.sep)
    assert Path.home() == home and Path("~").expanduser() == home
    for name in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        assert str(Path(os.environ[name])).startswith(str(home) + os.sep), name
    assert home not in _seen
    _seen.append(home)
