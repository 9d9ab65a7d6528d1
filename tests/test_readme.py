"""The README stays a short product page, and the reference pages cover every switch and command.

The references are generated (settings by tools/contract.py from the shared contract, commands by
tools/commands_doc.py from the CLIs' tables, both checked in CI); these tests read the rows of
their tables, so a name that merely occurs somewhere in the prose does not count as documented.
"""

import argparse
import importlib.util
import re
from pathlib import Path

import pytest

from telly_autoinst import cli

ROOT = Path(__file__).parents[1]
_SPEC = importlib.util.spec_from_file_location("contract_tool", ROOT / "tools" / "contract.py")
contract = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(contract)
README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"
PROG = "python -m telly_autoinst"
# Everything a reader may see: the README, the pages the site is built from, and the other
# top-level documents of the repository and of its two other packages.
DOCUMENTS = sorted([ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "SECURITY.md", ROOT / "CHANGELOG.md",
                    ROOT / "node" / "README.md", ROOT / "collector" / "README.md", *DOCS.rglob("*.md")])
# A development diary's words: numbered issues and sessions mean nothing to a reader.
DIARY = re.compile(r"\b(issues? #?[0-9]+|sessions? [0-9]+)\b", re.I)


def _rows(text, header):
    """The rows (lists of cell texts) of the first table whose header row is ``header``."""
    rows, inside = [], False
    for line in text.splitlines():
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
    assert rows, f"no table {header}"
    return rows


SETTINGS_PAGE = (DOCS / "reference" / "settings.md").read_text()
COMMANDS_PAGE = (DOCS / "reference" / "commands.md").read_text()
SETTING_ROWS = _rows(SETTINGS_PAGE, ["Setting", "Scope", "Type", "Default", "Environment", "Clients", "Description"])
CLIENT_ROWS = _rows(COMMANDS_PAGE.split("## The client", 1)[1], ["Command", "What it does", "Options"])
COLLECTOR_ROWS = _rows(COMMANDS_PAGE.split("## The collector", 1)[1], ["Command", "What it does", "Options"])


def test_readme_is_short():
    assert len(README.splitlines()) < 250


def test_readme_says_who_installs_the_hook_and_how_to_say_no():
    assert "adds `telly_autoinst` to their package's dependencies" in README
    for control in ("TELLY_DISABLE=1", "DO_NOT_TRACK=1", "optout PROJECT_ID", "optin PROJECT_ID", "disable",
                    "status", "TELLY_SHOW_ME=1"):
        assert control in README, control


def test_readme_test_command_is_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text()
    (command,) = re.findall(r"^exec (\S+)", ci, re.M)
    assert re.search(rf"^{re.escape(command)}\s", README, re.M), f"the README does not show {command}"


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_document_names_an_issue_or_a_session(path):
    if not path.exists():
        pytest.skip(f"{path.name} does not exist")
    assert DIARY.findall(path.read_text()) == []


def test_every_page_is_in_the_nav_and_every_nav_entry_exists():
    nav = set(re.findall(r"^\s*- (?:[^:\n]+: )?(\S+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.M))
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert nav == pages


def test_decision_records_have_unique_numbers():
    numbers = [p.name[:4] for p in (DOCS / "decisions").glob("*.md")]
    assert sorted(numbers) == sorted(set(numbers))


def test_settings_reference_has_one_row_per_contract_setting():
    settings = contract.load()["settings"]
    assert [row[0] for row in SETTING_ROWS] == [f"`{s['name']}`" for s in settings]
    assert {row[0]: row[4] for row in SETTING_ROWS} == {f"`{s['name']}`": f"`{s['env']}`" if s.get("env") else ""
                                                        for s in settings}


def test_every_process_setting_has_an_environment_variable():
    # Process settings are the user's: each must be reachable from the environment.
    assert [s["name"] for s in contract.load()["settings"] if s["scope"] == "process" and not s.get("env")] == []


@pytest.mark.parametrize("switch", ["TELLY_DISABLE", "DO_NOT_TRACK"])
def test_kill_switches_are_documented(switch):
    assert f"`{switch}`" in SETTINGS_PAGE.split("## Switches and words", 1)[1]
    assert switch in README


def _commands_and_options():
    """The CLI's subcommands and top-level flags, read from its argument parser."""
    parser = cli._parser()
    commands = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            commands.update(action.choices)
    flags = {flag for action in parser._actions for flag in action.option_strings if flag.startswith("--")}
    # The collector has its own table; --json is an option of every row.
    return commands - {"collector"}, flags - {"--help", "--json"}


def test_commands_reference_has_one_row_per_client_command_and_option():
    commands, options = _commands_and_options()
    assert commands and options
    documented = []
    for row in CLIENT_ROWS:
        usage = re.fullmatch(rf"`{re.escape(PROG)} (\S+)[^`]*`", row[0])
        assert usage, f"a client row that is not a {PROG} invocation: {row[0]}"
        documented.append(usage.group(1))
    assert sorted(documented) == sorted(commands | options)


@pytest.mark.parametrize("name", sorted(_commands_and_options()[0]))
def test_command_row_names_its_positional_arguments(name):
    subparsers = next(a for a in cli._parser()._actions if isinstance(a, argparse._SubParsersAction))
    positionals = [a.dest.upper() for a in subparsers.choices[name]._actions if not a.option_strings]
    (words,) = [row[0].strip("`").split()[3:] for row in CLIENT_ROWS if row[0].strip("`").split()[3:4] == [name]]
    assert words[:1 + len(positionals)] == [name] + positionals


def test_commands_reference_has_one_row_per_collector_command():
    collector_cli = pytest.importorskip("telly_autoinst_collector.cli")
    prefix = f"{PROG} collector "
    documented = []
    for row in COLLECTOR_ROWS:
        usage = row[0].strip("`")
        assert usage.startswith(prefix), row[0]
        documented.append(tuple(w for w in usage[len(prefix):].split() if w.islower() and not w.startswith("-")))
    assert sorted(documented) == sorted(path for path, *_ in collector_cli._COMMANDS)


SITE = "https://telly-autoinst.github.io/telly_autoinst/"


@pytest.mark.parametrize("name", ["README.md", "CONTRIBUTING.md", "SECURITY.md", "node/README.md",
                                  "collector/README.md"])
def test_links_of_the_top_level_documents_resolve(name):
    # mkdocs --strict checks the site's pages; these documents live outside it.
    path = ROOT / name
    for target in re.findall(r"\]\(([^)\s]+)\)|<(https?://[^>\s]+)>", path.read_text()):
        target = next(t for t in target if t).split("#", 1)[0]
        if target.startswith(SITE):
            page = target[len(SITE):].rstrip("/")
            assert not page or (DOCS / f"{page}.md").exists() or (DOCS / page / "index.md").exists(), target
        elif not re.match(r"https?://", target):
            assert (path.parent / target).exists(), f"{name}: {target}"
