"""The spool drainer: retries, backoff, Retry-After, give-up, consent at send time, deadlines, detached spawn."""

import os
import subprocess
import time

import pytest

from telly_autoinst import _launch, pipeline, sender, spool
from tests.support.loopback import Hostile, Loopback, dead_url, endless_body, trickled_header
from tests.support.venvs import ROOT, clean_env, find_python


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch, tmp_path):
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
                "TELLY_DISABLE", "DO_NOT_TRACK", "TELLY_OPTIN", "TELLY_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    # The sender reads the consent lists of this HOME before sending each report.
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))


def _queue(directory, url, n=1):
    bodies = []
    for i in range(n):
        body = b'{\n  "n": %d\n}\n' % i
        spool.enqueue(str(directory), url + "/api/v1/reports", f"p{i}", body, f"r{i}")
        bodies.append(body)
    return bodies


class Sleeps(list):
    def __call__(self, seconds):
        self.append(seconds)


NOW = 1_800_000_000.0


class _Clock:
    """The sender's view of the ``time`` module, with the wall clock held at ``now``.

    Only ``time()`` is replaced (it dates the postponements); ``monotonic()`` stays real, so the
    run's deadline still bounds a test that goes wrong.
    """

    def __init__(self, now):
        self.now = now

    def time(self):
        return self.now

    def __getattr__(self, name):
        return getattr(time, name)


@pytest.fixture
def clock(monkeypatch):
    fake = _Clock(NOW)
    monkeypatch.setattr(sender, "time", fake)
    return fake


@pytest.fixture
def jitter(monkeypatch):
    """Pins the backoff's jitter: each draw returns the next of the given values."""

    def pin(*values):
        monkeypatch.setattr(sender, "_uniform", iter(values).__next__)

    return pin


def test_drains_oldest_first(tmp_path):
    with Loopback([200]) as server:
        bodies = _queue(tmp_path, server.url, 3)
        assert sender.drain(str(tmp_path)) == (3, 0)
        assert [r.body for r in server.received] == bodies
    assert spool.entries(str(tmp_path)) == []


def test_retries_with_backoff_then_delivers(tmp_path, jitter):
    jitter(0.25, 0.75)  # jitter factors 0.75 and 1.25
    sleeps = Sleeps()
    with Loopback([500, 500, 200]) as server:
        _queue(tmp_path, server.url)
        assert sender.drain(str(tmp_path), sleep=sleeps) == (1, 0)
        assert server.attempts == 3
    # BACKOFF_BASE_SEC * 2**attempt * jitter factor: 0.5 * 1 * 0.75, then 0.5 * 2 * 1.25.
    assert sender.BACKOFF_BASE_SEC == 0.5
    assert sleeps == [pytest.approx(0.375), pytest.approx(1.25)]


def test_bounded_retries_keep_report_for_later(tmp_path, clock, jitter):
    jitter(0.25, 0.75, 0.5)
    sleeps = Sleeps()
    with Loopback([503]) as server:
        _queue(tmp_path, server.url, 2)
        assert sender.drain(str(tmp_path), sleep=sleeps) == (0, 2)
        # The first report used its attempts; the second was not tried against a URL known to be down.
        assert server.attempts == sender.ATTEMPTS_PER_RUN
    header, _ = spool.read(str(tmp_path), spool.entries(str(tmp_path))[0])
    assert header["attempts"] == sender.ATTEMPTS_PER_RUN
    assert sleeps == [pytest.approx(0.375), pytest.approx(1.25)]
    # The third backoff (0.5 * 4 * 1.0) is not slept: it dates the report's next try instead.
    assert header["not_before"] == pytest.approx(NOW + 2.0)


def test_retry_after_is_honoured(tmp_path):
    sleeps = Sleeps()
    with Loopback([(429, {"Retry-After": "2"}), 200]) as server:
        _queue(tmp_path, server.url)
        assert sender.drain(str(tmp_path), sleep=sleeps) == (1, 0)
    assert sleeps == [2.0]


