"""`python -m telly_autoinst collector ...` as operators run it."""

import json
import subprocess
import sys

from collector.tests.support import make_report, post
from tests.support.venvs import ROOT, SOURCE_PATH


def _cli(*args, home):
    return subprocess.run([sys.executable, "-m", "telly_autoinst", "collector", *args], cwd=str(ROOT),
                          capture_output=True, text=True, env={"HOME": str(home), "PATH": "/usr/bin:/bin",
                                                               "PYTHONPATH": SOURCE_PATH})


def test_project_create_prints_id_and_token(db_url, tmp_path):
    done = _cli("project", "create", "demo", "--region", "eu", "--json", "--db", db_url, home=tmp_path)
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    assert created["project_id"].startswith("eu-") and len(created["read_token"]) >= 40
    text = _cli("project", "create", "demo2", "--db", db_url, home=tmp_path)
    assert "project_id: us-" in text.stdout and "read_token: " in text.stdout


def test_publish_through_now_and_the_dashboard_numbers(db_url, tmp_path, serve):
    # A large project: its daily releases carry its registered features too.
    created = json.loads(_cli("project", "create", "demo", "--json", "--db", db_url, "--epsilon-per-day", "1e6",
                              "--profile", "large", home=tmp_path).stdout)
    listing = tmp_path / "keys.json"
    listing.write_text(json.dumps({"distributions": [{"project_id": created["project_id"], "keys": ["m.f"]}]}))
    assert _cli("project", "register-keys", "--project", created["project_id"], str(listing), "--db", db_url,
                home=tmp_path).returncode == 0
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
    assert [(f["key"], f["calls"], f["users"]) for f in stats["features"]["by_calls"]] == [("m.f", 6, 3)]


def test_serve_refuses_min_group_zero(tmp_path):
    done = _cli("serve", "--min-group", "0", "--db", f"sqlite:///{tmp_path}/x.sqlite3", home=tmp_path)
    assert done.returncode == 2 and "--min-group" in done.stderr


def test_serve_refuses_a_window_too_short_to_release_a_4_week_block(tmp_path):
    done = _cli("serve", "--window-days", "34", "--db", f"sqlite:///{tmp_path}/x.sqlite3", home=tmp_path)
    assert done.returncode == 2 and "--window-days must be at least 35" in done.stderr


def test_bad_database_url_is_a_usage_error(tmp_path):
    done = _cli("project", "create", "x", "--db", "mysql://nope", home=tmp_path)
    assert done.returncode == 2 and "postgresql://" in done.stderr


def test_rotate_token_revokes_the_old_one_in_a_running_server(db_url, tmp_path, serve):
    import time

    import httpx

    created = json.loads(_cli("project", "create", "demo", "--json", "--db", db_url, home=tmp_path).stdout)
    server = serve(db_url)
    url = f"{server.url}/api/v1/projects/{created['project_id']}/stats"

    def status(token):
        return httpx.get(url, headers={"Authorization": f"Bearer {token}"}).status_code

    assert status(created["read_token"]) == 200
    done = _cli("project", "rotate-token", created["project_id"], "--json", "--db", db_url, home=tmp_path)
    assert done.returncode == 0, done.stderr
    rotated = json.loads(done.stdout)
    assert rotated["project_id"] == created["project_id"] and rotated["read_token"] != created["read_token"]
    deadline = time.monotonic() + 15
    while status(created["read_token"]) != 401:
        assert time.monotonic() < deadline, "the old token still opens the project"
        time.sleep(0.5)
    assert status(rotated["read_token"]) == 200
    missing = _cli("project", "rotate-token", "us-nobody", "--db", db_url, home=tmp_path)
    assert missing.returncode == 2 and "us-nobody" in missing.stderr


def test_public_url_makes_the_cookie_secure_and_login_checks_the_origin(tmp_path, serve):
    import httpx

    db = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    created = json.loads(_cli("project", "create", "demo", "--json", "--db", db, home=tmp_path).stdout)
    server = serve(db, "--public-url", "https://telemetry.example.org/")
    login = f"{server.url}/projects/{created['project_id']}/login"
    form = {"token": created["read_token"]}
    signed = httpx.post(login, data=form, headers={"Origin": "https://telemetry.example.org"})
    assert signed.status_code == 303
    assert "secure" in signed.headers["set-cookie"].lower().split("; ")
    for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Origin": "https://telemetry.example.org", "Sec-Fetch-Site": "same-site"}):
        refused = httpx.post(login, data=form, headers=headers)
        assert refused.status_code == 403 and refused.json()["error"] == "cross_origin", headers
        assert "set-cookie" not in refused.headers
    same = httpx.post(login, data=form, headers={"Sec-Fetch-Site": "same-origin", "Origin": "null"})
    assert same.status_code == 303


