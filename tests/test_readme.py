"""Every user-facing switch is documented in the README, next to the sample notice."""

from pathlib import Path

import pytest

from telly_autoinst.cli import _COMMANDS, _OPTIONS
from telly_autoinst.settings import SETTINGS

README = (Path(__file__).parents[1] / "README.md").read_text()


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_every_setting_is_documented(setting):
    if setting.env:
        assert f"`{setting.env}`" in README
    if setting.scope == "project":
        assert f"| `{setting.name}` |" in README
    else:
        assert f"`{setting.name}`" in README


@pytest.mark.parametrize("command", [c[0] for c in _COMMANDS] + [o[0] for o in _OPTIONS])
def test_every_command_is_documented(command):
    assert command in README


def test_kill_switches_and_notice_are_documented():
    for text in ("`TELLY_DISABLE`", "`DO_NOT_TRACK`", "~/.telly_disable", "Sample notice"):
        assert text in README
