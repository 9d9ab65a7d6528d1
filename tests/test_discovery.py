"""Discovery in real venvs: wheels from setuptools and hatchling, editable checkouts, forced packages."""

import json
import shutil

import pytest

from tests.support.dists import installed
from tests.support.hook import WATCHED
from tests.support.venvs import FIXTURES

PROJECTS = ("import json; from telly_autoinst import finder; "
            "print(json.dumps({pid: [p.source, list(p.packages), p.distribution] "
            "for pid, p in sorted(finder.projects().items())}))")


def projects(venv, home, **env):
    return json.loads(venv.run(PROJECTS, home, env=env, check=True).stdout)


def test_wheels_of_both_backends_declare_through_entry_point_and_telly_toml(discovery_venv, home):
    found = projects(discovery_venv, home)
    assert found["sample-st-project"][1:] == [["sample_st"], "sample-st"]
    assert found["sample-hatch-project"][1:] == [["sample_hatch"], "sample-hatch"]
    assert found["sample-st-project"][0].startswith("telly.toml of distribution sample-st 1.2.3")
    assert "entry point telly: sample_st" in found["sample-st-project"][0]


def test_malformed_table_is_silent_at_run_time(discovery_venv, home):
    proc = discovery_venv.run("import sample_bad; print(sample_bad.still_works())", home, check=True)
    assert (proc.stdout, proc.stderr) == ("ok\n", "")
    assert not any("sample_bad" in v[1] for v in projects(discovery_venv, home).values())


def test_forced_package_from_environment(discovery_venv, home):
    found = projects(discovery_venv, home, TELLY_AUTOINST_PACKAGES="sample_plain")
    assert found["local:sample_plain"][1] == ["sample_plain"]
    assert "forced" in found["local:sample_plain"][0]


def test_forced_package_from_user_config(discovery_venv, home):
    config = home / ".config" / "telly_autoinst"
    config.mkdir(parents=True)
    (config / "config.toml").write_text('force_packages = ["sample_plain"]\n')
    assert "sample_plain" in discovery_venv.run(WATCHED, home, check=True).stdout
    assert "local:sample_plain" in projects(discovery_venv, home)


def test_editable_checkout_pyproject_wins_and_edits_are_seen(venvs, tmp_path, home):
    checkout = tmp_path / "checkout"
    shutil.copytree(FIXTURES / "proj_editable", checkout)
    venv = venvs.new()
    venv.pip("-e", str(checkout))
    found = projects(venv, home)
    assert found["sample-editable-project"][0] == f"[tool.telly] in {checkout / 'pyproject.toml'}"
    assert found["sample-editable-project"][1] == ["sample_editable"]
    pyproject = checkout / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("sample-editable-project", "renamed-project"))
    assert list(projects(venv, home)) == ["renamed-project"]


def test_non_editable_install_from_checkout_reads_its_pyproject(venvs, tmp_path, home):
    checkout = tmp_path / "checkout"
    shutil.copytree(FIXTURES / "proj_editable", checkout)
    venv = venvs.new()
    venv.pip(str(checkout))
    assert list(projects(venv, home)) == ["sample-editable-project"]


def test_environment_forced_packages_stay_out_of_the_cached_index(discovery_venv, home):
    # The first start builds the index, with the variable set.
    assert "sample_plain" in discovery_venv.run(WATCHED, home, env={"TELLY_AUTOINST_PACKAGES": "sample_plain"},
                                                check=True).stdout
    # Without it, the (still fresh) index must not keep watching the package.
    assert "sample_plain" not in discovery_venv.run(WATCHED, home, check=True).stdout


def test_adding_removing_and_re_adding_the_table_of_an_editable_checkout(venvs, tmp_path, home):
    checkout = tmp_path / "checkout"
    shutil.copytree(FIXTURES / "proj_editable", checkout)
    pyproject = checkout / "pyproject.toml"
    with_table = pyproject.read_text()
    without_table = with_table[:with_table.index("[tool.telly]")]
    pyproject.write_text(without_table)
    venv = venvs.new()
    venv.pip("-e", str(checkout))
    assert venv.run(WATCHED, home, check=True).stdout == "[]\n"  # the index is built here, with no table
    for text, expected in ((with_table, "['sample_editable']\n"), (without_table, "[]\n"),
                           (with_table, "['sample_editable']\n")):
        pyproject.write_text(text)
        assert venv.run(WATCHED, home, check=True).stdout == expected
        status = venv.run(["-m", "telly_autoinst", "status", "--json"], home, check=True).stdout
        assert ("sample-editable-project" in status) == (expected != "[]\n")


