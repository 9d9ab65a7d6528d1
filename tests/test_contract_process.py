"""The shared user config in real interpreters: the Node client's keys leave counting on, an unknown key stops it."""

import pytest

from tests.support.hook import HATCH_PROGRAM
from tests.support.schema import read_reports

pytestmark = pytest.mark.slow


def _run(venv, home, tmp_path, config):
    path = home / ".config" / "telly_autoinst" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config)
    env = {"TELLY_STORAGE_TYPE": "file", "TELLY_LOCAL_STORAGE_PATH": str(tmp_path / "out")}
    proc = venv.run(HATCH_PROGRAM, home, env=env, check=True)
    assert (proc.stdout, proc.stderr) == ("5\n", "")
    return read_reports(tmp_path / "out") if (tmp_path / "out").exists() else []


def test_node_keys_in_the_shared_user_config_do_not_stop_counting(hatch_venv, home, tmp_path):
    # debug and an npm name in force_packages are the Node client's: the Python client counts on.
    reports = _run(hatch_venv, home, tmp_path, 'debug = true\nforce_packages = ["@scope/pkg", "my-pkg"]\n')
    assert [(r["project_id"], r["stats"]) for r in reports] == [("sample-hatch-project", {"sample_hatch.add": 1})]


def test_an_unknown_key_counts_nothing(hatch_venv, home, tmp_path):
    assert _run(hatch_venv, home, tmp_path, "disable = true\n") == []
    status = hatch_venv.run(["-m", "telly_autoinst", "status"], home, check=True).stdout
    assert "unknown key 'disable'" in status and "user-config.schema.json" in status
    row = next(line for line in status.splitlines() if "sample-hatch-project" in line)
    assert row.split()[:3] == ["sample-hatch", "sample-hatch-project", "off"]
