"""The README notice: built from the package's own settings, in three formats, and the authors' guide's copy."""

import re
from pathlib import Path

import pytest

from telly_autoinst import notice
from telly_autoinst._toml import load_toml
from telly_autoinst.errors import ConfigError
from telly_autoinst.settings import project_settings

AUTHORS = (Path(__file__).parents[1] / "docs" / "authors.md").read_text()
ENDPOINTS = {"us": "https://us.collector.invalid", "eu": "https://eu.collector.invalid"}


def settings(**table):
    table.setdefault("project_id", "us-0123456789abcdef01234567")
    return project_settings(table, "test table", distribution="mypkg", default_packages=("mypkg",),
                            environ={}, user_config={})


def text(fmt="text", **table):
    return notice.render(notice.build("mypkg", settings(**table)), fmt)


def flat(rendered):
    """The notice with line breaks undone, for phrase checks that must not depend on wrapping."""
    return re.sub(r"\s+", " ", rendered)


def test_names_the_project_in_the_opt_out_command_and_the_ways_to_look():
    out = flat(text(endpoints=ENDPOINTS))
    assert "python -m telly_autoinst optout us-0123456789abcdef01234567;" in out
    for way in ("TELLY_SHOW_ME=1 python your_program.py", "python -m telly_autoinst show",
                "python -m telly_autoinst --dry-run", "TELLY_DISABLE=1", "DO_NOT_TRACK=1",
                "python -m telly_autoinst disable"):
        assert way in out


def test_region_and_its_collector_and_the_other_region():
    us = flat(text(endpoints=ENDPOINTS))
    assert "collector at https://us.collector.invalid, which keeps its data in the US region." in us
    assert "EU collector at https://eu.collector.invalid instead, set TELLY_REGION=eu." in us
    eu = flat(text(endpoints=ENDPOINTS, region="eu"))
    assert "collector at https://eu.collector.invalid, which keeps its data in the EU region." in eu
    assert "set TELLY_REGION=us" in eu
    only_eu = flat(text(endpoints={"eu": ENDPOINTS["eu"]}, region="eu"))
    assert "TELLY_REGION" not in only_eu


def test_single_endpoint_and_no_endpoint():
    single = flat(text(endpoint="https://telemetry.example.com"))
    assert "Reports go to our collector at https://telemetry.example.com." in single
    assert "region" not in single.split("Reports go to")[1].split(".")[0]
    none = flat(text())
    assert "No collector is configured" in none and "TELLY_HTTP_SERVER" in none
    assert "Reports go to" not in none


def test_level2_on_and_off():
    on = flat(text())
    assert "salted, keyed hashes (HMAC-SHA-256) of your user name, home directory, machine id and host name" in on
    off = flat(text(level2=False))
    assert "HMAC" not in off and "hashes" not in off
    assert "It sends no user or machine identifier, not even hashed" in off


def test_plaintext_level2_is_announced_only_when_the_author_agreed_and_level2_is_on():
    agreed = flat(text(level2_plaintext=True))
    assert ("if you or your administrator set TELLY_LEVEL2_PLAINTEXT=1, your user name, home directory, machine id "
            "and host name are also sent in plain text") in agreed
    assert "Without TELLY_LEVEL2_PLAINTEXT=1 they are sent only as hashes." in agreed
    assert "plain text" not in flat(text())
    assert "plain text" not in flat(text(level2_plaintext=True, level2=False))


def test_opt_in_mode_and_ci():
    optin = flat(text(mode="optin"))
    assert "Nothing is sent unless you opt in with python -m telly_autoinst optin us-0123456789abcdef01234567." in optin
    assert "If telly_autoinst is installed" not in optin
    assert "If telly_autoinst is installed" in flat(text())
    assert "Nothing is sent from CI runs." in flat(text(send_from_ci=False))
    assert "CI runs" not in flat(text())


def test_formats_mark_code_and_never_split_a_command():
    md, rst, plain = (text(fmt, endpoints=ENDPOINTS) for fmt in ("md", "rst", "text"))
    assert md.startswith("## Usage statistics\n\n")
    assert rst.startswith("Usage statistics\n================\n\n") and plain.startswith("Usage statistics\n====")
    assert "`python -m telly_autoinst optout us-0123456789abcdef01234567`" in md
    assert "``python -m telly_autoinst optout us-0123456789abcdef01234567``" in rst
    assert "`" not in plain
    for rendered in (md, rst, plain):
        assert max(len(line) for line in rendered.splitlines()) <= 100
        # Every code span opens and closes on the same line.
        assert all(line.count("`") % 2 == 0 for line in rendered.splitlines())
    assert "\x00" not in md + rst + plain


