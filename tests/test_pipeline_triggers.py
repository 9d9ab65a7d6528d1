"""Every trigger in a fresh interpreter: exit, each signal, chaining, timer, fork, multiprocessing, os._exit."""

import signal
import subprocess

import pytest

from tests.support.schema import read_reports
from tests.support.venvs import clean_env

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def signals_not_ignored():
    """Children inherit an ignored signal (SIGHUP under ``nohup``, SIGINT in a background job of
    a non-interactive shell), and the hook rightly leaves an ignored signal ignored; these tests
    are about a program that ignores none of the three."""
    ignored = [s for s in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM) if signal.getsignal(s) == signal.SIG_IGN]
    for signum in ignored:
        signal.signal(signum, signal.SIG_DFL)
    yield
    for signum in ignored:
        signal.signal(signum, signal.SIG_IGN)


def _env(tmp_path, **extra):
    return {"TELLY_STORAGE_TYPE": "file", "TELLY_LOCAL_STORAGE_PATH": str(tmp_path / "out"), **extra}


def _reports(tmp_path):
    return read_reports(tmp_path / "out") if (tmp_path / "out").exists() else []


def _total(reports):
    return sum(r["stats"].get("sample_hatch.add", 0) for r in reports)


WAIT_FOR_SIGNAL = """
import sys, time
{prelude}
import sample_hatch
sample_hatch.add(1, 2); sample_hatch.add(1, 2)
print("ready", flush=True)
time.sleep(60)
print("not reached")
"""


def _signalled(hatch_venv, home, env, signum, prelude=""):
    proc = subprocess.Popen([hatch_venv.python, "-c", WAIT_FOR_SIGNAL.format(prelude=prelude)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=clean_env(home, **env), cwd=str(home))
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_signal_reports_and_keeps_exit_status(hatch_venv, home, tmp_path, signum):
    plain = _signalled(hatch_venv, home, {"TELLY_DISABLE": "1"}, signum)
    hooked = _signalled(hatch_venv, home, _env(tmp_path), signum)
    # SIGINT too: an uncaught KeyboardInterrupt makes CPython (3.8+) end by re-raising SIGINT.
    assert hooked[0] == plain[0] == -signum
    assert hooked[1] == plain[1] == ""
    (report,) = _reports(tmp_path)
    assert (report["trigger"], report["exit_signal"], report["stats"]) == ("signal", int(signum),
                                                                            {"sample_hatch.add": 2})


def test_host_handler_is_chained(hatch_venv, home, tmp_path):
    prelude = ("import os, signal\n"
               "def host(signum, frame):\n"
               # os.write: the signal may land while print("ready") still holds stdout's lock.
               "    os.write(1, b'host handler %d\\n' % signum); sys.exit(3)\n"
               "signal.signal(signal.SIGTERM, host)\n")
    status, out, err = _signalled(hatch_venv, home, _env(tmp_path), signal.SIGTERM, prelude)
    assert (status, out, err) == (3, "host handler 15\n", "")
    reports = _reports(tmp_path)
    assert [r["trigger"] for r in reports] == ["signal"] and _total(reports) == 2


def test_ignored_signal_stays_ignored(hatch_venv, home, tmp_path):
    prelude = "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    code = WAIT_FOR_SIGNAL.format(prelude=prelude).replace("time.sleep(60)", (
        "print(signal.getsignal(signal.SIGTERM) is signal.SIG_IGN,"
        " signal.getsignal(signal.SIGCHLD) is signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL)"))
    proc = hatch_venv.run(code, home, env=_env(tmp_path), check=True)
    assert proc.stdout.splitlines()[1] == "True True"


def test_only_term_int_hup_are_trapped_and_subprocess_sends_nothing(hatch_venv, home, tmp_path):
    code = ("import signal, subprocess, sys, sample_hatch\n"
            "sample_hatch.add(1, 2)\n"
            "subprocess.run([sys.executable, '-c', 'pass'])\n"
            "trapped = [s.name for s in signal.Signals if callable(signal.getsignal(s))"
            " and getattr(signal.getsignal(s), '__module__', '') == 'telly_autoinst.pipeline']\n"
            "print(sorted(trapped))\n")
    proc = hatch_venv.run(code, home, env=_env(tmp_path), check=True)
    assert proc.stdout == "['SIGHUP', 'SIGINT', 'SIGTERM']\n"
    assert [r["trigger"] for r in _reports(tmp_path)] == ["exit"]


def test_exit_signal_only(hatch_venv, home, tmp_path):
    code = ("import signal, sample_hatch\nsample_hatch.add(1, 2)\n"
            "print(signal.getsignal(signal.SIGTERM) is signal.SIG_DFL,"
            " signal.getsignal(signal.SIGINT) is signal.default_int_handler)")
    proc = hatch_venv.run(code, home, env=_env(tmp_path, TELLY_EXIT_SIGNAL_ONLY="1", TELLY_TIMER="1",
                                          TELLY_TIMER_INTERVAL_SEC="0.1"), check=True)
    assert proc.stdout == "True True\n"
    assert [r["trigger"] for r in _reports(tmp_path)] == ["exit"]
    status, _, _ = _signalled(hatch_venv, home, _env(tmp_path / "b", TELLY_EXIT_SIGNAL_ONLY="1"), signal.SIGTERM)
    assert status == -signal.SIGTERM and _reports(tmp_path / "b") == []