def test_login_origin_is_checked_without_a_public_url(tmp_path, serve):
    import httpx

    db = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    created = json.loads(_cli("project", "create", "demo", "--json", "--db", db, home=tmp_path).stdout)
    server = serve(db)
    login = f"{server.url}/projects/{created['project_id']}/login"
    form = {"token": created["read_token"]}
    assert httpx.post(login, data=form, headers={"Origin": "http://evil.example"}).status_code == 403
    ok = httpx.post(login, data=form, headers={"Origin": server.url})
    assert ok.status_code == 303 and "secure" not in ok.headers["set-cookie"].lower()


def test_unknown_paths_get_the_json_error_body(tmp_path, serve):
    import httpx

    db = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    server = serve(db)
    missing = httpx.get(server.url + "/no/such/page")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    wrong = httpx.post(server.url + "/healthz")
    assert wrong.status_code == 405 and wrong.json()["error"] == "method_not_allowed"


def test_the_default_store_is_private_whatever_the_umask(tmp_path, serve):
    import os
    import stat

    old = os.umask(0)
    try:
        done = _cli("project", "create", "demo", "--json", home=tmp_path)
    finally:
        os.umask(old)
    assert done.returncode == 0, done.stderr
    project_id = json.loads(done.stdout)["project_id"]
    directory = tmp_path / ".telly_autoinst" / "collector"
    database = directory / "collector-us.sqlite3"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    old = os.umask(0)  # the server inherits it: SQLite creates the -wal and -shm files under it
    try:
        server = serve(f"sqlite:///{database}")
    finally:
        os.umask(old)
    assert post(server.url, make_report(project_id)).status_code == 200
    for suffix in ("-wal", "-shm"):
        assert stat.S_IMODE(os.stat(str(database) + suffix).st_mode) == 0o600, suffix
    server.stop()
    database.chmod(0o644)
    directory.chmod(0o755)
    warnings = serve(f"sqlite:///{database}").stop()
    assert f"{database} is mode 644" in warnings and f"{directory} is mode 755" in warnings, warnings


def test_project_create_refuses_ids_that_reports_cannot_name(db_url, tmp_path):
    for bad in ("../../etc", "a b", "x/y", "p" * 200):
        done = _cli("project", "create", "demo", "--project-id", bad, "--db", db_url, home=tmp_path)
        assert done.returncode == 2 and "not a project id" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    done = _cli("project", "create", "demo", "--project-id", "6f1c2f7e-1b7a-4d55-9c1e-1234567890ab", "--json",
                "--db", db_url, home=tmp_path)
    assert done.returncode == 0 and json.loads(done.stdout)["project_id"] == "6f1c2f7e-1b7a-4d55-9c1e-1234567890ab"


