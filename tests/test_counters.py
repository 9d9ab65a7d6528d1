"""Counters: shared per key, exact under threads, take/give_back bookkeeping, fresh after fork."""

import json
import os
import signal
import subprocess
import sys
import threading
import uuid

import pytest

from telly_autoinst import counters
from tests.support.venvs import ROOT


@pytest.fixture
def pid():
    return f"counters-{uuid.uuid4().hex[:12]}"


def test_same_key_shares_one_counter(pid):
    first, second = counters.tick_for(pid, "pkg.f"), counters.tick_for(pid, "pkg.f")
    first(), second(), second()
    counters.tick_for(pid, "pkg.g")()
    counters.tick_for(pid, "pkg.unused")
    assert counters.take(pid) == {"pkg.f": 3, "pkg.g": 1}


def test_take_moves_the_baseline(pid):
    tick = counters.tick_for(pid, "pkg.f")
    assert counters.take(pid) == {}
    tick(), tick()
    assert counters.take(pid) == {"pkg.f": 2}
    assert counters.take(pid) == {}
    tick()
    assert counters.take(pid) == {"pkg.f": 1}
    assert counters.take("no-such-project") == {}


def test_give_back_re_adds_undelivered_counts(pid):
    tick = counters.tick_for(pid, "pkg.f")
    tick(), tick()
    stats = counters.take(pid)
    counters.give_back(pid, stats)
    counters.give_back(pid, {"pkg.other": 0, "pkg.bad": "x"})  # nothing to re-add
    tick()
    assert counters.take(pid) == {"pkg.f": 3}
    assert counters.take(pid) == {}


def test_pending_projects(pid):
    tick = counters.tick_for(pid, "pkg.f")
    assert pid not in counters.pending_projects()
    tick()
    assert pid in counters.pending_projects()
    assert pid in counters.pending_projects()  # looking does not take
    stats = counters.take(pid)
    assert stats == {"pkg.f": 1} and pid not in counters.pending_projects()
    counters.give_back(pid, stats)
    assert pid in counters.pending_projects()


def test_exact_under_threads(pid):
    ticks = [counters.tick_for(pid, "pkg.f") for _ in range(8)]
    barrier = threading.Barrier(9)
    taken = []

    def work(tick):
        barrier.wait()
        for _ in range(200_000):
            tick()

    def reader():  # takes concurrently: no call may be lost or counted twice
        barrier.wait()
        for _ in range(200):
            taken.append(counters.take(pid).get("pkg.f", 0))

    threads = [threading.Thread(target=work, args=(t,)) for t in ticks] + [threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(taken) + counters.take(pid).get("pkg.f", 0) == 8 * 200_000


_FORK_SCRIPT = """
import json, os, sys
from telly_autoinst import counters
tick = counters.tick_for("p", "pkg.f")
for _ in range(5):
    tick()
read, write = os.pipe()
child = os.fork()
if child == 0:
    tick(); tick()
    os.write(write, json.dumps([counters.take("p"), counters.pending_projects()]).encode())
    os._exit(0)
os.waitpid(child, 0)
child_view = json.loads(os.read(read, 65536))
print(json.dumps({"child": child_view, "parent": counters.take("p")}))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_child_starts_from_zero_and_parent_keeps_its_counts(tmp_path):
    proc = subprocess.run([sys.executable, "-c", _FORK_SCRIPT], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result == {"child": [{"pkg.f": 2}, []], "parent": {"pkg.f": 5}}


_SIGNAL_WHILE_LOCKED = """
import os, signal
from telly_autoinst import counters, pipeline
from telly_autoinst.settings import process_settings

pipeline.activate(process_settings(environ={}, user_config={}), dict)
counters.tick_for("p", "pkg.f")()


def step():  # a call: where the interpreter runs a pending signal's handler
    return None


with counters._lock:  # as inside a watched import, while its counters are made
    os.kill(os.getpid(), signal.SIGTERM)
    step()
print("not reached")
"""


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or os.name != "posix", reason="needs POSIX signals")
def test_a_signal_handled_while_the_counters_are_locked_still_ends_the_process(tmp_path):
    # The signal flush reads the counters from the very thread that holds their lock.
    proc = subprocess.run([sys.executable, "-c", _SIGNAL_WHILE_LOCKED], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    assert proc.returncode == -signal.SIGTERM, proc.stderr
    assert proc.stdout == ""
