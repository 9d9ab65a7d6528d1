"""The shared client contract: its generator and --check, the generated modules, and the literal mirrors of start-up."""

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from telly_autoinst import _contract, _env, _lockfile, pipeline
from telly_autoinst.settings import SETTINGS, process_settings, project_settings

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = json.loads((ROOT / "config" / "contract.json").read_text(encoding="utf-8"))
USER_SCHEMA = json.loads((ROOT / "config" / "user-config.schema.json").read_text(encoding="utf-8"))


def _tool():
    spec = importlib.util.spec_from_file_location("contract_tool", ROOT / "tools" / "contract.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_checked_in_outputs_are_up_to_date():
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "contract.py"), "--check"], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr


def test_check_fails_on_a_stale_output_and_names_it(tmp_path):
    tool = _tool()
    for relative in [tool.SOURCE, *tool.OUTPUTS]:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / relative, tmp_path / relative)
    assert tool.main(["--check", "--root", str(tmp_path)]) == 0
    contract = json.loads((tmp_path / tool.SOURCE).read_text())
    contract["spool"]["max_files"] = 501
    (tmp_path / tool.SOURCE).write_text(json.dumps(contract))
    assert "telly_autoinst/_contract.py" in tool.stale(str(tmp_path))
    assert tool.main(["--check", "--root", str(tmp_path)]) == 1
    assert tool.main(["--root", str(tmp_path)]) == 0
    assert tool.main(["--check", "--root", str(tmp_path)]) == 0
    assert "SPOOL_MAX_FILES = 501" in (tmp_path / "telly_autoinst" / "_contract.py").read_text()


def test_python_module_holds_the_contract():
    assert _contract.TRUTHY == frozenset(CONTRACT["words"]["truthy"])
    assert _contract.FALSY == frozenset(CONTRACT["words"]["falsy"])
    assert _contract.SPOOL_MAX_FILES == CONTRACT["spool"]["max_files"]
    assert _contract.RETRY_MAX_ATTEMPTS == CONTRACT["retry"]["max_attempts"]
    assert _contract.FILE_OPTOUT == CONTRACT["state_files"]["optout"]
    assert [row[0] for row in _contract.SETTINGS] == [s["name"] for s in CONTRACT["settings"]]


def test_node_module_holds_the_same_values_as_the_python_module():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    script = ("const c = require(process.argv[1]); const out = {};"
              "for (const [k, v] of Object.entries(c)) out[k] = v instanceof Set ? [...v].sort() : v;"
              "process.stdout.write(JSON.stringify(out));")
    proc = subprocess.run([node, "-e", script, str(ROOT / "node" / "lib" / "_contract.js")], capture_output=True,
                          text=True, check=True)
    from_node = json.loads(proc.stdout)
    names = [n for n in vars(_contract) if n.isupper()]
    assert sorted(from_node) == sorted(names)
    for name in names:
        value = getattr(_contract, name)
        if isinstance(value, frozenset):
            value = sorted(value)
        assert json.loads(json.dumps(value)) == from_node[name] or name == "SETTINGS", name
    # The settings rows: Python holds a table default as pairs, Node as an object.
    for py_row, js_row in zip(_contract.SETTINGS, from_node["SETTINGS"]):
        py_row = list(py_row)
        py_row[4] = dict(py_row[4]) if py_row[2] == "endpoints" else py_row[4]
        assert json.loads(json.dumps(py_row)) == js_row


def test_start_up_literals_equal_the_contract():
    # _env keeps the names start-up needs as literals (one import less).
    assert _env.TRUTHY == _contract.TRUTHY and _env.FALSY == _contract.FALSY
    assert (_env.ENV_DISABLE, _env.ENV_DO_NOT_TRACK, _env.ENV_DEBUG, _env.ENV_NO_CACHE) == (
        _contract.ENV_DISABLE, _contract.ENV_DO_NOT_TRACK, _contract.ENV_DEBUG, _contract.ENV_NO_CACHE)
    assert (_env.FILE_DISABLE, _env.FILE_CONFIG_DIR, _env.FILE_CONFIG_FILE, _env.FILE_CACHE_DIR) == (
        _contract.FILE_DISABLE, _contract.FILE_CONFIG_DIR, _contract.FILE_CONFIG_FILE, _contract.FILE_CACHE_DIR)
    assert (_env.FILE_OPTIN, _env.FILE_OPTOUT, _env.FILE_NOTICES) == (
        _contract.FILE_OPTIN, _contract.FILE_OPTOUT, _contract.FILE_NOTICES)
    force = next(row for row in _contract.SETTINGS if row[0] == "force_packages")
    assert _env.ENV_FORCE_PACKAGES == force[5]


