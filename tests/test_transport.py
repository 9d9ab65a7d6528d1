"""Transports against a real loopback server: outcomes, gzip, proxies, timeouts, losses, file output."""

import gzip
import json
import socket

import pytest

from telly_autoinst import _http, spool, transport
from tests.support.loopback import Loopback, dead_url

BODY = json.dumps({"project_id": "p", "stats": {"a.b": 1}}, indent=2).encode() + b"\n"


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "")


def test_delivered_gzip_byte_identical():
    with Loopback([200]) as server:
        outcome = _http.post(_http.reports_url(server.url), BODY, 3.0)
        assert outcome.delivered
        (req,) = server.received
    assert req.path == "/api/v1/reports"
    assert req.headers["Content-Encoding"] == "gzip"
    assert req.headers["Content-Type"] == "application/json"
    assert gzip.decompress(req.raw) == BODY


@pytest.mark.parametrize("script, retry, reason, retry_after", [
    ([500], True, "http-500", None),
    ([503], True, "http-503", None),
    ([(429, {"Retry-After": "7"})], True, "http-429", 7.0),
    ([(429, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})], True, "http-429", 0.0),
    ([400], False, "http-400", None),
    ([413], False, "http-413", None),
    (["reset"], True, "connection-error", None),
])
def test_failures(script, retry, reason, retry_after):
    with Loopback(script) as server:
        outcome = _http.post(server.url + "/api/v1/reports", BODY, 3.0)
    assert not outcome.delivered
    assert (outcome.retry, outcome.reason, outcome.retry_after) == (retry, reason, retry_after)


def test_endpoint_down():
    outcome = _http.post(dead_url(), BODY, 2.0)
    assert (outcome.delivered, outcome.retry, outcome.reason) == (False, True, "connection-error")


def test_slow_endpoint_times_out_and_global_timeout_untouched():
    before = socket.getdefaulttimeout()
    with Loopback([("sleep", 3)]) as server:
        outcome = _http.post(server.url, BODY, 0.5)
    assert (outcome.delivered, outcome.reason) == (False, "timeout")
    assert socket.getdefaulttimeout() == before


def test_proxy_from_environment_is_honoured(monkeypatch):
    with Loopback([200]) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "")
        outcome = _http.post("http://collector.invalid/api/v1/reports", BODY, 3.0)
        assert outcome.delivered
        (req,) = proxy.received
    # A forward proxy receives the absolute URL of the real destination.
    assert req.path == "http://collector.invalid/api/v1/reports"
    assert gzip.decompress(req.raw) == BODY


def test_file_transport(tmp_path):
    out = tmp_path / "reports"
    outcome = transport.FileTransport(str(out)).deliver(None, "p", BODY, "abc")
    assert outcome.delivered
    assert (out / "telly_abc.json").read_bytes() == BODY
    assert [p.name for p in out.iterdir()] == ["telly_abc.json"]


def test_file_transport_without_path_is_a_loss():
    outcome = transport.FileTransport(None).deliver(None, "p", BODY, "abc")
    assert (outcome.delivered, outcome.reason) == (False, "no-local-storage-path")


def test_http_transport_spools_retryable_failure(tmp_path):
    directory = tmp_path / "spool"
    outcome = transport.HttpTransport(1.0, str(directory)).deliver(dead_url(), "p", BODY, "r1")
    assert (outcome.delivered, outcome.reason) == (True, "deferred")
    (name,) = spool.entries(str(directory))
    header, body = spool.read(str(directory), name)
    assert body == BODY and header["url"].endswith("/api/v1/reports") and header["project_id"] == "p"


def test_http_transport_drops_rejected(tmp_path):
    with Loopback([400]) as server:
        outcome = transport.HttpTransport(1.0, str(tmp_path)).deliver(server.url, "p", BODY, "r1")
    assert (outcome.delivered, outcome.retry, outcome.reason) == (False, False, "http-400")
    assert spool.entries(str(tmp_path)) == []


def test_no_endpoint_is_a_loss(tmp_path):
    for t in (transport.HttpTransport(1.0, str(tmp_path)), transport.SpoolTransport(str(tmp_path))):
        assert t.deliver(None, "p", BODY, "r").reason == "no-endpoint"


def test_spool_caps_drop_oldest_and_record_the_loss(tmp_path, monkeypatch):
    monkeypatch.setattr(spool, "MAX_FILES", 3)
    directory = str(tmp_path / "spool")
    t = transport.SpoolTransport(directory)
    for i in range(5):
        assert t.deliver("http://x", f"p{i}", BODY, f"r{i}").delivered
    names = spool.entries(directory)
    assert [n.split("-", 1)[1] for n in names] == ["r2.report", "r3.report", "r4.report"]
    log = (tmp_path / "spool" / "losses.log").read_text().splitlines()
    assert [line.split()[1:] for line in log] == [["spool-full-count", "p0"], ["spool-full-count", "p1"]]
    assert ("spool-full-count", "p1") in spool.LOSSES


def test_spool_transport_with_a_sender_leaves_the_caps_to_it(tmp_path, monkeypatch):
    # TELLY_SHOW_ME with the default storage: the built report is queued and a sender started
    # (pipeline.spawn, passed in), which enforces the caps as it takes the spool.
    monkeypatch.setattr(spool, "MAX_FILES", 2)
    directory = str(tmp_path / "spool")
    started = []
    t = transport.SpoolTransport(directory, spawn=lambda d, timeout: started.append((d, timeout)), timeout=1.5)
    for i in range(3):
        assert t.deliver("http://x", f"p{i}", BODY, f"r{i}").reason == "spooled"
    assert started == [(directory, 1.5)] * 3 and len(spool.entries(directory)) == 3
    assert not (tmp_path / "spool" / "losses.log").exists()