def test_long_retry_after_postpones_to_a_later_run(tmp_path, clock):
    with Loopback([(429, {"Retry-After": "3600"}), 200]) as server:
        _queue(tmp_path, server.url)
        assert sender.drain(str(tmp_path), sleep=Sleeps()) == (0, 1)
        assert server.attempts == 1
        header, _ = spool.read(str(tmp_path), spool.entries(str(tmp_path))[0])
        assert header["not_before"] == NOW + 3600
        # A run one second before the date does not even try; one at the date sends it.
        clock.now = NOW + 3599
        assert sender.drain(str(tmp_path), sleep=Sleeps()) == (0, 1)
        assert server.attempts == 1
        clock.now = NOW + 3600
        assert sender.drain(str(tmp_path), sleep=Sleeps()) == (1, 0)
        assert server.attempts == 2


def test_rejected_report_is_dropped_with_reason(tmp_path):
    with Loopback([422]) as server:
        _queue(tmp_path, server.url)
        assert sender.drain(str(tmp_path)) == (1, 0)
    assert (tmp_path / "losses.log").read_text().split()[1:] == ["http-422", "p0"]


def test_gives_up_after_max_attempts(tmp_path, monkeypatch):
    monkeypatch.setattr(sender, "MAX_ATTEMPTS", 2)
    _queue(tmp_path, dead_url())
    assert sender.drain(str(tmp_path), sleep=Sleeps()) == (1, 0)
    assert "gave-up:connection-error" in (tmp_path / "losses.log").read_text()


def test_corrupt_file_is_dropped(tmp_path):
    (tmp_path / f"{time.time_ns():020d}-x.report").write_bytes(b"no header")
    assert sender.drain(str(tmp_path)) == (0, 0)
    assert "spool-corrupt" in (tmp_path / "losses.log").read_text()


def test_only_one_sender_at_a_time(tmp_path):
    fd = spool.try_lock(str(tmp_path))
    try:
        _queue(tmp_path, dead_url())
        assert sender.drain(str(tmp_path)) == (0, -1)
    finally:
        os.close(fd)


def test_spawned_sender_is_detached_and_drains(tmp_path):
    with Loopback([200]) as server:
        bodies = _queue(tmp_path, server.url, 2)
        pid = pipeline.spawn(str(tmp_path))
        assert os.getsid(pid) == pid != os.getsid(0)
        assert _wait(pid) == 0
        assert [r.body for r in server.received] == bodies
    assert spool.entries(str(tmp_path)) == []


