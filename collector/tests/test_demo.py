"""demo/run stops the collector it started however it is stopped, not only by Ctrl-C.

Here, with the collector's tests: the demo runs the collector (Python 3.10 or newer).
"""

import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from tests.support.venvs import ROOT, clean_env

pytestmark = pytest.mark.slow


def _answers(port):
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _serving_demo(venvs, home, work):
    """Start demo/run (its venv made beforehand) and read its output until the collector serves."""
    # The demo pip-installs the checkout into its venv: a venv of this test's own, with pip, and the
    # collector's dependencies already in it, so that no download is needed.
    venv = venvs.new(extra=[str(ROOT / "collector")], with_pip=True)
    work.mkdir()
    (work / "venv").symlink_to(venv.path)
    proc = subprocess.Popen([str(ROOT / "demo" / "run"), "--dir", str(work), "--users", "1", "--simulated", "0",
                             "--days", "0"], cwd=ROOT, env=clean_env(home, PYTHON=sys.executable, PYTHONUNBUFFERED="1"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    timer = threading.Timer(600, proc.kill)  # a demo that never gets there fails the test, not the run
    timer.start()
    port, seen = None, []
    try:
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("==> collector on http://127.0.0.1:"):
                port = int(line.split(":")[2].split()[0])
            if "the collector keeps serving" in line:
                break
    finally:
        timer.cancel()
    assert port is not None and _answers(port), "".join(seen)
    return proc, port


# Each case runs the demo once (its pip install takes most of it): SIGHUP takes SIGTERM's path, and
# SIGKILL the kernel's (PR_SET_PDEATHSIG), so they run in tests/run --full only.
@pytest.mark.parametrize("signum", [signal.SIGTERM, pytest.param(signal.SIGHUP, marks=pytest.mark.full),
                                    pytest.param(signal.SIGKILL, marks=pytest.mark.full)],
                         ids=lambda s: s.name)
def test_the_collector_stops_with_the_demo(venvs, home, tmp_path, signum):
    proc, port = _serving_demo(venvs, home, tmp_path / "demo")
    try:
        proc.send_signal(signum)
        proc.wait(timeout=60)
        deadline = time.monotonic() + 30
        while _answers(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _answers(port), f"the collector on port {port} still serves after the demo got {signum.name}"
    finally:
        proc.kill()
        proc.wait()
