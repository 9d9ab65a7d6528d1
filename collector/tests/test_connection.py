"""Connection deadlines on a real server: idle, slow-header and stalled-body sockets are closed."""

import json
import resource
import socket
import time

import pytest

from collector.tests.support import make_report, post
from telly_autoinst_collector.registry import create_project
from telly_autoinst_collector.store import open_store


@pytest.fixture
def sqlite_project(tmp_path):
    db = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    store = open_store(db)
    project_id, _ = create_project(store, "demo", "us")
    store.dispose()
    return db, project_id


def _address(server):
    host, port = server.url.rsplit("/", 1)[1].split(":")
    return host, int(port)


def _closed_within(sock, seconds):
    """Seconds until the server closed ``sock`` (reading EOF or a reset), or None if it stayed open."""
    sock.settimeout(0.2)
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        try:
            if sock.recv(65536) == b"":
                return time.monotonic() - start
        except socket.timeout:
            continue
        except ConnectionResetError:
            return time.monotonic() - start
    return None


def test_idle_slow_header_and_stalled_body_are_closed(sqlite_project, serve):
    db, project_id = sqlite_project
    server = serve(db, "--idle-timeout", "1", "--header-timeout", "1.5", "--body-timeout", "2")
    address = _address(server)
    idle = socket.create_connection(address)
    header = socket.create_connection(address)
    header.sendall(b"POST /api/v1/reports HTTP/1.1\r\nHost: x\r\n")
    body = socket.create_connection(address)
    body.sendall(b"POST /api/v1/reports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 5000\r\n\r\n" + b" " * 2000)
    try:
        for sock, deadline in ((idle, 1), (header, 1.5), (body, 2)):
            waited = _closed_within(sock, deadline + 5)
            assert waited is not None, f"a connection outlived its {deadline} s deadline"
    finally:
        for sock in (idle, header, body):
            sock.close()
    # After a response, the keep-alive wait is the idle deadline too.
    kept = socket.create_connection(address)
    request = json.dumps(make_report(project_id)).encode()
    kept.sendall(b"POST /api/v1/reports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(request), request))
    assert kept.recv(65536).startswith(b"HTTP/1.1 200")
    assert _closed_within(kept, 6) is not None
    kept.close()


def _first_answer(server, project_id, status, within):
    """POST reports until one is answered STATUS or WITHIN seconds pass; the last answer."""
    deadline = time.monotonic() + within
    while True:
        answer = post(server.url, make_report(project_id))
        if answer.status_code == status or time.monotonic() > deadline:
            return answer
        time.sleep(0.1)


def test_stalled_bodies_give_back_their_memory_on_timeout(sqlite_project, serve):
    """Bodies that stop halfway hold their bytes until the body deadline, then release them."""
    db, project_id = sqlite_project
    server = serve(db, "--body-timeout", "4", "--max-in-flight-mib", "1")
    address = _address(server)
    stalled = []
    try:
        # Three hold 342 KB each of a 900 KB body: the 1 MiB cap has no room left for a report.
        for _ in range(3):
            sock = socket.create_connection(address)
            sock.sendall(b"POST /api/v1/reports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 900000\r\n\r\n" + b" " * 342000)
            stalled.append(sock)
        # Refused once the server holds those bytes: at once on a quiet machine, a moment later on a
        # loaded one (and well before the 4 s body deadline either way).
        held = _first_answer(server, project_id, 503, within=3)
        assert held.status_code == 503 and held.json()["error"] == "overloaded" and held.headers["Retry-After"]
        # The sockets stay open: only the body deadline gives their bytes back.
        assert _first_answer(server, project_id, 200, within=30).status_code == 200
    finally:
        for sock in stalled:
            sock.close()


def test_thousands_of_idle_sockets_do_not_refuse_real_reports(sqlite_project, serve):
    db, project_id = sqlite_project
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 5000:
        pytest.skip("needs an open-file limit above 5000")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    server = serve(db)
    address = _address(server)
    idle = []
    try:
        for _ in range(4100):
            idle.append(socket.create_connection(address))
        time.sleep(1)  # let the server accept them all
        for _ in range(5):
            response = post(server.url, make_report(project_id))
            assert response.status_code == 200, response.text
    finally:
        for sock in idle:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
