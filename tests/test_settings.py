"""The settings table: layering order, validation messages, and agreement with the published schema."""

import json
from pathlib import Path

import pytest

from telly_autoinst.errors import ConfigError
from telly_autoinst.settings import SETTINGS, process_settings, project_settings

SCHEMA = json.loads((Path(__file__).parents[1] / "config" / "telly.schema.json").read_text())


def test_schema_lists_exactly_the_project_settings():
    assert set(SCHEMA["properties"]) == {s.name for s in SETTINGS if s.scope == "project"}


ENUMERATED = [s for s in SETTINGS if s.scope == "project" and getattr(s.parse, "allowed", None)]


def test_some_project_settings_are_enumerated():
    assert {s.name for s in ENUMERATED} >= {"region", "engine", "mode"}


@pytest.mark.parametrize("setting", ENUMERATED, ids=lambda s: s.name)
def test_schema_enum_matches_the_table(setting):
    assert SCHEMA["properties"][setting.name]["enum"] == list(setting.parse.allowed)


def test_defaults():
    project = project_settings({"project_id": "p"}, "t", default_packages=("pkg",), environ={}, user_config={})
    assert (project.engine, project.mode, project.region, project.level2, project.include) == \
        ("auto", "optout", "us", True, ("*",))
    process = process_settings({}, {})
    assert (process.storage_type, process.timer_interval_sec, process.salt_type) == ("http_async", 3600.0,
                                                                                     "random_uuid4")


def test_layering_order_env_over_user_over_package():
    table = {"project_id": "p", "region": "eu", "level2": True}
    user = {"level2": False, "project": {"p": {"region": "us"}}}
    project = project_settings(table, "t", default_packages=("pkg",), environ={}, user_config=user)
    assert (project.region, project.level2) == ("us", False)
    project = project_settings(table, "t", default_packages=("pkg",), environ={"TELLY_REGION": "eu"},
                               user_config=user)
    assert project.region == "eu"


def test_user_config_per_project_table_applies_only_to_that_project():
    user = {"project": {"other": {"level2": False}}}
    project = project_settings({"project_id": "p"}, "t", default_packages=("pkg",), environ={}, user_config=user)
    assert project.level2 is True


def test_plaintext_level2_author_side_only_from_the_package_table():
    table = {"project_id": "p", "level2_plaintext": True}
    assert project_settings(table, "t", default_packages=("pkg",), environ={}, user_config={}).level2_plaintext
    plain = {"project_id": "p"}
    assert not project_settings(plain, "t", default_packages=("pkg",), environ={}, user_config={}).level2_plaintext
    # A user (or their administrator) cannot agree on the author's behalf...
    with pytest.raises(ConfigError, match="only the package's own table may set it"):
        project_settings(plain, "t", default_packages=("pkg",), environ={},
                         user_config={"project": {"p": {"level2_plaintext": True}}})
    with pytest.raises(ConfigError, match="only the package's own table may set it"):
        process_settings({}, {"level2_plaintext": True})
    # ...only give their own side, through the environment or their config file.
    assert process_settings({"TELLY_LEVEL2_PLAINTEXT": "1"}, {}).accept_level2_plaintext is True
    assert process_settings({}, {"accept_level2_plaintext": True}).accept_level2_plaintext is True
    assert process_settings({}, {}).accept_level2_plaintext is False
    with pytest.raises(ConfigError, match="level2_plaintext"):
        project_settings({"project_id": "p", "level2_plaintext": "sure"}, "t", default_packages=("pkg",), environ={},
                         user_config={})


def test_process_settings_from_user_config_and_env():
    user = {"force_packages": ["a", "b"], "storage_type": "file"}
    process = process_settings({"TELLY_STORAGE_TYPE": "http"}, user)
    assert (process.force_packages, process.storage_type) == (("a", "b"), "http")
    assert process_settings({"TELLY_AUTOINST_PACKAGES": "x, y,,"}, {}).force_packages == ("x", "y")


@pytest.mark.parametrize("table, message", [
    ({}, "project_id is missing"),
    ({"project_id": "p", "include": 5}, "include: expected a list of strings"),
    ({"project_id": "p", "colour": "red"}, "unknown key 'colour'"),
    ({"project_id": "p", "show_me": True}, "only the user's config file or environment may set it"),
    ({"project_id": "p", "region": "mars"}, "expected one of us, eu"),
    ({"project_id": "p", "endpoints": {"asia": "https://x"}}, "unknown region(s) asia"),
    ({"project_id": "p", "packages": ["not a module"]}, "is not an importable module name"),
    ({"project_id": "p", "level2": "maybe"}, "expected true or false"),
])
def test_malformed_tables_name_file_and_key(table, message):
    with pytest.raises(ConfigError) as info:
        project_settings(table, "pyproject.toml of demo", default_packages=("pkg",), environ={}, user_config={})
    assert message in str(info.value) and "pyproject.toml of demo" in str(info.value)


def test_bad_environment_value_names_the_variable():
    with pytest.raises(ConfigError, match="TELLY_TIMER_INTERVAL_SEC"):
        process_settings({"TELLY_TIMER_INTERVAL_SEC": "soon"}, {})


def test_collector_url_precedence():
    project = project_settings({"project_id": "p", "endpoints": {"us": "https://us", "eu": "https://eu"},
                                "region": "eu"}, "t", default_packages=("pkg",), environ={}, user_config={})
    assert project.collector_url(process_settings({}, {})) == "https://eu"
    assert project.collector_url(process_settings({"TELLY_HTTP_SERVER": "http://127.0.0.1:9"}, {})) == \
        "http://127.0.0.1:9"
