"""The real server process: region isolation, durability under SIGKILL, the read API's auth."""

import os
import signal
import threading
import time

import httpx
import pytest

from collector.tests.support import make_report, post
from telly_autoinst_collector.registry import create_project
from telly_autoinst_collector.store import open_store


def _projects(db_url):
    store = open_store(db_url)
    us = create_project(store, "us project", "us")
    eu = create_project(store, "eu project", "eu")
    store.dispose()
    return us, eu


def test_a_collector_serves_only_its_region(db_url, serve):
    (us_id, us_token), (eu_id, eu_token) = _projects(db_url)
    us = serve(db_url, "--region", "us")
    eu = serve(db_url, "--region", "eu")
    assert post(us.url, make_report(us_id)).status_code == 200
    refused = post(us.url, make_report(eu_id))
    assert refused.status_code == 421 and refused.json()["error"] == "wrong_region"
    assert post(eu.url, make_report(eu_id)).status_code == 200
    assert post(eu.url, make_report(us_id)).status_code == 421
    # Reading a foreign project through the wrong region's collector is refused too.
    headers = {"Authorization": f"Bearer {eu_token}"}
    assert httpx.get(f"{us.url}/api/v1/projects/{eu_id}/stats", headers=headers).status_code == 401
    assert httpx.get(f"{eu.url}/api/v1/projects/{eu_id}/stats", headers=headers).status_code == 200
    store = open_store(db_url)
    assert len(store.report_ids(us_id)) == 1 and len(store.report_ids(eu_id)) == 1


def test_default_stores_are_separate_per_region(tmp_path):
    from telly_autoinst_collector.cli import main

    env = dict(os.environ)
    os.environ["HOME"] = str(tmp_path)
    os.environ.pop("TELLY_COLLECTOR_DB", None)
    try:
        assert main(["project", "create", "x", "--region", "eu", "--json"]) == 0
        assert main(["project", "create", "y", "--region", "us", "--json"]) == 0
    finally:
        os.environ.clear()
        os.environ.update(env)
    files = sorted(p.name for p in (tmp_path / ".telly_autoinst" / "collector").glob("*.sqlite3"))
    assert files == ["collector-eu.sqlite3", "collector-us.sqlite3"]
    eu_store = open_store(f"sqlite:///{tmp_path}/.telly_autoinst/collector/collector-eu.sqlite3")
    assert eu_store.project_ids("us") == [] and len(eu_store.project_ids("eu")) == 1


def test_a_report_without_level2_is_acknowledged_and_not_stored(db_url, serve):
    (us_id, _), _ = _projects(db_url)
    server = serve(db_url)
    assert post(server.url, make_report(us_id, level2=None)).status_code == 200
    assert post(server.url, make_report(us_id, user="alice")).status_code == 200
    store = open_store(db_url)
    assert len(store.report_ids(us_id)) == 1  # only the report that belongs to a user-day
    store.dispose()


def test_stats_api_needs_the_read_token(db_url, serve):
    (us_id, token), _ = _projects(db_url)
    server = serve(db_url)
    url = f"{server.url}/api/v1/projects/{us_id}/stats"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(f"{server.url}/api/v1/projects/nobody/stats", headers={"Authorization": f"Bearer {token}"}
                     ).status_code == 401
    response = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.json()["project_id"] == us_id


def test_every_acknowledged_report_survives_sigkill(db_url, serve):
    (project_id, _), _ = _projects(db_url)
    server = serve(db_url, "--rate-limit", "0")
    acked, stop = [], threading.Event()

    def load():
        with httpx.Client(base_url=server.url, timeout=10) as client:
            while not stop.is_set():
                report = make_report(project_id, user="u")
                try:
                    response = client.post("/api/v1/reports", json=report)
                except httpx.HTTPError:
                    return  # the server died mid-request: not acknowledged, may or may not be stored
                if response.status_code == 200:
                    acked.append(report["report_id"])

    threads = [threading.Thread(target=load) for _ in range(8)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(acked) < 300 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait()
    stop.set()
    for thread in threads:
        thread.join()
    assert len(acked) >= 300
    stored = open_store(db_url).report_ids(project_id)
    missing = set(acked) - stored
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged reports were lost"


@pytest.mark.parametrize("path", ["/api/v1/reports", "/v1.0/collect"])
def test_no_client_address_is_logged(db_url, serve, path):
    (project_id, _), _ = _projects(db_url)
    server = serve(db_url)
    post(server.url, make_report(project_id))
    httpx.post(server.url + path, content=b"{broken")
    httpx.get(server.url + "/nothing-here")
    output = server.stop()
    from telly_autoinst_collector.store import location

    # The start-up and shutdown lines name the database, whose server may be on this host too.
    assert "127.0.0.1" not in output.replace(location(db_url), "")


def test_the_server_releases_completed_days_and_expires_old_ones_on_its_own(db_url, serve):
    import datetime
    import json

    (project_id, _), _ = _projects(db_url)
    store = open_store(db_url)
    today = datetime.datetime.now(datetime.timezone.utc).date()
    old, yesterday = today - datetime.timedelta(days=40), today - datetime.timedelta(days=1)
    store.insert_reports([{"project_id": project_id, "report_id": f"{i:032x}", "day": day, "uid": "u" * 32,
                           "version": "1.0", "python": "CPython 3.11", "os": "Linux", "arch": "x86_64",
                           "stats": json.dumps({"m.f": 1})} for i, day in enumerate((old, yesterday, today))])
    store.window_key(project_id, old, b"k" * 32)
    serve(db_url, "--publish-interval", "1")
    deadline = time.monotonic() + 30
    while set(store.release_summary(project_id)) != {old, yesterday} or old in store.raw_days(project_id):
        assert time.monotonic() < deadline, store.release_summary(project_id)
        time.sleep(0.2)
    assert store.raw_days(project_id) == [yesterday, today] and store.key_days(project_id) == []


def test_one_unstorable_report_is_refused_and_its_batch_stored(db_url, serve):
    """64 × "İ" passes the schema, is 128 characters once lower-cased: refused with 422, while the
    reports committed with it, and every later one, are stored."""
    from concurrent.futures import ThreadPoolExecutor

    (project_id, _), _ = _projects(db_url)
    server = serve(db_url, "--rate-limit", "0")
    bad = make_report(project_id)
    bad["platform"]["os"] = "\u0130" * 64
    good = [make_report(project_id, user=str(n)) for n in range(40)]
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda report: post(server.url, report), good[:20] + [bad] + good[20:]))
    assert answers[20].status_code == 422 and answers[20].json()["error"] == "unstorable_string"
    assert [a.status_code for a in answers[:20] + answers[21:]] == [200] * 40
    later = [make_report(project_id, user="later") for _ in range(20)]
    assert [post(server.url, report).status_code for report in later] == [200] * 20
    stored = open_store(db_url).report_ids(project_id)
    assert stored == {r["report_id"] for r in good + later}
