"""The request log: a line per request, and never the client's address."""

from collector.tests.support import make_report, post


def test_each_request_is_logged_without_the_address(tmp_path, serve):
    import httpx

    from telly_autoinst_collector.registry import create_project
    from telly_autoinst_collector.store import open_store

    db_url = f"sqlite:///{tmp_path}/c.sqlite3"
    store = open_store(db_url)
    project_id, _ = create_project(store, "demo", "us")
    store.dispose()
    server = serve(db_url, "--request-log")
    assert post(server.url, make_report(project_id)).status_code == 200
    assert httpx.get(server.url + "/healthz?from=somewhere").status_code == 200
    assert post(server.url, b"{broken").status_code == 400
    log = server.stop()
    lines = [line for line in log.splitlines() if " /api/" in line or " /healthz" in line]
    # The fixture's readiness probes come first.
    assert [line.split()[2:5] for line in lines[-3:]] == [
        ["POST", "/api/v1/reports", "200"], ["GET", "/healthz", "200"], ["POST", "/api/v1/reports", "400"]], log
    assert all(line.endswith("ms") for line in lines)
    assert "127.0.0.1" not in log.replace(server.url, "") and "somewhere" not in log


def test_no_request_log_unless_asked(tmp_path, serve):
    server = serve(f"sqlite:///{tmp_path}/c.sqlite3")
    post(server.url, b"{}")
    assert "/api/v1/reports" not in server.stop()
