"""Receiving over HTTP: bodies capped while streaming, clear 4xx answers, fuzzing never gets a 5xx."""

import datetime
import gzip
import json
import zlib

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings
from starlette.testclient import TestClient

from collector.tests.support import json_values, make_report
from telly_autoinst_collector import privacy
from telly_autoinst_collector.app import Config, build_app
from telly_autoinst_collector.registry import create_project


@pytest.fixture
def app_and_project(tmp_path, clock):
    from telly_autoinst_collector.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    project_id, token = create_project(store, "demo", "us")
    foreign, _ = create_project(store, "abroad", "eu")
    # 20 reports, then (practically) no refill: the rate-limit test does not depend on speed.
    config = Config(region="us", rate=0.01, burst=20, max_wire=64 * 1024, max_decoded=256 * 1024, publish_interval=0)
    with TestClient(build_app(store, config, now=clock), headers={"Content-Type": "application/json"}) as client:
        yield client, store, project_id, foreign
    store.dispose()


def test_a_valid_report_is_stored_once(app_and_project):
    client, store, project_id, _ = app_and_project
    report = make_report(project_id, user="alice")
    for _ in range(2):
        response = client.post("/api/v1/reports", content=json.dumps(report))
        assert response.status_code == 200, response.text
    gz = make_report(project_id)
    assert client.post("/api/v1/reports", content=gzip.compress(json.dumps(gz).encode()),
                       headers={"Content-Encoding": "gzip"}).status_code == 200
    assert store.report_ids(project_id) == {report["report_id"], gz["report_id"]}


@pytest.mark.parametrize("body, headers, status, code", [
    (b"{not json", {}, 400, "malformed_json"),
    (b"[" * 30000 + b"]" * 30000, {}, 400, "malformed_json"),
    (b"\xff\xfe", {}, 400, "malformed_json"),
    (b"{}", {}, 422, "schema_violation"),
    (b"x" * 70000, {}, 413, "too_large"),
    (gzip.compress(b" " * 300 * 1024), {"Content-Encoding": "gzip"}, 413, "too_large"),
    (gzip.compress(b"{}")[:-6], {"Content-Encoding": "gzip"}, 400, "bad_gzip"),
    (b"garbage", {"Content-Encoding": "gzip"}, 400, "bad_gzip"),
    (b"{}", {"Content-Encoding": "br"}, 415, "unsupported_encoding"),
], ids=["syntax", "deep", "not-utf8", "empty-object", "too-large", "gzip-bomb", "gzip-truncated", "not-gzip",
        "brotli"])
def test_bad_bodies_get_a_clear_4xx(app_and_project, body, headers, status, code):
    client, store, project_id, _ = app_and_project
    response = client.post("/api/v1/reports", content=body, headers=headers)
    assert (response.status_code, response.json()["error"]) == (status, code)


def test_a_chunked_body_is_capped_while_streaming(app_and_project):
    client, store, project_id, _ = app_and_project

    def chunks():
        for _ in range(100):
            yield b"x" * 4096

    response = client.post("/api/v1/reports", content=chunks())
    assert response.status_code == 413


def test_schema_violations_say_where(app_and_project):
    client, store, project_id, _ = app_and_project
    response = client.post("/api/v1/reports", content=json.dumps(make_report(project_id, trigger="boom")))
    assert response.status_code == 422 and response.json()["detail"].startswith("trigger")
    assert store.report_ids(project_id) == set()


def test_unknown_and_foreign_projects_are_refused(app_and_project):
    client, store, project_id, foreign = app_and_project
    assert client.post("/api/v1/reports", content=json.dumps(make_report("nobody"))).status_code == 404
    response = client.post("/api/v1/reports", content=json.dumps(make_report(foreign)))
    assert (response.status_code, response.json()["error"]) == (421, "wrong_region")
    assert store.report_ids(foreign) == set()


def test_rate_limit_answers_429_with_retry_after(app_and_project):
    client, store, project_id, _ = app_and_project
    statuses = [client.post("/api/v1/reports", content=json.dumps(make_report(project_id))) for _ in range(25)]
    assert [r.status_code for r in statuses] == [200] * 20 + [429] * 5
    assert int(statuses[-1].headers["Retry-After"]) >= 1 and statuses[-1].json()["error"] == "rate_limited"
    assert len(store.report_ids(project_id)) == 20


