"""[tool.telly] tables are checked against exactly config/telly.schema.json: jsonschema agrees, on any table."""

import json

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telly_autoinst import _schema, discovery
from tests.support.dists import installed as _dist
from tests.support.venvs import ROOT

SCHEMA = json.loads((ROOT / "config" / "telly.schema.json").read_text())


def _reference_uri(value):
    """RFC 3986 Appendix B's split, plus the URI character set: jsonschema checks "uri" only with
    rfc3987 installed, so the test gives it this independent definition."""
    import re

    if not isinstance(value, str):
        return True
    match = re.fullmatch(r"([^:/?#]+):(//[^/?#]*)?[^?#]*(\?[^#]*)?(#.*)?", value, re.S)
    if match is None or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", match.group(1)):
        return False
    if re.search(r"[^A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]", value):
        return False
    return re.search(r"%(?![0-9A-Fa-f]{2})", value) is None


_CHECKER = jsonschema.FormatChecker(formats=())
_CHECKER.checks("uri")(_reference_uri)
_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=_CHECKER)


def test_the_validator_reads_the_file_the_package_ships():
    assert _schema._load() == SCHEMA


@pytest.mark.parametrize("table, fragment", [
    ({"project_id": "p", "include": "pkg.*"}, "include: expected an array, got 'pkg.*'"),
    ({"project_id": "has space"}, "project_id: 'has space' does not match"),
    ({"project_id": "p", "level2": "no"}, "level2: expected true or false, got 'no'"),
    ({"project_id": "p", "endpoint": "not a url"}, "endpoint: expected an absolute URL"),
    ({"project_id": "p", "region": "US"}, "region: expected one of 'us', 'eu', got 'US'"),
    ({"project_id": "p", "packages": [" mypkg"]}, "packages[0]: ' mypkg' does not match"),
    ({"project_id": "p", "endpoints": {}}, "endpoints: must have at least 1 key(s)"),
    ({"project_id": ""}, "project_id: must not be shorter than 1"),
    ({"include": ["*"]}, "project_id is missing"),
    ({"project_id": "p", "debug": True}, "debug: unknown key"),
])
def test_issue_examples_are_refused(table, fragment):
    errors = _schema.table_errors(table)
    assert any(fragment in e for e in errors), errors
    assert not _VALIDATOR.is_valid(table)


def test_valid_table_passes():
    table = {"project_id": "us-1f0030fd", "packages": ["mypkg", "mypkg.sub"], "include": ["mypkg.*"],
             "exclude": [], "endpoints": {"us": "https://telly-us.example.org", "eu": "https://x.example/p?q=1"},
             "region": "eu", "engine": "monitoring", "mode": "optin", "level2": False, "send_from_ci": True}
    assert _schema.table_errors(table) == []
    assert _VALIDATOR.is_valid(table)


_KEYS = st.sampled_from(sorted(SCHEMA["properties"]) + ["unknown", "us", "eu"])
_TEXT = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["p", "pkg.*", "mypkg", "my.pkg", "1bad", "has space", "us", "eu", "wrapt", "monitoring",
                     "optin", "optout", "https://x.example", "http://[::1]:8/a%2F", "mailto:a@b", "not a url",
                     "x:%zz", "a" * 129, "a" * 128, "ok:id-1.2_3", ""]),
)
_SCALAR = st.one_of(_TEXT, st.booleans(), st.integers(-2, 2), st.none(), st.floats(allow_nan=False))
_VALUE = st.recursive(_SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(_KEYS, inner, max_size=3)), max_leaves=6)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_KEYS, _VALUE, max_size=6), st.booleans())
def test_validator_agrees_with_jsonschema(table, with_id):
    if with_id:
        table.setdefault("project_id", "p")
    assert (not _schema.table_errors(table)) == _VALIDATOR.is_valid(table), table


def test_scan_turns_a_schema_violation_into_an_error_naming_the_installed_schema(tmp_path):
    _dist(tmp_path, "loose", "loose", 'project_id = "has space"\ninclude = "loose.*"\nlevel2 = "no"\n')
    (declaration,) = discovery.scan(path=[str(tmp_path)])
    assert declaration.table is None
    assert "include: expected an array" in declaration.error and "level2: expected true or false" in declaration.error
    assert f"(schema: {_schema.schema_path()})" in declaration.error
    by_module, errors = discovery.resolve([declaration], environ={}, user_config={})
    assert by_module == {} and errors == [declaration.error]


def test_wheel_without_its_telly_toml_says_so(tmp_path):
    _dist(tmp_path, "bare", "bare", telly_toml=None)
    (declaration,) = discovery.scan(path=[str(tmp_path)])
    assert "telly.toml is missing from the installed distribution" in declaration.error
    assert "project_id is missing" not in declaration.error


def test_a_package_may_claim_only_its_own_modules(tmp_path):
    _dist(tmp_path, "greedy", "greedy", 'project_id = "greedy-project"\npackages = ["greedy", "requests", "owned"]\n')
    _dist(tmp_path, "owned", "owned", 'project_id = "owned-project"\n')
    by_module, errors = discovery.resolve(discovery.scan(path=[str(tmp_path)]), environ={}, user_config={})
    assert {m: p.project_id for m, p in by_module.items()} == {"greedy": "greedy-project", "owned": "owned-project"}
    assert len(errors) == 2
    assert all("refused claim" in e and "only count its own modules" in e for e in errors)
    assert "'requests'" in errors[0] and "'owned'" in errors[1]
