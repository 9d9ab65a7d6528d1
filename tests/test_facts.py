"""Level I facts: CI detection, bounded distribution versions."""

import json
import sys

import pytest

from telly_autoinst import _env, facts


@pytest.mark.parametrize("environ, expected", [
    ({}, (False, None)),
    ({"CI": "true"}, (True, None)),
    ({"CI": "1", "GITHUB_ACTIONS": "true"}, (True, "github_actions")),
    ({"GITLAB_CI": "true"}, (True, "gitlab")),
    ({"BUILD_NUMBER": "7"}, (True, None)),
    ({"JENKINS_URL": "http://jenkins"}, (True, "jenkins")),
    ({"CI": "false", "GITHUB_ACTIONS": "true"}, (False, None)),
    ({"CI": "0", "BUILD_ID": "3"}, (False, None)),
    ({"CI": ""}, (False, None)),
])
def test_ci_vendor(environ, expected):
    assert _env.ci_vendor(environ) == expected


def test_platform_facts_shape():
    data = facts.platform_facts()
    assert set(data) == {"os", "release", "machine", "cpu_model", "cpu_count", "memory_mib", "container", "ci",
                         "ci_vendor", "wsl"}
    assert data["memory_mib"] is None or data["memory_mib"] > 100
    json.dumps(data)


def _dist(site, name, version, requires=()):
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n\nlong description\nRequires-Dist: not-a-header\n")


def test_distribution_versions_only_own_requirements(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    _dist(site, "watched_pkg", "1.2.3", ["Dep-One>=1", "dep_two[extra] ; python_version > '3'", "missing-dep"])
    _dist(site, "dep_one", "4.5")
    _dist(site, "dep_two", "0.1")
    _dist(site, "private_inhouse_thing", "9.9")
    monkeypatch.setattr(sys, "path", [str(site)])
    facts._installed.cache_clear()
    try:
        own, deps = facts.distribution_versions("Watched.Pkg")
    finally:
        facts._installed.cache_clear()
    assert own == "1.2.3"
    assert deps == {"dep-one": "4.5", "dep-two": "0.1"}


def test_distribution_versions_unknown():
    assert facts.distribution_versions("surely-not-installed-xyz") == (None, {})
    assert facts.distribution_versions(None) == (None, {})


def test_uname_matches_platform():
    import platform

    uname = platform.uname()
    assert facts._uname() == (uname.system, uname.release, uname.machine)