def test_nul_and_lone_surrogates_are_refused_not_crashing(app_and_project):
    client, store, project_id, _ = app_and_project
    for key in ("a\u0000b", "\ud800"):
        body = json.dumps(make_report(project_id, stats={key: 1}))
        response = client.post("/api/v1/reports", content=body)
        assert response.status_code == 422, response.text


def _hostile():
    valid = json.dumps(make_report("PROJECT")).encode()
    return st.one_of(
        st.binary(max_size=2000),
        st.integers(0, len(valid)).map(lambda n: valid[:n]),
        st.builds(lambda a, b: a + b, st.binary(max_size=50), st.just(valid)),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.integers(1, 5000).map(lambda n: b'{"a":' * n),
        st.integers(1, 100).map(lambda n: ('{"project_id":"PROJECT","stats":{"k":1%s}}' % ("0" * (n * 100))).encode()),
        st.binary(max_size=300).map(gzip.compress),
        st.binary(min_size=1, max_size=300).map(lambda b: zlib.compress(b)),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(body=_hostile(), gzipped=st.booleans(), path=st.sampled_from(["/api/v1/reports", "/v1.0/collect"]))
def test_fuzzed_bodies_never_get_a_5xx(app_and_project, body, gzipped, path):
    client, store, project_id, _ = app_and_project
    body = body.replace(b"PROJECT", project_id.encode())
    headers = {"Content-Encoding": "gzip"} if gzipped else {}
    response = client.post(path, content=body, headers=headers)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert "error" in response.json()


def test_v1_0_payload_of_the_original_client_is_accepted(app_and_project, clock):
    client, store, project_id, _ = app_and_project
    # Every key the original telly 0.9.3 sends (its payload builder and platform probe), gzipped as it does.
    payload = {
        "api_version": "v1.0", "stats": {"mypkg.mod.func": 4, "mypkg.mod.Class.meth": 0},
        "extra": {"anything": [1, 2]},
        "client": {"language": "python", "language_implementation": "CPython", "language_version": "3.9.18",
                   "has_stdin": False, "ipython_class": None},
        "platform": {"os_name": "Linux", "os_release": "6.1.0", "os_version": "#1 SMP", "architecture": "",
                     "processor_type": "Intel", "cpu_count": 4, "total_memory": 16000000, "language": "en_US",
                     "encoding": "UTF-8", "dockerenv": False, "user_name": "f" * 64, "user_home": "e" * 64,
                     "machine_id": "d" * 64, "hostname": "c" * 64},
        "package_environment": {"mypkg": "2.0"}, "hash_level2": True, "version": "0.9.3",
        "client_id": [project_id, "00000000-0000-0000-0000-000000000000"], "exit_signal": None,
        "timestamp": "2026-11-29T01:02:03.123456",
    }
    response = client.post("/v1.0/collect", content=gzip.compress(json.dumps(payload).encode()),
                           headers={"Content-Encoding": "gzip", "User-Agent": "Telly/0.9.3"})
    assert response.status_code == 200 and response.json() == {"accepted": 1}
    (row,) = store.reports_of_day(project_id, clock().date())
    uid, version, python, os_name, arch, stats = row
    assert (python, os_name, arch, json.loads(stats)) == ("CPython 3.9", "Linux", "unknown", {"mypkg.mod.func": 4})
    assert uid not in json.dumps(payload)  # re-keyed, never the client's hash
    # Only unknown projects: refused like any unknown project.
    payload["client_id"] = ["00000000-0000-0000-0000-000000000000"]
    assert client.post("/v1.0/collect", content=json.dumps(payload)).status_code == 404


def test_memory_stays_bounded_under_bombs_and_huge_bodies(serve, tmp_path):
    """A real server: gzip bombs and maximal bodies must not grow its memory without bound."""
    import httpx

    db = f"sqlite:///{tmp_path / 'mem.sqlite3'}"
    from telly_autoinst_collector.store import open_store

    project_id, _ = create_project(open_store(db), "demo", "us")
    server = serve(db)
    pid = server.proc.pid
    bomb = gzip.compress(b"\0" * (200 * 1024 * 1024), compresslevel=9)  # 200 MiB from ~200 KB on the wire
    big = json.dumps(make_report(project_id, stats={f"k{i}" * 8: 1 for i in range(20000)})).encode()
    with httpx.Client(base_url=server.url, timeout=60, headers={"Content-Type": "application/json"}) as client:
        for _ in range(20):
            assert client.post("/api/v1/reports", content=bomb, headers={"Content-Encoding": "gzip"}).status_code == 413
            assert client.post("/api/v1/reports", content=gzip.compress(big),
                               headers={"Content-Encoding": "gzip"}).status_code in (200, 413)
    with open(f"/proc/{pid}/status") as status:
        rss_kib = int(next(line for line in status if line.startswith("VmRSS")).split()[1])
    assert rss_kib < 400 * 1024, f"collector RSS {rss_kib} KiB"


def test_a_large_gzipped_report_is_inflated_past_the_small_body_size(app_and_project):
    client, store, project_id, _ = app_and_project
    report = make_report(project_id, stats={f"pkg.module_{i:05d}.function_name": i + 1 for i in range(3000)})
    body = json.dumps(report).encode()
    assert 64 * 1024 < len(body) < 256 * 1024
    response = client.post("/api/v1/reports", content=gzip.compress(body), headers={"Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text
    (row,) = store.reports_of_day(project_id, datetime.datetime(2026, 11, 1).date())
    # Inflated and parsed whole; stored: only the most-called features, as many as a user-day counts.
    kept = privacy.FEATURES_PER_REPORT
    assert sorted(json.loads(row[-1]).values()) == list(range(3001 - kept, 3001))


@pytest.mark.parametrize("content_type", [
    None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    "application/json; charset=utf-16", "application/jsonx"])
def test_only_json_bodies_are_read(app_and_project, content_type):
    """A web page can post text/plain or a form cross-site without asking: such bodies are refused."""
    client, store, project_id, _ = app_and_project
    headers = {"Content-Type": content_type} if content_type else {}
    request = client.build_request("POST", "/api/v1/reports", content=json.dumps(make_report(project_id)),
                                   headers=headers)
    if content_type is None:
        del request.headers["Content-Type"]
    response = client.send(request)
    assert (response.status_code, response.json()["error"]) == (415, "unsupported_media_type")
    assert store.report_ids(project_id) == set()
    ok = client.post("/api/v1/reports", content=json.dumps(make_report(project_id)),
                     headers={"Content-Type": "Application/JSON; Charset=\"UTF-8\""})
    assert ok.status_code == 200, ok.text


def test_a_utf16_body_is_refused(app_and_project):
    client, store, project_id, _ = app_and_project
    response = client.post("/api/v1/reports", content=json.dumps(make_report(project_id)).encode("utf-16"))
    assert (response.status_code, response.json()["error"]) == (400, "malformed_json")


def test_an_internal_error_is_a_503_with_its_traceback_logged(app_and_project, monkeypatch, caplog):
    """The client deletes a report on a 4xx: a collector bug must answer 503 so that it retries."""
    from telly_autoinst_collector import receive

    client, store, project_id, _ = app_and_project

    def broken(body):
        raise KeyError("a bug in the collector")

    monkeypatch.setattr(receive, "fast_contribution_v1", broken)
    with caplog.at_level("ERROR", logger="telly_autoinst_collector"):
        response = client.post("/api/v1/reports", content=json.dumps(make_report(project_id)))
    assert response.status_code == 503 and int(response.headers["Retry-After"]) > 0
    assert response.json()["error"] == "internal_error"
    (record,) = [r for r in caplog.records if r.exc_info]
    assert record.exc_info[0] is KeyError and "broken" in caplog.text


def test_bytes_in_flight_are_capped_in_total(tmp_path, clock):
    """Bodies held by concurrent requests count against one cap; past it: 503, and nothing leaks."""
    import asyncio

    from telly_autoinst_collector.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    project_id, _ = create_project(store, "demo", "us")
    config = Config(region="us", rate=0, publish_interval=0, max_in_flight=256 * 1024)
    app = build_app(store, config, now=clock)
    endpoint = app._posts["/api/v1/reports"]
    in_flight = endpoint.__self__.in_flight
    answers = []

    async def post(body, release):
        sent = [{"type": "http.request", "body": body[:len(body) // 2], "more_body": True},
                {"type": "http.request", "body": body[len(body) // 2:], "more_body": False}]

        async def receive():
            if len(sent) == 1:
                await release.wait()  # the second half arrives later: the first half is held
            return sent.pop(0)

        started = {}

        async def send(message):
            if message["type"] == "http.response.start":
                started.update(status=message["status"], headers=dict(message["headers"]))
            else:
                answers.append((started["status"], started["headers"], json.loads(message["body"])))

        scope = {"type": "http", "method": "POST", "path": "/api/v1/reports",
                 "headers": [(b"content-type", b"application/json")]}
        await endpoint(scope, receive, send)

    async def main():
        async with app.site.router.lifespan_context(app.site):
            release = asyncio.Event()
            # [{},{},...]: parsed, such a body takes about 24 times its size.
            body = json.dumps({"project_id": project_id, "pad": [{}] * 8000}).encode()
            tasks = [asyncio.ensure_future(post(body, release)) for _ in range(40)]
            await asyncio.sleep(0.2)
            assert 0 < in_flight.used <= in_flight.limit
            release.set()
            await asyncio.gather(*tasks)
        assert in_flight.used == 0

    asyncio.run(main())
    statuses = sorted({status for status, _, _ in answers})
    assert 503 in statuses and set(statuses) <= {422, 503}, statuses
    for status, headers, payload in answers:
        if status == 503:
            assert payload["error"] == "overloaded" and int(headers[b"retry-after"]) >= 1
    store.dispose()


def _peak_and_now_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    return int(fields["VmHWM"].split()[0]), int(fields["VmRSS"].split()[0])


def test_many_concurrent_bodies_grow_memory_by_at_most_256_mib(serve, tmp_path):
    """800 concurrent 65,000-byte bodies of the costliest shape, for unknown projects (each one a
    database lookup while its parsed body waits): the server grows by at most 256 MiB and answers
    each with 404 or 503 + Retry-After."""
    import asyncio

    from telly_autoinst_collector.store import open_store

    db = f"sqlite:///{tmp_path / 'mem.sqlite3'}"
    open_store(db).dispose()
    server = serve(db)
    host, port = server.url.rsplit("/", 1)[1].split(":")
    before, _ = _peak_and_now_kib(server.proc.pid)

    def body(i):
        head = json.dumps({"project_id": f"nobody-{i}", "pad": []})[:-2].encode()
        pad = b"{}," * ((65000 - len(head) - 2) // 3)
        out = head + pad[:-1] + b"]}"
        return out + b" " * (65000 - len(out))

    async def one(i):
        reader, writer = await asyncio.open_connection(host, int(port))
        payload = body(i)
        writer.write(b"POST /api/v1/reports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload))
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 120)
        writer.close()
        return head

    async def flood():
        return await asyncio.gather(*(one(i) for i in range(800)))

    heads = asyncio.run(flood())
    peak, _ = _peak_and_now_kib(server.proc.pid)
    statuses = [int(h.split(b" ", 2)[1]) for h in heads]
    assert set(statuses) <= {404, 503}, sorted(set(statuses))
    assert all(b"retry-after" in h.lower() for h, s in zip(heads, statuses) if s == 503)
    assert peak - before <= 256 * 1024, f"the server grew by {(peak - before) // 1024} MiB"


def test_an_internal_error_outside_ingestion_is_a_json_503_too(tmp_path, clock, monkeypatch):
    from telly_autoinst_collector.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    project_id, token = create_project(store, "demo", "us")

    def broken(_project_id):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(store, "project", broken)
    config = Config(region="us", publish_interval=0)
    with TestClient(build_app(store, config, now=clock), raise_server_exceptions=False) as client:
        response = client.get(f"/api/v1/projects/{project_id}/stats", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 503 and response.json()["error"] == "internal_error"
        assert int(response.headers["Retry-After"]) > 0
        report = client.post("/api/v1/reports", content=json.dumps(make_report(project_id)),
                             headers={"Content-Type": "application/json"})
        assert report.status_code == 503 and report.json()["error"] == "internal_error"
    store.dispose()