def test_unknown_format_is_a_config_error():
    with pytest.raises(ConfigError, match="use one of md, rst, text"):
        notice.render(notice.build("mypkg", settings()), "html")


def test_authors_guide_sample_is_what_the_command_prints_for_its_example_table(tmp_path):
    example = re.search(r"```toml\n(?:.*?\n)?(\[tool\.telly\]\n.*?)```", AUTHORS, re.S).group(1)
    (tmp_path / "example.toml").write_text(example)
    table = load_toml(str(tmp_path / "example.toml"))["tool"]["telly"]
    project = project_settings(table, "README", distribution="mypkg", default_packages=("mypkg",),
                               environ={}, user_config={})
    section = AUTHORS.split("## The notice for your README", 1)[1]
    sample = re.search(r"`notice --format text` prints:\n\n```\n(.*?)```", section, re.S).group(1)
    assert sample == notice.render(notice.build("mypkg", project), "text")


# --- the command, in a real venv with installed opted-in wheels ---------------------------------
def notice_command(venv, home, *args, **env):
    return venv.run(["-m", "telly_autoinst", "notice", *args], home, env=env)


def test_command_prints_the_chosen_packages_notice_from_its_own_table(discovery_venv, home):
    proc = notice_command(discovery_venv, home, "--package", "sample-st", "--format", "text",
                          TELLY_INCLUDE_LEVEL2="0", TELLY_REGION="eu", TELLY_HTTP_SERVER="http://127.0.0.1:9")
    assert proc.returncode == 0, proc.stderr
    out = flat(proc.stdout)
    assert out.startswith("Usage statistics ===") and proc.stderr == ""
    assert "python -m telly_autoinst optout sample-st-project;" in out
    # This machine's overrides are not what every user gets: the package's table is.
    assert "collector at https://us.collector.invalid, which keeps its data in the US region." in out
    assert "HMAC-SHA-256" in out and "127.0.0.1:9" not in out
    by_module = notice_command(discovery_venv, home, "--package", "sample_st", "--format", "text")
    assert by_module.stdout == proc.stdout


def test_command_default_format_is_markdown_and_json_carries_the_text(discovery_venv, home):
    md = notice_command(discovery_venv, home, "--package", "sample_hatch")
    assert md.returncode == 0 and md.stdout.startswith("## Usage statistics\n")
    assert "`python -m telly_autoinst optout sample-hatch-project`" in md.stdout
    import json

    data = json.loads(notice_command(discovery_venv, home, "--package", "sample_hatch", "--json").stdout)
    assert data["project_id"] == "sample-hatch-project" and data["text"] == md.stdout


def test_command_errors_are_on_stderr_with_exit_2(discovery_venv, home, venvs):
    several = notice_command(discovery_venv, home)
    assert several.returncode == 2 and several.stdout == ""
    assert "several packages opted in (sample-hatch, sample-st); choose one with --package NAME" in several.stderr
    unknown = notice_command(discovery_venv, home, "--package", "sample_plain")
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert "'sample_plain' did not opt in" in unknown.stderr and "sample-hatch, sample-st" in unknown.stderr
    assert "sample_bad" in unknown.stderr  # the malformed table is named, not silently skipped
    bad_format = notice_command(discovery_venv, home, "--package", "sample_st", "--format", "html")
    assert bad_format.returncode == 2 and "invalid choice: 'html'" in bad_format.stderr
    empty = venvs.get()
    nothing = notice_command(empty, home)
    assert nothing.returncode == 2 and nothing.stdout == ""
    assert "no installed package opted in" in nothing.stderr


def test_command_inside_an_authors_checkout_picks_its_package(discovery_venv, home):
    """Several packages opted in, but the command runs in sample-hatch's own tree: no --package needed."""
    from tests.support.venvs import FIXTURES

    proc = discovery_venv.run(["-m", "telly_autoinst", "notice"], home, cwd=FIXTURES / "pkg_hatch" / "sample_hatch")
    assert proc.returncode == 0, proc.stderr
    assert "`python -m telly_autoinst optout sample-hatch-project`" in proc.stdout
