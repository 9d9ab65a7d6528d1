"""Reports: schema validity, exact encoding, and what they must never contain."""

import itertools
import json
import os
import sys

import jsonschema
import pytest

from telly_autoinst import identity
from telly_autoinst.pipeline import capture
from telly_autoinst.report import SCHEMA_VERSION, assemble, encode
from telly_autoinst.settings import project_settings
from tests.support.schema import REPORT_SCHEMA, validate_report


@pytest.fixture(autouse=True)
def fresh_home(tmp_path, monkeypatch):
    home = tmp_path / "home-SECRETHOME"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    identity.salt.cache_clear()
    yield home
    identity.salt.cache_clear()


def _project(**table):
    return project_settings({"project_id": "proj-1", **table}, "test", default_packages=("requests",),
                            environ={}, user_config={})


def build(project, stats, **kwargs):
    """The report the host builds (TELLY_SHOW_ME, http, file): what it captures, assembled."""
    return assemble(capture(project, stats, **kwargs))


def test_schema_version_matches_published_schema():
    assert REPORT_SCHEMA["properties"]["schema_version"]["const"] == SCHEMA_VERSION


@pytest.mark.parametrize("trigger, signal", [("exit", None), ("signal", 15), ("timer", None), ("fork", None),
                                             ("manual", None)])
def test_reports_validate(trigger, signal):
    report = build(_project(), {"pkg.mod.func": 3, "pkg.mod.Class": 1}, trigger=trigger, exit_signal=signal)
    validate_report(report)
    validate_report(encode(report))
    assert report["trigger"] == trigger and report["exit_signal"] == signal


def test_level2_off_is_null():
    report = build(_project(level2=False), {"a.b": 1}, trigger="exit")
    assert report["level2"] is None
    validate_report(report)


@pytest.mark.parametrize("author, user, level2", list(itertools.product((False, True), repeat=3)))
def test_plaintext_level2_only_when_author_and_user_agreed_and_level2_is_on(author, user, level2):
    report = build(_project(level2_plaintext=author, level2=level2), {"a.b": 1}, trigger="exit",
                   plaintext_accepted=user)
    validate_report(report)
    if author and user and level2:
        import getpass

        assert report["level2_plaintext"]["user"] == getpass.getuser()
        assert report["level2_plaintext"]["home"].endswith("home-SECRETHOME")
        # The hashes go along: the collector counts users with them whatever it does with the plaintext.
        assert set(report["level2"]) == {"user", "home", "machine", "host"}
    else:
        # Absent, not null: these reports are byte for byte what they were before the mode existed.
        assert "level2_plaintext" not in report


def test_plaintext_level2_is_cut_to_the_schema_limits(monkeypatch, fresh_home):
    # An undecodable byte in the name (a surrogate escape) would make the collector refuse the report.
    monkeypatch.setenv("LOGNAME", "\udcff" + "u" * 300)
    report = build(_project(level2_plaintext=True), {"a.b": 1}, trigger="exit", plaintext_accepted=True)
    assert report["level2_plaintext"]["user"] == "?" + "u" * 255
    validate_report(encode(report))


def test_zero_counts_are_left_out():
    report = build(_project(), {"a.b": 0, "a.c": 2}, trigger="exit")
    assert report["stats"] == {"a.c": 2}


def test_schema_rejects_what_the_client_must_not_send():
    report = build(_project(), {"a.b": 1}, trigger="exit")
    bad = dict(report, environment={"HOME": "/home/x"})
    with pytest.raises(jsonschema.ValidationError):
        validate_report(bad)
    bad = dict(report, level2={"user": "alice", "home": None, "machine": None, "host": None})
    with pytest.raises(jsonschema.ValidationError):
        validate_report(bad)


def test_package_versions_come_from_metadata():
    report = build(_project(), {"a.b": 1}, trigger="exit")
    import requests
    import urllib3

    assert report["package"] == {"name": "requests", "version": requests.__version__}
    assert report["packages"]["urllib3"] == urllib3.__version__
    # Bounded to the project's own requirements: the test runner is not one of them.
    assert "pytest" not in report["packages"]


def test_no_path_argument_or_environment_value(fresh_home, monkeypatch):
    monkeypatch.setenv("SOME_TOKEN", "SECRETENV")
    monkeypatch.setattr(sys, "argv", ["/tmp/SECRETPATH/prog.py", "--password=SECRETARG"])
    body = encode(build(_project(), {"a.b": 1}, trigger="exit")).decode()
    for secret in ("SECRETENV", "SECRETPATH", "SECRETARG", "SECRETHOME", os.getcwd()):
        assert secret not in body
    import getpass

    assert f'"{getpass.getuser()}"' not in body


def test_encode_is_pretty_sorted_ascii():
    report = build(_project(), {"pkg.f\u00e9": 1}, trigger="exit")
    body = encode(report)
    assert body.endswith(b"\n") and b'\n  "client": {' in body
    body.decode("ascii")
    assert json.loads(body) == report
    assert encode(json.loads(body)) == body


def test_report_ids_are_uuid4_hex():
    ids = {build(_project(), {"a": 1}, trigger="exit")["report_id"] for _ in range(50)}
    assert len(ids) == 50
    import uuid

    assert all(uuid.UUID(i).version == 4 for i in ids)