def test_exit_path_literals_equal_the_contract():
    # The pipeline keeps the spool's names the exit writes as literals (one import less at exit).
    names = ("FILE_SPOOL_DIR", "FILE_SPOOL_LOCK", "FILE_SPOOL_STAMP", "FILE_COUNTS_SUFFIX", "FILE_COUNTS_MAGIC")
    assert [getattr(pipeline, name) for name in names] == [getattr(_contract, name) for name in names]
    assert pipeline.SENDER_INTERVAL_SEC == _contract.RETRY_SENDER_INTERVAL_SEC


def test_python_settings_are_the_contract_rows_python_applies():
    rows = [row for row in _contract.SETTINGS if "python" in row[6]]
    assert [(s.name, s.scope, s.default, s.env) for s in SETTINGS] == [(r[0], r[1], r[4], r[5]) for r in rows]


def test_package_schema_agrees_with_the_contract():
    schema = json.loads((ROOT / "config" / "telly.schema.json").read_text(encoding="utf-8"))
    project = {s["name"]: s for s in CONTRACT["settings"] if s["scope"] == "project"}
    assert set(schema["properties"]) == set(project)
    for name, prop in schema["properties"].items():
        if "enum" in prop:
            assert prop["enum"] == project[name]["choices"], name


# A user config that uses every kind of key: both clients', Python's only, and Node's only.
SHARED = {"debug": True, "force_packages": ["@scope/pkg", "my-pkg", "wordstats"], "engine": "wrapt",
          "region": "eu", "show_me": True, "project": {"p-1": {"mode": "optin", "include": ["p.*"]}}}


def test_user_schema_accepts_the_shared_config_and_refuses_an_unknown_key():
    jsonschema.validate(SHARED, USER_SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"disable": True}, USER_SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"project": {"p-1": {"project_id": "x"}}}, USER_SCHEMA)


def test_python_client_accepts_node_keys_in_the_shared_user_config():
    # debug = true and an npm name in force_packages are the Node client's: skipped, not an error.
    process = process_settings(environ={}, user_config=SHARED)
    assert process.force_packages == ("wordstats",) and process.show_me is True
    assert not hasattr(process, "debug")
    project = project_settings({"project_id": "p-1"}, "test", default_packages=("p",), environ={},
                               user_config=SHARED)
    assert (project.region, project.engine, project.mode, project.include) == ("eu", "wrapt", "optin", ("p.*",))


def test_force_packages_refuses_what_no_client_can_count():
    from telly_autoinst.errors import ConfigError

    with pytest.raises(ConfigError, match="neither an importable module name nor an npm package name"):
        process_settings(environ={}, user_config={"force_packages": ["not a name!"]})
    env = process_settings(environ={"TELLY_AUTOINST_PACKAGES": "@scope/pkg,wordstats"}, user_config={})
    assert env.force_packages == ("wordstats",)


def test_lock_file_protocol(tmp_path):
    path = str(tmp_path / "x.lock")
    line = _lockfile.acquire(path, 10)
    assert line is not None and _lockfile.acquire(path, 10) is None  # held by a live owner
    # A release by someone who does not own it leaves the lock in place.
    _lockfile.release(path, "1 elsewhere 0000\n")
    assert Path(path).read_text() == line
    _lockfile.release(path, line)
    assert not Path(path).exists()
    # A lock of a process that is gone (on this host) is moved aside and taken over.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    Path(path).write_text(f"{dead} {_lockfile._host()} deadbeef\n")
    assert _lockfile.acquire(path, 10) is not None
    assert [p.name for p in tmp_path.iterdir()] == ["x.lock"]


def test_stale_lock_replaced_meanwhile_is_given_back(tmp_path, monkeypatch):
    # Judged stale, then replaced by another client before it was moved aside: the new lock stays.
    path = tmp_path / "x.lock"
    path.write_text("1 elsewhere old\n")
    fresh = "2 elsewhere new\n"
    real_rename = _lockfile.os.rename

    def rename(src, dst):
        Path(src).write_text(fresh)  # the other client's lock arrives between the judgement and the move
        real_rename(src, dst)

    monkeypatch.setattr(_lockfile.os, "rename", rename)
    assert _lockfile._move_aside_if(str(path), "1 elsewhere old\n") is False
    assert path.read_text() == fresh
    assert [p.name for p in tmp_path.iterdir()] == ["x.lock"]