def test_timer(hatch_venv, home, tmp_path):
    # No assumption about how fast this machine runs: the program waits until the timer has
    # reported twice, and its last call is made by an atexit handler registered after ours (so
    # it runs just before our exit flush): the exit report always has something to carry.
    code = ("import atexit, glob, os, sys, time, threading, sample_hatch\n"
            "for _ in range(30):\n"
            "    sample_hatch.add(1, 2); time.sleep(0.05)\n"
            "deadline = time.monotonic() + 60\n"
            "while len(glob.glob(os.path.join(sys.argv[1], '*.json'))) < 2 and time.monotonic() < deadline:\n"
            "    time.sleep(0.05)\n"
            "atexit.register(sample_hatch.add, 1, 2)\n"
            "print(sorted(t.name for t in threading.enumerate() if t.daemon))\n")
    env = _env(tmp_path, TELLY_TIMER="1", TELLY_TIMER_INTERVAL_SEC="0.3")
    proc = hatch_venv.run(["-c", code, str(tmp_path / "out")], home, env=env, check=True)
    assert proc.stdout == "['telly_autoinst-timer']\n"
    reports = _reports(tmp_path)
    triggers = [r["trigger"] for r in reports]
    assert triggers.count("timer") >= 2
    assert triggers[-1] == "exit"
    assert _total(reports) == 31


def test_fork_child_reports_its_own_counts(hatch_venv, home, tmp_path):
    code = ("import os, sys, sample_hatch\n"
            "sample_hatch.add(1, 2); sample_hatch.add(1, 2)\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    for _ in range(3): sample_hatch.add(1, 2)\n"
            "    sys.exit(0)\n"
            "os.waitpid(pid, 0)\n"
            "sample_hatch.add(1, 2)\n")
    hatch_venv.run(code, home, env=_env(tmp_path), check=True)
    reports = _reports(tmp_path)
    assert sorted((r["trigger"], r["stats"]["sample_hatch.add"]) for r in reports) == [("exit", 3), ("fork", 3)]


def test_os_exit_child_reports_nothing_unless_flushed(hatch_venv, home, tmp_path):
    code = ("import os, sample_hatch, telly_autoinst\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    sample_hatch.add(1, 2)\n"
            "    if os.environ.get('FLUSH'): telly_autoinst.flush()\n"
            "    os._exit(0)\n"
            "os.waitpid(pid, 0)\n")
    hatch_venv.run(code, home, env=_env(tmp_path), check=True)
    assert _reports(tmp_path) == []
    hatch_venv.run(code, home, env=_env(tmp_path, FLUSH="1"), check=True)
    assert [(r["trigger"], r["stats"]) for r in _reports(tmp_path)] == [("manual", {"sample_hatch.add": 1})]


MP_PROGRAM = """
import multiprocessing, sys
import sample_hatch

def work(n):
    for _ in range(n):
        sample_hatch.add(1, 2)
    return n

if __name__ == "__main__":
    ctx = multiprocessing.get_context(sys.argv[1])
    sample_hatch.add(0, 0)
    procs = [ctx.Process(target=work, args=(4,)) for _ in range(2)]
    for p in procs: p.start()
    for p in procs: p.join()
    with ctx.Pool(2) as pool:
        print(sum(pool.map(work, [5, 5, 5])))
        if sys.argv[2:] == ["close"]:
            pool.close()
            pool.join()
"""


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_multiprocessing_workers_report_once(hatch_venv, home, tmp_path, method):
    (home / "mp_prog.py").write_text(MP_PROGRAM)
    proc = hatch_venv.run(["mp_prog.py", method, "close"], home, env=_env(tmp_path), check=True)
    assert proc.stdout == "15\n"
    reports = _reports(tmp_path)
    # Parent 1 + Process workers 2 x 4 + Pool workers 15, each worker reporting as it leaves.
    assert _total(reports) == 1 + 8 + 15
    assert len(reports) >= 4 and "signal" not in [r["trigger"] for r in reports]


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_pool_terminate_never_hangs(hatch_venv, home, tmp_path, method):
    # `with Pool()` ends with terminate(): SIGTERM to workers that may be entering a blocking
    # wait. Workers carry no handler of ours, so they die as they would without the hook.
    (home / "mp_prog.py").write_text(MP_PROGRAM)
    code = ("import runpy, sys\n"
            "sys.argv = ['mp_prog.py', sys.argv[1]]\n"
            "for _ in range(10):\n"
            "    runpy.run_path('mp_prog.py', run_name='__main__')\n")
    proc = hatch_venv.run(["-c", code, method], home, env=_env(tmp_path), check=True, timeout=300)
    assert proc.stdout == "15\n" * 10
    assert "signal" not in [r["trigger"] for r in _reports(tmp_path)]


@pytest.mark.cross_python
@pytest.mark.parametrize("version", ["3.9", "3.13"])
def test_oldest_and_newest_python(venvs, sample_wheels, home, tmp_path, version):
    from tests.support.venvs import find_python

    python = find_python(version)
    if python is None:
        pytest.skip(f"Python {version} is not installed")
    venv = venvs.get(python=python, extra=[sample_wheels["pkg_hatch"]])
    status, _, _ = _signalled(venv, home, _env(tmp_path / "signal"), signal.SIGTERM)
    assert status == -signal.SIGTERM
    assert [r["trigger"] for r in _reports(tmp_path / "signal")] == ["signal"]
    (home / "mp_prog.py").write_text(MP_PROGRAM)
    for method in ("fork", "spawn"):
        out = tmp_path / method
        assert venv.run(["mp_prog.py", method, "close"], home, env=_env(out), check=True).stdout == "15\n"
        assert _total(_reports(out)) == 1 + 8 + 15