def test_rate_limit_burst_is_configurable(tmp_path, serve):
    db_url = f"sqlite:///{tmp_path}/c.sqlite3"
    project_id = json.loads(_cli("project", "create", "demo", "--json", "--db", db_url, home=tmp_path).stdout)[
        "project_id"]
    server = serve(db_url, "--rate-limit", "0.001", "--rate-limit-burst", "3")
    answers = [post(server.url, make_report(project_id)) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert int(answers[-1].headers["Retry-After"]) >= 1
    refused = _cli("serve", "--rate-limit-burst", "1", "--workers", "2", "--db", "postgresql://x/y", home=tmp_path)
    assert refused.returncode == 2 and "--rate-limit-burst" in refused.stderr



def _listing(project_id):
    """What `python -m telly_autoinst --dry-run --json` prints (config/dry-run.schema.json), two projects."""
    entry = {"distribution": "demo", "version": "1.2.0", "project_id": project_id, "packages": ["demo"],
             "source": "pyproject", "engine": "rewrite", "engine_note": None, "mode": "optout", "endpoint": None,
             "modules": ["demo"], "problems": [], "keys": ["demo.f", "demo.C.m"],
             "engines": {"demo.f": "rewrite", "demo.C.m": "rewrite"}, "not_counted": []}
    other = dict(entry, distribution="other", version="9.0", project_id="someone-else", keys=["other.g"])
    return {"format": "telly-dry-run", "format_version": 1, "client_version": "0.1.0", "python": "3.11.7",
            "ok": True, "kill_switch": None, "errors": [], "distributions": [entry, other]}


def test_register_keys_from_a_dry_run_listing_then_list_and_remove(tmp_path):
    db = f"sqlite:///{tmp_path}/c.sqlite3"
    project_id = json.loads(_cli("project", "create", "demo", "--json", "--db", db, home=tmp_path).stdout)["project_id"]
    listing = tmp_path / "keys.json"
    listing.write_text(json.dumps(_listing(project_id)))
    done = _cli("project", "register-keys", "--project", project_id, str(listing), "--versions", "1.0.0,1.1.0",
                "--db", db, home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "2 new feature key(s) and 3 new version(s)" in done.stdout
    again = _cli("project", "register-keys", "--project", project_id, str(listing), "--db", db, home=tmp_path)
    assert "0 new feature key(s) and 0 new version(s)" in again.stdout  # registering again only adds
    shown = json.loads(_cli("project", "keys", "--project", project_id, "--json", "--db", db, home=tmp_path).stdout)
    # Only the entries of this project: the other distribution's keys are not registered.
    assert shown == {"feature_keys": ["demo.C.m", "demo.f"], "versions": ["1.0.0", "1.1.0", "1.2.0"]}
    assert _cli("project", "keys", "--project", project_id, "--remove", "demo.f", "--db", db,
                home=tmp_path).returncode == 0
    assert _cli("project", "keys", "--project", project_id, "--remove", "demo.f", "--db", db,
                home=tmp_path).returncode == 2
    assert "feature key\tdemo.C.m" in _cli("project", "keys", "--project", project_id, "--db", db,
                                           home=tmp_path).stdout
    listing.write_text('{"not": "a listing"}')
    refused = _cli("project", "register-keys", "--project", project_id, str(listing), "--db", db, home=tmp_path)
    assert refused.returncode == 2 and "--dry-run --json" in refused.stderr


def test_import_then_publish_through_a_past_day(tmp_path):
    import datetime

    db = f"sqlite:///{tmp_path}/c.sqlite3"
    project_id = json.loads(_cli("project", "create", "demo", "--json", "--db", db, "--epsilon-per-day", "1e6",
                                 home=tmp_path).stdout)["project_id"]
    today = datetime.datetime.now(datetime.timezone.utc).date()
    days = [today - datetime.timedelta(days=n) for n in (3, 2)]
    history = tmp_path / "history.jsonl"
    history.write_text("".join(json.dumps({"day": day.isoformat(), "report": make_report(project_id, user=u)}) + "\n"
                               for day in days for u in ("a", "b")))
    done = _cli("import", "--project", project_id, str(history), "--db", db, home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"{project_id} {days[0]}: 2 report(s) stored" in done.stdout
    assert f"{project_id}: 4 report(s) stored on 2 day(s)" in done.stdout
    published = _cli("publish", "--project", project_id, "--through", days[0].isoformat(), "--db", db, home=tmp_path)
    assert published.returncode == 0 and f"{days[0]}: released" in published.stdout, published.stderr
    assert str(days[1]) not in published.stdout  # after --through: not yet
    refused = _cli("import", "--project", project_id, str(history), "--db", db, home=tmp_path)
    assert refused.returncode == 2 and "released already" in refused.stderr
    not_past = _cli("publish", "--through", today.isoformat(), "--db", db, home=tmp_path)
    assert not_past.returncode == 2 and "a day before today" in not_past.stderr
def test_without_home_the_collector_refuses_instead_of_using_the_current_directory(tmp_path):
    for command in (["project", "create", "x"], ["serve", "--port", "0"], ["project", "list"]):
        done = subprocess.run([sys.executable, "-m", "telly_autoinst", "collector", *command], cwd=str(tmp_path),
                              capture_output=True, text=True, timeout=60,
                              env={"PATH": "/usr/bin:/bin", "PYTHONPATH": SOURCE_PATH})
        assert done.returncode == 2 and "HOME is not set" in done.stderr and "--db" in done.stderr, done.stderr
    assert list(tmp_path.iterdir()) == []


def test_serve_says_where_its_database_is_and_when_it_stops(db_url, serve):
    from telly_autoinst_collector.store import location

    server = serve(db_url, "--public-url", "https://telemetry.example.org")
    log = server.stop()
    expected = location(db_url)
    assert f"database {expected}" in log and "region us, 1 worker(s), public URL https://telemetry.example.org" in log
    assert f"stopped (database {expected})" in log
    if db_url.startswith("sqlite:"):
        assert expected.startswith("/") and expected.endswith("collector.sqlite3")


def test_project_list_and_delete(db_url, tmp_path, serve):
    created = [json.loads(_cli("project", "create", name, "--json", "--db", db_url, *extra, home=tmp_path).stdout)
               for name, extra in (("kept", ()), ("gone", ("--region", "eu")))]
    kept, gone = (c["project_id"] for c in created)
    listed = json.loads(_cli("project", "list", "--json", "--db", db_url, home=tmp_path).stdout)
    assert [(p["project_id"], p["name"], p["region"]) for p in listed] == sorted([(kept, "kept", "us"),
                                                                                   (gone, "gone", "eu")])
    assert all("read_token_sha256" not in p for p in listed)
    text = _cli("project", "list", "--db", db_url, home=tmp_path).stdout
    assert kept in text and gone in text and "gone" in text
    for region, project_id in (("us", kept), ("eu", gone)):
        server = serve(db_url, "--region", region)
        assert post(server.url, make_report(project_id, user="a")).status_code == 200
    refused = _cli("project", "delete", gone, "--db", db_url, home=tmp_path)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    done = _cli("project", "delete", gone, "--yes", "--db", db_url, home=tmp_path)
    assert done.returncode == 0 and "1 raw_reports" in done.stdout and "1 projects" in done.stdout, done.stdout
    from telly_autoinst_collector.store import open_store

    store = open_store(db_url)
    assert store.project(gone) is None and store.report_ids(gone) == set() and store.key_days(gone) == []
    assert len(store.report_ids(kept)) == 1
    store.dispose()
    assert [p["project_id"] for p in json.loads(_cli("project", "list", "--json", "--db", db_url,
                                                     home=tmp_path).stdout)] == [kept]
    missing = _cli("project", "delete", gone, "--yes", "--db", db_url, home=tmp_path)
    assert missing.returncode == 2 and gone in missing.stderr


def test_profiles_are_declared_at_creation_or_later_and_listed(tmp_path):
    from telly_autoinst_collector import privacy

    db = f"sqlite:///{tmp_path}/c.sqlite3"
    small = json.loads(_cli("project", "create", "small", "--json", "--db", db, home=tmp_path).stdout)
    large = json.loads(_cli("project", "create", "large", "--profile", "large", "--json", "--db", db,
                            home=tmp_path).stdout)
    assert (small["profile"], small["profile_declared"]) == ("small", False)
    assert (large["profile"], large["profile_declared"]) == ("large", True)
    text = _cli("project", "list", "--db", db, home=tmp_path).stdout
    assert "profile small (automatic)" in text and "profile large (declared)" in text
    done = _cli("project", "set-profile", "--project", small["project_id"], "large", "--db", db, home=tmp_path)
    assert done.returncode == 0 and "profile large (declared)" in done.stdout, done.stderr
    done = _cli("project", "set-profile", "--project", large["project_id"], "auto", "--db", db, home=tmp_path)
    assert done.returncode == 0 and "profile large (automatic)" in done.stdout, done.stderr
    listed = {p["name"]: (p["profile"], p["profile_declared"])
              for p in json.loads(_cli("project", "list", "--json", "--db", db, home=tmp_path).stdout)}
    assert listed == {"small": ("large", True), "large": ("large", False)}
    refused = _cli("project", "set-profile", "--project", "us-nope", "small", "--db", db, home=tmp_path)
    assert refused.returncode == 2 and "us-nope" in refused.stderr
    # The help states the collector's own threshold.
    assert f"{privacy.LARGE_DAILY_USERS:,} daily users" in " ".join(
        _cli("project", "create", "--help", home=tmp_path).stdout.split())
