"""`python -m telly_autoinst collector ...` as operators run it."""

import json
import subprocess
import sys

from tests.support.venvs import ROOT

from .conftest import make_report, post


def _cli(*args, home):
    return subprocess.run([sys.executable, "-m", "telly_autoinst", "collector", *args], cwd=str(ROOT),
                          capture_output=True, text=True, env={"HOME": str(home), "PATH": "/usr/bin:/bin",
                                                               "PYTHONPATH": str(ROOT)})


def test_project_create_prints_id_and_token(db_url, tmp_path):
    done = _cli("project", "create", "demo", "--region", "eu", "--json", "--db", db_url, home=tmp_path)
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    assert created["project_id"].startswith("eu-") and len(created["read_token"]) >= 40
    text = _cli("project", "create", "demo2", "--db", db_url, home=tmp_path)
    assert "project_id: us-" in text.stdout and "read_token: " in text.stdout


def test_publish_through_now_and_the_dashboard_numbers(db_url, tmp_path, serve):
    created = json.loads(_cli("project", "create", "demo", "--json", "--db", db_url, "--epsilon-per-day", "1e6",
                              home=tmp_path).stdout)
    server = serve(db_url, "--min-group", "1")
    for user in ("a", "b", "c"):
        assert post(server.url, make_report(created["project_id"], user=user, stats={"m.f": 2})).status_code == 200
    assert "nothing" not in _cli("publish", "--db", db_url, home=tmp_path).stdout  # today is not complete
    done = _cli("publish", "--through-now", "--db", db_url, "--project", created["project_id"], home=tmp_path)
    assert done.returncode == 0 and "released" in done.stdout, done.stdout + done.stderr
    import httpx

    stats = httpx.get(f"{server.url}/api/v1/projects/{created['project_id']}/stats",
                      headers={"Authorization": f"Bearer {created['read_token']}"}).json()
    assert stats["dau"][-1]["value"] == 3 and stats["dau"][-1]["partial"]
    assert stats["features"]["by_calls"] == [{"key": "m.f", "calls": 6, "users": 3}]


def test_serve_refuses_min_group_zero(tmp_path):
    done = _cli("serve", "--min-group", "0", "--db", f"sqlite:///{tmp_path}/x.sqlite3", home=tmp_path)
    assert done.returncode == 2 and "--min-group" in done.stderr


def test_bad_database_url_is_a_usage_error(tmp_path):
    done = _cli("project", "create", "x", "--db", "mysql://nope", home=tmp_path)
    assert done.returncode == 2 and "postgresql://" in done.stderr
