"""Every user-facing switch and command has its own row in the README's tables.

The assertions read the rows of the tables themselves: a name that merely occurs somewhere in the
prose (every command name is also an English word) does not count as documented.
"""

import argparse
import re
from pathlib import Path

import pytest

from telly_autoinst import cli
from telly_autoinst.settings import SETTINGS

README = (Path(__file__).parents[1] / "README.md").read_text()
PROG = "python -m telly_autoinst"


def _table(heading, header):
    """The rows (lists of cell texts) of the table with ``header`` in the section ``heading``."""
    section = re.search(rf"^#+ {re.escape(heading)}\n(.*?)(?=^#+ |\Z)", README, re.M | re.S)
    assert section, f"no section {heading!r} in README.md"
    rows, inside = [], False
    for line in section.group(1).splitlines():
        if not line.startswith("|"):
            if inside:
                break
            continue
        # A `\|` inside a cell is part of the cell, not a separator.
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if not inside:
            inside = cells == header
        elif not set("".join(cells)) <= set("-: "):
            rows.append(cells)
    assert rows, f"no table {header} in README section {heading!r}"
    return rows


def _commands_and_options():
    """The CLI's subcommands and top-level flags, read from its argument parser."""
    parser = cli._parser()
    commands = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            commands.update(action.choices)
    flags = {flag for action in parser._actions for flag in action.option_strings if flag.startswith("--")}
    # The collector has its own table (The collector > Commands); --json is an option of other rows.
    return commands - {"collector"}, flags - {"--help", "--json"}


PACKAGE_TABLE = _table("For package authors: opting in", ["key", "default", "meaning"])
SWITCH_TABLE = _table("Every switch", ["environment variable", "config key", "default", "meaning"])
COMMAND_TABLE = _table("Commands", ["Command", "Effect"])


def test_package_table_has_one_row_per_project_setting():
    keys = [row[0] for row in PACKAGE_TABLE]
    assert sorted(keys) == sorted(f"`{s.name}`" for s in SETTINGS if s.scope == "project")


def test_switch_table_rows_are_the_settings_with_an_environment_variable():
    keyed = {(row[0], row[1]) for row in SWITCH_TABLE if row[1]}
    assert keyed == {(f"`{s.env}`", f"`{s.name}`") for s in SETTINGS if s.env}


def test_every_process_setting_has_an_environment_variable():
    # Process settings are the user's: each must be reachable from the switch table above.
    assert [s.name for s in SETTINGS if s.scope == "process" and not s.env] == []


@pytest.mark.parametrize("switch", ["TELLY_DISABLE", "DO_NOT_TRACK"])
def test_kill_switch_has_a_row_without_config_key(switch):
    rows = [row for row in SWITCH_TABLE if row[0] == f"`{switch}`"]
    assert len(rows) == 1
    assert rows[0][1] == "" and "turn everything off" in rows[0][3]


def test_command_table_has_one_row_per_command_and_option():
    commands, options = _commands_and_options()
    assert commands and options
    documented = []
    for row in COMMAND_TABLE:
        usage = re.fullmatch(rf"`{re.escape(PROG)} (\S+)[^`]*`", row[0])
        assert usage, f"a Commands row that is not a {PROG} invocation: {row[0]}"
        documented.append(usage.group(1))
    assert sorted(documented) == sorted(commands | options)


@pytest.mark.parametrize("name", sorted(_commands_and_options()[0]))
def test_command_row_names_its_positional_arguments(name):
    subparsers = next(a for a in cli._parser()._actions if isinstance(a, argparse._SubParsersAction))
    positionals = [a.dest.upper() for a in subparsers.choices[name]._actions if not a.option_strings]
    (words,) = [row[0].strip("`").split()[3:] for row in COMMAND_TABLE if row[0].strip("`").split()[3:4] == [name]]
    assert words[:1 + len(positionals)] == [name] + positionals


def test_disable_row_names_the_file_and_the_sample_notice_exists():
    (disable,) = [row for row in COMMAND_TABLE if row[0] == f"`{PROG} disable`"]
    assert "`~/.telly_disable`" in disable[1]
    assert re.search(r"^### Sample notice for your README$", README, re.M)