def test_spool_age_cap(tmp_path):
    directory = str(tmp_path)
    spool.enqueue(directory, "http://x", "old", BODY, "r1")
    (name,) = spool.entries(directory)
    dropped = spool.enforce_caps(directory, now=int(name.split("-")[0]) / 1e9 + spool.MAX_AGE_SEC + 1)
    assert dropped == [(name, "old", "spool-too-old")]
    assert spool.entries(directory) == []


def test_make_transport(tmp_path):
    from telly_autoinst.settings import process_settings

    def spawn(directory, timeout):
        pass

    def make(**env):
        return transport.make_transport(process_settings(environ=env, user_config={}), str(tmp_path), spawn)

    queued = make(TELLY_SHOW_ME="1")
    assert isinstance(queued, transport.SpoolTransport) and queued.spawn is spawn
    assert queued.spool_dir == str(tmp_path)
    assert isinstance(make(TELLY_STORAGE_TYPE="http"), transport.HttpTransport)
    assert make(TELLY_STORAGE_TYPE="file", TELLY_LOCAL_STORAGE_PATH="/x").directory == "/x"


def test_http_mode_spools_with_the_collectors_retry_after(tmp_path):
    import time

    with Loopback([(503, {"Retry-After": "120"})]) as server:
        outcome = transport.HttpTransport(1.0, str(tmp_path)).deliver(server.url, "p", BODY, "r1")
    assert (outcome.delivered, outcome.reason) == (True, "deferred")
    (name,) = spool.entries(str(tmp_path))
    header, _ = spool.read(str(tmp_path), name)
    assert 100 < header["not_before"] - time.time() <= 120


def test_endless_response_body_is_never_read():
    from tests.support.loopback import Hostile, endless_body

    with Hostile(endless_body) as server:
        outcome = _http.post(server.url + "/api/v1/reports", BODY, 5.0)
    assert outcome.delivered


def test_post_refuses_to_start_past_its_deadline():
    import time

    outcome = _http.post(dead_url(), BODY, 3.0, deadline=time.monotonic() - 1)
    assert (outcome.delivered, outcome.retry, outcome.reason) == (False, True, "deadline")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1: (certificate path, key path)."""
    import shutil
    import subprocess

    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl command to make a certificate with")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def _tls(server, certificate):
    """Serve ``server`` (a Loopback not yet started) over TLS; returns its https URL."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*map(str, certificate))
    server.server.socket = context.wrap_socket(server.server.socket, server_side=True)
    return server.url.replace("http://", "https://")


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"])
def test_https_is_verified_against_the_named_certificates(monkeypatch, certificate, variable):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.setenv(variable, str(certificate[0]))
    server = Loopback([200])
    url = _tls(server, certificate)
    with server:
        outcome = _http.post(_http.reports_url(url), BODY, 3.0)
        assert outcome.delivered, outcome
        (req,) = server.received
    assert gzip.decompress(req.raw) == BODY


def test_https_with_an_unknown_certificate_is_not_sent(monkeypatch, certificate):
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(variable, raising=False)
    server = Loopback([200])
    url = _tls(server, certificate)
    with server:
        outcome = _http.post(_http.reports_url(url), BODY, 3.0)
        assert server.received == []
    assert (outcome.delivered, outcome.retry, outcome.reason) == (False, True, "connection-error")


def test_https_through_a_proxy_is_tunnelled(monkeypatch, certificate):
    """HTTPS_PROXY: a CONNECT tunnel, so the proxy sees host and port only and TLS runs end to end."""
    import socket
    import threading

    seen = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def pipe(source, target):
        try:
            while True:
                chunk = source.recv(65536)
                if not chunk:
                    break
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, target):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def proxy():
        client, _ = listener.accept()
        head = b""
        while b"\r\n\r\n" not in head:
            head += client.recv(4096)
        seen.append(head.split(b"\r\n", 1)[0].decode())
        host, port = seen[0].split()[1].rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
        pipe(client, upstream)

    threading.Thread(target=proxy, daemon=True).start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{listener.getsockname()[1]}")
    monkeypatch.setenv("NO_PROXY", "")
    server = Loopback([200])
    url = _tls(server, certificate)
    with server:
        outcome = _http.post(_http.reports_url(url), BODY, 3.0)
        assert outcome.delivered, outcome
        (req,) = server.received
    listener.close()
    (request_line,) = seen  # HTTP/1.0 or 1.1, by Python version
    assert request_line.startswith(f"CONNECT {url.split('://')[1]} HTTP/1.")
    assert gzip.decompress(req.raw) == BODY and req.path == "/api/v1/reports"


def test_deliver_built_shows_exactly_the_bytes_it_delivers(home, tmp_path, capfd):
    from telly_autoinst.pipeline import capture
    from telly_autoinst.settings import process_settings, project_settings

    out = tmp_path / "out"
    process = process_settings(environ={"TELLY_STORAGE_TYPE": "file", "TELLY_LOCAL_STORAGE_PATH": str(out),
                                        "TELLY_SHOW_ME": "1"}, user_config={})
    project = project_settings({"project_id": "p", "level2": False}, "test", default_packages=("pkg",), environ={},
                               user_config={})
    captured = capture(project, {"pkg.f": 1}, trigger="exit", engine="rewrite")
    assert transport.deliver_built(process, None, "http://x", captured).delivered
    written = (out / f"telly_{captured['report_id']}.json").read_bytes()
    assert json.loads(written)["stats"] == {"pkg.f": 1}
    assert capfd.readouterr().err.encode() == written
