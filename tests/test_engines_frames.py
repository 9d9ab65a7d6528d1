"""Frames, warnings, logging, tracebacks and frame-built types: identical with and without the hook.

``tests/fixtures/frames`` holds a package whose code looks at its callers in every way libraries
do, and a program that prints all it sees. The program runs in a real venv of each supported
Python, plainly and with the package counted by the default engine (cold, then from the code
cache), and its output must be the same to the byte. The wrapt engine is run too: its proxy
frame is visible, which shows what this test catches.
"""

import json
import shutil

import pytest

from tests.support.venvs import FIXTURES, find_python

pytestmark = [pytest.mark.slow, pytest.mark.cross_python]

VERSIONS = [v for v in ("3.9", "3.11", "3.13") if find_python(v)]


def _run(venv, home, work, reports=None, **env):
    if reports is not None:
        env.update(TELLY_AUTOINST_PACKAGES="framespkg", TELLY_STORAGE_TYPE="file",
                   TELLY_LOCAL_STORAGE_PATH=str(reports))
    else:
        env["TELLY_DISABLE"] = "1"
    proc = venv.run(["frames_program.py"], home, env=env, cwd=work)
    assert proc.returncode == 0, proc.stderr
    return proc


def _stats(reports):
    found = {}
    for path in sorted(reports.glob("*.json")):
        report = json.loads(path.read_text())
        found.setdefault(report["client"]["engine"], {}).update(report["stats"])
    return found


@pytest.fixture
def work(tmp_path):
    target = tmp_path / "work"
    shutil.copytree(FIXTURES / "frames", target)
    return target


@pytest.mark.parametrize("version", VERSIONS)
def test_default_engine_changes_nothing_a_caller_can_see(venvs, home, work, tmp_path, version):
    venv = venvs.get(python=find_python(version))
    plain = _run(venv, home, work)
    assert "module filter: 'raised as error'" in plain.stdout and "pickled: True" in plain.stdout
    for run in ("cold", "warm"):
        reports = tmp_path / f"reports-{run}"
        counted = _run(venv, home, work, reports)
        assert counted.stdout == plain.stdout, run
        assert counted.stderr == plain.stderr, run
        stats = _stats(reports)
        assert list(stats) == ["rewrite"], stats
        keys = set(stats["rewrite"])
        assert {"framespkg.warn_caller", "framespkg.caller", "framespkg.record_type", "framespkg.Widget",
                "framespkg.Widget.warn", "framespkg.Widget.build", "framespkg.Widget.where",
                "framespkg.helpers.explode", "framespkg.fail", "framespkg.decorated_caller",
                "framespkg.frames_generator"} <= keys, sorted(keys)


@pytest.mark.parametrize("version", VERSIONS[-1:])
def test_the_wrapt_engine_shows_its_frame(venvs, home, work, tmp_path, version):
    """What the explicit proxy engine cannot hide (docs/engines.md): this test can fail."""
    venv = venvs.get(python=find_python(version))
    plain = _run(venv, home, work)
    proxied = _run(venv, home, work, tmp_path / "reports", TELLY_ENGINE="wrapt")
    assert list(_stats(tmp_path / "reports")) == ["wrapt"]
    differing = {line.split(":")[0] for line in set(proxied.stdout.splitlines()) ^ set(plain.stdout.splitlines())}
    assert {"warning", "caller", "stack", "logging", "traceback", "record module", "pickled"} <= differing, differing