# An opted-in package whose settings are its entry point and telly.toml only (no [tool.telly]
# table), as each build backend declares it; the source is always acme_tools/__init__.py.
_BACKENDS = {
    "setuptools": ('[build-system]\nrequires = ["setuptools>=64"]\nbuild-backend = "setuptools.build_meta"\n'
                   '[project]\nname = "acme-tools"\nversion = "1.0"\n'
                   '[project.entry-points.telly]\nacme_tools = "acme_tools"\n'),
    "hatchling": ('[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
                  '[project]\nname = "acme-tools"\nversion = "1.0"\n'
                  '[project.entry-points.telly]\nacme_tools = "acme_tools"\n'),
    "flit": ('[build-system]\nrequires = ["flit_core>=3.4"]\nbuild-backend = "flit_core.buildapi"\n'
             '[project]\nname = "acme-tools"\nversion = "1.0"\ndescription = "x"\n'
             '[project.entry-points.telly]\nacme_tools = "acme_tools"\n'),
    "pdm": ('[build-system]\nrequires = ["pdm-backend"]\nbuild-backend = "pdm.backend"\n'
            '[project]\nname = "acme-tools"\nversion = "1.0"\n'
            '[project.entry-points.telly]\nacme_tools = "acme_tools"\n'),
    "poetry": ('[build-system]\nrequires = ["poetry-core>=1.9"]\nbuild-backend = "poetry.core.masonry.api"\n'
               '[project]\nname = "acme-tools"\nversion = "1.0"\n'
               '[project.entry-points.telly]\nacme_tools = "acme_tools"\n'),
}


@pytest.mark.slow
@pytest.mark.parametrize("backend", sorted(_BACKENDS))
def test_editable_install_reads_telly_toml_from_its_source_tree(venvs, tmp_path, home, backend):
    checkout = tmp_path / "checkout"
    (checkout / "acme_tools").mkdir(parents=True)
    (checkout / "pyproject.toml").write_text(_BACKENDS[backend])
    (checkout / "acme_tools" / "__init__.py").write_text('"""Tools."""\n\n\ndef hammer():\n    return 1\n')
    (checkout / "acme_tools" / "telly.toml").write_text('project_id = "acme-tools-project"\n')
    venv = venvs.new()
    venv.pip("-e", str(checkout))
    found = projects(venv, home)
    assert found["acme-tools-project"][1:] == [["acme_tools"], "acme-tools"]
    dry = venv.run(["-m", "telly_autoinst", "--dry-run"], home)
    assert dry.returncode == 0 and "missing" not in dry.stdout + dry.stderr, dry.stdout + dry.stderr


def test_a_non_editable_install_from_a_checkout_must_ship_its_telly_toml(venvs, tmp_path, home):
    checkout = tmp_path / "checkout"
    (checkout / "acme_tools").mkdir(parents=True)
    # setuptools leaves telly.toml out of the wheel unless it is declared as package data.
    (checkout / "pyproject.toml").write_text(_BACKENDS["setuptools"])
    (checkout / "acme_tools" / "__init__.py").write_text('"""Tools."""\n')
    (checkout / "acme_tools" / "telly.toml").write_text('project_id = "acme-tools-project"\n')
    venv = venvs.new()
    venv.pip(str(checkout))
    status = venv.run(["-m", "telly_autoinst", "--dry-run"], home).stdout
    assert "acme-tools-project" not in projects(venv, home)
    assert "telly.toml is missing from the installed distribution" in status + venv.run(
        ["-m", "telly_autoinst", "--dry-run"], home).stderr


def _namespace_dist(root, name, package, telly_toml=None):
    """``acme/<package>/`` under the namespace package ``acme``, opted in when ``telly_toml`` is given."""
    installed(root, name, f"acme.{package}", telly_toml, entry_point=telly_toml is not None,
              files=[f"acme/{package}/__init__.py"] + ([f"acme/{package}/telly.toml"] if telly_toml else []),
              source=f"def feature():\n    return {package!r}\n")


def _resolved(path):
    from telly_autoinst import discovery

    by_module, errors = discovery.resolve(discovery.scan(path=[str(path)]), environ={}, user_config={})
    return {module: project.project_id for module, project in by_module.items()}, errors