def _wait(pid, timeout=60):
    """Exit status of a spawned sender (spawn returns its pid where posix_spawn exists)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    raise AssertionError(f"sender {pid} still runs after {timeout} s")


def test_spawned_sender_respects_kill_switch(tmp_path, monkeypatch):
    monkeypatch.setenv("TELLY_DISABLE", "1")
    directory = tmp_path / "spool"
    with Loopback([200]) as server:
        _queue(directory, server.url)
        assert _wait(pipeline.spawn(str(directory))) == 0
        assert server.received == []
    # Refused at send time: dropped, never sent after the switch is turned off again.
    assert spool.entries(str(directory)) == []
    assert (directory / "losses.log").read_text().split()[1:] == ["opted-out", "p0"]


_PLANTED = "import sys\nwith open({marker!r}, 'a') as f: f.write(repr(sys.argv) + '\\n')\n"
_HOST = """import os, sys
sys.path.insert(0, {root!r})
from telly_autoinst import pipeline
child = pipeline.spawn(sys.argv[1])
pid = child if isinstance(child, int) else child.pid
os.waitpid(pid, 0)
"""


@pytest.mark.cross_python
@pytest.mark.parametrize("version", ["3.9", "3.11", "3.13"])
def test_sender_runs_nothing_from_the_hosts_directory_or_pythonpath(tmp_path, version):
    """A ``random.py`` (imported by the sender) and a ``telly_autoinst/`` where the host runs, or on
    its PYTHONPATH or PYTHONSTARTUP, never run in the sender."""
    python = find_python(version)
    if python is None:
        pytest.skip(f"no Python {version} here")
    marker = tmp_path / "ran"
    planted = _PLANTED.format(marker=str(marker))
    for folder in (tmp_path / "cwd", tmp_path / "pythonpath"):
        (folder / "telly_autoinst").mkdir(parents=True)
        (folder / "random.py").write_text(planted)
        (folder / "telly_autoinst" / "__init__.py").write_text(planted)
        (folder / "telly_autoinst" / "sender.py").write_text(planted)
    (tmp_path / "startup.py").write_text(planted)
    (tmp_path / "host").mkdir()
    (tmp_path / "host" / "host.py").write_text(_HOST.format(root=str(ROOT)))
    directory = tmp_path / "spool"
    _queue(directory, "http://127.0.0.1:9")
    env = clean_env(tmp_path / "cwd", PYTHONPATH=tmp_path / "pythonpath", PYTHONSTARTUP=tmp_path / "startup.py",
                    TELLY_DISABLE="1")
    subprocess.run([python, str(tmp_path / "host" / "host.py"), str(directory)], cwd=str(tmp_path / "cwd"),
                   env=env, check=True, timeout=60)
    # The real sender ran: it refused the report (TELLY_DISABLE) and said so.
    assert _losses(directory) == [["opted-out", "p0"]]
    ran = marker.read_text().splitlines() if marker.exists() else []
    assert [line for line in ran if "host.py" not in line] == []  # the host's own imports are its business


def test_main_never_raises(tmp_path):
    assert sender.main([str(tmp_path / "missing")]) == 0
    assert sender.main([]) == 0


def test_no_second_sender_while_one_drains(tmp_path):
    fd = spool.try_lock(str(tmp_path))
    try:
        assert pipeline.spawn(str(tmp_path)) is None
    finally:
        os.close(fd)


def test_report_queued_during_a_pass_is_picked_up(tmp_path, monkeypatch):
    with Loopback([200]) as server:
        _queue(tmp_path, server.url)
        real_drain = sender.drain
        calls = []

        def drain_and_queue(directory, **kwargs):
            result = real_drain(directory, **kwargs)
            if not calls:  # another process queued one while this pass held the lock
                spool.enqueue(directory, server.url + "/api/v1/reports", "late", b"{}\n", "late")
            calls.append(result)
            return result[0], len(spool.entries(directory))

        monkeypatch.setattr(sender, "drain", drain_and_queue)
        assert sender.main([str(tmp_path), "2.0"]) == 0
        assert len(server.received) == 2 and len(calls) == 2


def _losses(directory):
    path = directory / "losses.log"
    return [line.split()[1:] for line in path.read_text().splitlines()] if path.exists() else []


def test_optout_after_queueing_drops_that_projects_reports(tmp_path):
    directory = tmp_path / "spool"
    with Loopback([200]) as server:
        bodies = _queue(directory, server.url, 3)
        (tmp_path / "home" / ".telly_optout").write_text("P1\n")  # case-insensitive, as everywhere
        assert sender.drain(str(directory)) == (3, 0)
        assert [r.body for r in server.received] == [bodies[0], bodies[2]]
    assert _losses(directory) == [["opted-out", "p1"]]


@pytest.mark.parametrize("switch", ["TELLY_DISABLE=1", "DO_NOT_TRACK=1", "DO_NOT_TRACK=", "~/.telly_disable"])
def test_kill_switch_at_send_time_drops_every_report(tmp_path, monkeypatch, switch):
    if switch.startswith("~"):
        (tmp_path / "home" / ".telly_disable").write_text("")
    else:
        name, _, value = switch.partition("=")
        monkeypatch.setenv(name, value)
    directory = tmp_path / "spool"
    with Loopback([200]) as server:
        _queue(directory, server.url, 2)
        assert sender.drain(str(directory)) == (2, 0)
        assert server.received == []
    assert _losses(directory) == [["opted-out", "p0"], ["opted-out", "p1"]]


def test_optin_project_needs_to_be_listed_at_send_time(tmp_path):
    directory = tmp_path / "spool"
    with Loopback([200]) as server:
        for pid in ("listed", "unlisted"):
            spool.enqueue(str(directory), server.url + "/api/v1/reports", pid, b"{}\n", pid, optin=True)
        (tmp_path / "home" / ".telly_optin").write_text("listed\n")
        assert sender.drain(str(directory)) == (2, 0)
        assert len(server.received) == 1
    assert _losses(directory) == [["opted-out", "unlisted"]]


@pytest.mark.parametrize("header", [b"[]", b"null", b'"x"', b'{"url": 5}', b'{"url": "http://x", "attempts": "a"}',
                                    b'{"url": "http://x", "not_before": null}', b"{"])
def test_malformed_spool_header_is_recorded_and_skipped(tmp_path, header):
    directory = tmp_path / "spool"
    directory.mkdir()
    (directory / f"{time.time_ns() - 10**9:020d}-bad.report").write_bytes(header + b"\n{}\n")
    with Loopback([200]) as server:
        bodies = _queue(directory, server.url)
        assert sender.drain(str(directory)) == (1, 0)
        assert [r.body for r in server.received] == bodies
    assert spool.entries(str(directory)) == []
    assert _losses(directory) == [["spool-corrupt", "None"]]


@pytest.mark.parametrize("value", ["\u00b2", "1e3", "-5", "soon", "1.5", "\u0661"])
def test_malformed_retry_after_never_wedges_the_spool(tmp_path, value):
    sleeps = Sleeps()
    with Loopback([(503, {"Retry-After": value}), 200]) as server:
        bodies = _queue(tmp_path, server.url)
        assert sender.drain(str(tmp_path), sleep=sleeps) == (1, 0)
        assert [r.body for r in server.received] == bodies
    assert len(sleeps) == 1 and sleeps[0] <= sender.MAX_WAIT_SEC


def _run_sender(directory, *args):
    """The detached sender as spawn() starts it (python -I -S), with explicit timeout and run deadline."""
    return subprocess.Popen(_launch.sender_argv(str(directory), *args), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def test_endless_response_body_is_not_read(tmp_path):
    directory = tmp_path / "spool"
    with Hostile(endless_body) as server:
        _queue(directory, server.url)
        child = _run_sender(directory, "2.0", "60")
        # The old sender read the body whole: gigabytes, and never done.
        assert child.wait(timeout=30) == 0
        assert server.requests == 1
    assert spool.entries(str(directory)) == []  # a 200 is a delivery; its body does not matter


def test_trickling_endpoint_cannot_outlive_the_run_deadline(tmp_path):
    directory = tmp_path / "spool"
    with Hostile(trickled_header) as server:
        _queue(directory, server.url, 2)
        child = _run_sender(directory, "2.0", "3")
        # One byte a second resets every read timeout; only the run deadline (3 s here) ends it.
        assert child.wait(timeout=40) == 0
    fd = spool.try_lock(str(directory))
    assert fd is not None  # the spool lock went with the sender
    os.close(fd)
    names = spool.entries(str(directory))
    assert len(names) == 2  # nothing lost: tried again by a later run
    header, _ = spool.read(str(directory), names[0])
    assert header["attempts"] == 1 and header["not_before"] > 0


def test_drain_stops_at_its_deadline(tmp_path):
    with Loopback([200]) as server:
        _queue(tmp_path, server.url, 3)
        assert sender.drain(str(tmp_path), deadline=time.monotonic() - 1) == (0, 3)
        assert server.received == []


def test_no_sender_is_started_within_the_interval_of_the_last(tmp_path):
    directory = tmp_path / "spool"
    with Loopback([200]) as server:
        _queue(directory, server.url)
        assert sender.drain(str(directory)) == (1, 0)  # a sender ran: it stamped the spool
        _queue(directory, server.url)
        assert pipeline.spawn(str(directory)) is None  # the report waits for the first exit after the interval
        stamp = directory / ".sender.started"
        stamped = stamp.stat().st_mtime
        os.utime(stamp, (stamped, stamped - pipeline.SENDER_INTERVAL_SEC - 1))
        assert _wait(pipeline.spawn(str(directory))) == 0
        assert len(server.received) == 2
    assert spool.entries(str(directory)) == []


def test_a_stamp_in_the_future_does_not_silence_the_senders(tmp_path):
    directory = tmp_path / "spool"
    with Loopback([200]) as server:
        _queue(directory, server.url)
        stamp = directory / ".sender.started"
        stamp.parent.mkdir(exist_ok=True)
        stamp.touch()
        os.utime(stamp, (time.time(), time.time() + 3600))  # the clock was set back since
        assert _wait(pipeline.spawn(str(directory))) == 0
        assert len(server.received) == 1


def test_the_sender_imports_no_http_library_beyond_the_standard_one(tmp_path):
    with Loopback([200]) as server:
        _queue(tmp_path, server.url)
        # The real command line, printing the modules the sender ended up with.
        argv = _launch.sender_argv(str(tmp_path), "2.0", "30")
        argv[4] = argv[4].replace("sys.exit(main(detached=True))",
                                  "main(detached=True);print(' '.join(sorted(sys.modules)))")
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()
        assert len(server.received) == 1
    assert "http.client" in out
    assert not {"requests", "urllib3", "gzip", "telly_autoinst.engines"} & set(out)
