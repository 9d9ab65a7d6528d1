"""``python -m telly_autoinst --dry-run``: the listing equals what run time wraps; broken configs fail CI."""

import json

import pytest

from telly_autoinst._contract import FORCED_SOURCE

RUNTIME_KEYS = """
import importlib, json, pkgutil, sys
from telly_autoinst import engines
tops = sys.argv[1:]
for top in tops:
    root = importlib.import_module(top)
    for info in pkgutil.walk_packages(root.__path__, top + "."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
from telly_autoinst import finder
print(json.dumps([{pid: sorted(engines.instrumented_keys(pid)) for pid in finder.projects()},
                  {pid: engines.uncounted_keys(pid) for pid in finder.projects()}]))
"""


@pytest.fixture(scope="module")
def venv(venvs, sample_wheels):
    return venvs.get(extra=[sample_wheels[name] for name in ("pkg_setuptools", "pkg_hatch", "pkg_edgecases")])


def dry_run(venv, home, *args, **env):
    return venv.run(["-m", "telly_autoinst", "--dry-run", *args], home, env=env)


def test_json_lists_sources_projects_and_keys(venv, home):
    proc = dry_run(venv, home, "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["ok"] and result["errors"] == []
    assert result["format"] == "telly-dry-run" and result["format_version"] == 1
    by_package = {top: p for p in result["distributions"] for top in p["packages"]}
    st = by_package["sample_st"]
    assert st["project_id"] == "sample-st-project"
    assert st["distribution"] == "sample-st" and st["version"]
    assert set(st["engines"]) == set(st["keys"]) and set(st["engines"].values()) == {"rewrite"}
    assert st["source"].startswith("telly.toml of distribution sample-st")
    assert "sample_st.core.greet" in st["keys"]
    assert {"sample_st.core.Greeter", "sample_st.core.Greeter.greet", "sample_st.core.Greeter.default",
            "sample_st.core.Greeter.shout", "sample_st.double", "sample_st.sub.tools.visible"} <= set(st["keys"])
    # private names, names re-exported from elsewhere and excluded patterns are not wrapped
    assert not any(k.endswith(("_private", ".join", "hidden_tool")) for k in st["keys"])
    assert "sample_st.greet" not in st["keys"]  # re-exported inside the package: keyed where defined


def test_text_output_is_readable(venv, home):
    proc = dry_run(venv, home)
    assert proc.returncode == 0, proc.stderr
    assert "\nsample-st " in "\n" + proc.stdout and "  (project sample-st-project)" in proc.stdout
    assert "  packages: sample_st\n" in proc.stdout
    assert "settings from: telly.toml of distribution sample-st" in proc.stdout
    assert "  would count " in proc.stdout and "wrap" not in proc.stdout
    assert "    sample_st.core.greet" in proc.stdout
    assert "  engine: rewrite\n" in proc.stdout  # the default engine, named


@pytest.mark.parametrize(("setting", "named"), [("wrapt", "wrapt"), ("auto", "rewrite"), ("rewrite", "rewrite")])
def test_names_the_engine_that_counts(venv, home, setting, named):
    proc = dry_run(venv, home, "--json", TELLY_ENGINE=setting)
    assert {p["engine"] for p in json.loads(proc.stdout)["distributions"]} == {named}


def test_dry_run_equals_runtime_instrumentation(venv, home):
    plan = json.loads(dry_run(venv, home, "--json").stdout)["distributions"]
    listed = {p["project_id"]: p["keys"] for p in plan}
    proc = venv.run(["-c", RUNTIME_KEYS, "sample_st", "sample_hatch", "edgecases"], home, check=True)
    runtime, uncounted = json.loads(proc.stdout)
    assert set(listed) == set(runtime)
    for project_id, keys in listed.items():
        assert keys == runtime[project_id], project_id
        assert keys
    # What the engine could not count at run time is listed, with the same reason.
    for entry in plan:
        listed_why = {item["key"]: item["why"] for item in entry["not_counted"]}
        for key, why in uncounted[entry["project_id"]].items():
            assert listed_why[key] == why


def test_malformed_config_fails_with_message(venvs, sample_wheels, home):
    venv = venvs.get(extra=[sample_wheels["pkg_setuptools"], sample_wheels["pkg_badconfig"]])
    proc = dry_run(venv, home)
    assert proc.returncode == 1
    assert "include: expected an array, got 5" in proc.stderr
    assert "sample-bad" in proc.stderr and "error" not in proc.stdout


def test_missing_forced_package_fails(venv, home):
    proc = dry_run(venv, home, TELLY_AUTOINST_PACKAGES="no_such_pkg_xyz,sample_hatch")
    assert proc.returncode == 1
    assert "forced package(s) not found: no_such_pkg_xyz" in proc.stderr


def test_forced_package_is_listed(venv, home, tmp_path):
    (tmp_path / "plain_mod.py").write_text("def f():\n    return 1\n")
    proc = dry_run(venv, home, "--json", TELLY_AUTOINST_PACKAGES="plain_mod", PYTHONPATH=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    forced = [d for d in json.loads(proc.stdout)["distributions"] if "plain_mod" in d["packages"]]
    # Where its settings come from, in the words the Node client uses too (the contract's).
    assert [d["source"] for d in forced] == [FORCED_SOURCE]


def test_dry_run_reports_nothing(venv, home, tmp_path):
    out = tmp_path / "reports"
    out.mkdir()
    proc = dry_run(venv, home, TELLY_STORAGE_TYPE="file", TELLY_LOCAL_STORAGE_PATH=str(out))
    assert proc.returncode == 0
    assert list(out.iterdir()) == []


def test_json_is_the_documented_versioned_format(venv, home):
    import jsonschema

    from tests.support.venvs import ROOT

    schema = json.loads((ROOT / "config" / "dry-run.schema.json").read_text())
    proc = dry_run(venv, home, "--json")
    result = json.loads(proc.stdout)
    jsonschema.Draft202012Validator(schema).validate(result)
    assert "dry-run-json.md" in schema["description"] and (ROOT / "docs" / "reference" / "dry-run-json.md").exists()


def test_lists_what_is_not_counted_and_why(venv, home):
    """A dataclass's generated __init__, a class without a package __init__: listed, not silently gone."""
    proc = dry_run(venv, home, "--json")
    edge = next(p for p in json.loads(proc.stdout)["distributions"] if "edgecases" in p["packages"])
    why = {item["key"]: item["why"] for item in edge["not_counted"]}
    assert "generated at run time" in why["edgecases.core.Point"]
    assert "no __init__ of the package runs" in why["edgecases.core.Plain"]
    assert "edgecases.core.Point" not in edge["keys"] and "edgecases.core.Point.norm1" in edge["keys"]
    text = dry_run(venv, home).stdout
    assert "not counted, because:" in text and "    edgecases.core.Point: its __init__ is generated" in text


def test_a_checkout_that_is_not_installed_says_so(venv, home, tmp_path):
    checkout = tmp_path / "checkout"
    (checkout / "src" / "nowhere_pkg").mkdir(parents=True)
    (checkout / "pyproject.toml").write_text('[project]\nname = "nowhere-pkg"\nversion = "1.0"\n\n'
                                             '[tool.telly]\nproject_id = "nowhere-project"\n')
    proc = venv.run(["-m", "telly_autoinst", "--dry-run"], home, cwd=checkout / "src")
    assert proc.returncode == 1
    assert "nowhere-pkg is not installed in this environment" in proc.stderr
    assert "No watched packages." not in proc.stdout


def test_an_installed_checkout_is_no_error(venv, home):
    """Inside the tree of a package that is installed (sample-hatch: entry point and telly.toml)."""
    from tests.support.venvs import FIXTURES

    proc = venv.run(["-m", "telly_autoinst", "--dry-run"], home, cwd=FIXTURES / "pkg_hatch")
    assert proc.returncode == 0, proc.stderr
