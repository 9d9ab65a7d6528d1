"""Reading the environment: the same answers as os.environ, read live, without its cost per variable."""

import os

import pytest

from telly_autoinst import _env


@pytest.fixture
def clean(monkeypatch):
    for name in list(os.environ):
        if name.startswith("TELLY_") or name in ("CI", "GITHUB_ACTIONS", "BUILD_ID"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_a_variable_reads_what_os_environ_holds_now(clean):
    assert _env.variable("TELLY_ENV_TEST") is None
    clean.setenv("TELLY_ENV_TEST", "été")
    assert _env.variable("TELLY_ENV_TEST") == os.environ["TELLY_ENV_TEST"] == "été"
    os.environ["TELLY_ENV_TEST"] = "changed by the program"
    assert _env.variable("TELLY_ENV_TEST") == "changed by the program"
    del os.environ["TELLY_ENV_TEST"]
    assert _env.variable("TELLY_ENV_TEST") is None


@pytest.mark.skipif(os.name != "posix", reason="bytes names exist on POSIX only")
def test_undecodable_names_and_values_read_as_os_environ_reads_them(clean):
    os.environb[b"TELLY_\xff"] = b"\xfe"
    try:
        [name] = [n for n in os.environ if n.startswith("TELLY_")]
        assert _env.names_with("TELLY_") == [name]
        assert _env.variable(name) == os.environ[name]
    finally:
        del os.environb[b"TELLY_\xff"]
    assert _env.names_with("TELLY_") == []


def test_names_with_a_prefix_only(clean):
    clean.setenv("TELLY_ONE", "1")
    clean.setenv("TELLY_TWO", "")
    clean.setenv("NOT_TELLY_THREE", "3")
    assert sorted(_env.names_with("TELLY_")) == ["TELLY_ONE", "TELLY_TWO"]


def test_an_environment_that_is_not_os_environs_own_is_read_through_its_mapping(clean):
    clean.setattr(os, "environ", {"TELLY_ONE": "1", "GITHUB_ACTIONS": "true"})
    assert _env.variable("TELLY_ONE") == "1"
    assert _env.variable("TELLY_TWO") is None
    assert _env.names_with("TELLY_") == ["TELLY_ONE"]
    assert _env.ci_vendor() == (True, "github_actions")


@pytest.mark.parametrize("variables, expected", [
    ({}, (False, None)), ({"CI": "true"}, (True, None)), ({"CI": "false", "GITHUB_ACTIONS": "true"}, (False, None)),
    ({"GITHUB_ACTIONS": "true"}, (True, "github_actions")), ({"GITHUB_ACTIONS": ""}, (False, None)),
    ({"BUILD_ID": "7"}, (True, None))])
def test_ci_vendor_from_os_environ_and_from_a_mapping(clean, variables, expected):
    assert _env.ci_vendor(variables) == expected
    for name, value in variables.items():
        clean.setenv(name, value)
    assert _env.ci_vendor() == expected
