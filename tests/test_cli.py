"""The command line against a mock API: tables in, exit codes out, no logic of its own."""

import sys
import types

import pytest

from telly_autoinst import cli
from telly_autoinst.errors import ConfigError


@pytest.fixture
def fake_api(monkeypatch):
    calls = []
    module = types.ModuleType("telly_fake_api")

    def handler(name, result=("ok", 0)):
        def run(**kwargs):
            calls.append((name, kwargs))
            if isinstance(result, Exception):
                raise result
            return result
        return run

    module.optin = handler("optin")
    module.status = handler("status", ("table", 0))
    module.dry = handler("dry", ("listing", 1))
    module.broken = handler("broken", ConfigError("pyproject.toml: include: expected a list"))
    monkeypatch.setitem(sys.modules, "telly_fake_api", module)
    monkeypatch.setattr(cli, "_COMMANDS", (
        ("optin", "", ("project_id",), "telly_fake_api:optin"),
        ("status", "", (), "telly_fake_api:status"),
        ("broken", "", (), "telly_fake_api:broken"),
    ))
    monkeypatch.setattr(cli, "_OPTIONS", (("--dry-run", "", "telly_fake_api:dry"),))
    return calls


def test_command_with_positional(fake_api, capsys):
    assert cli.main(["optin", "proj-1"]) == 0
    assert fake_api == [("optin", {"project_id": "proj-1", "as_json": False})]
    assert capsys.readouterr().out == "ok\n"


def test_json_flag_before_or_after_command(fake_api):
    cli.main(["--json", "status"])
    cli.main(["status", "--json"])
    assert [kwargs["as_json"] for _, kwargs in fake_api] == [True, True]


def test_option_handler_exit_code(fake_api, capsys):
    assert cli.main(["--dry-run", "--json"]) == 1
    assert fake_api == [("dry", {"as_json": True})]
    assert capsys.readouterr().out == "listing\n"


def test_errors_become_exit_code_2_with_message(fake_api, capsys):
    assert cli.main(["broken"]) == 2
    assert "include: expected a list" in capsys.readouterr().err


def test_no_command_prints_help(fake_api, capsys):
    assert cli.main([]) == 2
    assert "usage:" in capsys.readouterr().out


def test_real_tables_point_at_existing_handlers():
    import importlib

    for _, _, _, target in cli._COMMANDS:
        module, _, name = target.partition(":")
        assert callable(getattr(importlib.import_module(module), name)), target
    for _, _, target in cli._OPTIONS:
        module, _, name = target.partition(":")
        assert callable(getattr(importlib.import_module(module), name)), target