def test_a_namespace_packages_opt_in_claims_its_own_part_only(tmp_path):
    _namespace_dist(tmp_path, "acme-textutils", "textutils", 'project_id = "textutils-project"\n')
    _namespace_dist(tmp_path, "acme-other", "other")
    assert _resolved(tmp_path) == ({"acme.textutils": "textutils-project"}, [])


def test_claiming_the_namespace_itself_narrows_to_the_distributions_own_part(tmp_path):
    _namespace_dist(tmp_path, "acme-textutils", "textutils",
                    'project_id = "textutils-project"\npackages = ["acme"]\n')
    _namespace_dist(tmp_path, "acme-other", "other")
    assert _resolved(tmp_path) == ({"acme.textutils": "textutils-project"}, [])


def test_two_parts_of_one_namespace_may_both_opt_in(tmp_path):
    _namespace_dist(tmp_path, "acme-textutils", "textutils", 'project_id = "textutils-project"\n')
    _namespace_dist(tmp_path, "acme-other", "other", 'project_id = "other-project"\n')
    assert _resolved(tmp_path) == ({"acme.other": "other-project", "acme.textutils": "textutils-project"}, [])


def test_modules_belong_to_the_project_of_their_longest_claimed_prefix(monkeypatch):
    from telly_autoinst import finder

    monkeypatch.setattr(finder, "_state", (None, {"acme.textutils": "T", "plain": "P"}))
    assert finder.project_for("acme.textutils") == "T"
    assert finder.project_for("acme.textutils.deep.module") == "T"
    assert finder.project_for("acme.other.secret_inhouse_feature") is None
    assert finder.project_for("acme") is None
    assert finder.project_for("plain.sub") == "P"


_NAMESPACE_PROGRAM = ("import acme.textutils, acme.other\n"
                      "print(acme.textutils.feature(), acme.other.feature())\n")


@pytest.mark.slow
def test_a_namespace_neighbour_is_neither_listed_nor_counted(venvs, tmp_path, home):
    site = tmp_path / "site"
    _namespace_dist(site, "acme-textutils", "textutils", 'project_id = "textutils-project"\n')
    _namespace_dist(site, "acme-other", "other")
    venv = venvs.get()
    env = {"PYTHONPATH": str(site), "TELLY_STORAGE_TYPE": "file", "TELLY_LOCAL_STORAGE_PATH": str(tmp_path / "out")}
    assert venv.run(_NAMESPACE_PROGRAM, home, env=env, check=True).stdout == "textutils other\n"
    reports = [json.loads(p.read_text()) for p in (tmp_path / "out").glob("*.json")]
    assert [r["stats"] for r in reports] == [{"acme.textutils.feature": 1}]
    dry = json.dumps(json.loads(venv.run(["-m", "telly_autoinst", "--dry-run", "--json"], home, env=env).stdout))
    assert "acme.textutils.feature" in dry and "acme.other" not in dry


def test_an_editable_checkout_reports_only_when_its_author_asks(venvs, tmp_path, home):
    checkout = tmp_path / "checkout"
    shutil.copytree(FIXTURES / "proj_editable", checkout)
    (checkout / "src" / "sample_editable" / "__init__.py").write_text("def run():\n    return 1\n")
    venv = venvs.new()
    venv.pip("-e", str(checkout))
    program = "import sample_editable; sample_editable.run()"
    for asked, expected in ((None, []), ("1", [{"sample_editable.run": 1}])):
        out = tmp_path / f"out-{asked}"
        env = {"TELLY_STORAGE_TYPE": "file", "TELLY_LOCAL_STORAGE_PATH": str(out), "TELLY_SEND_FROM_EDITABLE": asked}
        venv.run(program, home, env=env, check=True)
        assert [json.loads(p.read_text())["stats"] for p in out.glob("*.json")] == expected
    status = venv.run(["-m", "telly_autoinst", "status"], home).stdout
    assert "editable" in status
    # --dry-run says so too, in its text and its JSON.
    assert "nothing below is counted or sent unless send_from_editable" in venv.run(
        ["-m", "telly_autoinst", "--dry-run"], home).stdout
    (entry,) = json.loads(venv.run(["-m", "telly_autoinst", "--dry-run", "--json"], home).stdout)["distributions"]
    assert (entry["editable"], entry["sends_from_editable"]) == (True, False)
