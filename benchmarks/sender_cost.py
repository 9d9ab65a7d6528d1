"""The detached sender's CPU per host exit, over 100 runs of a short watched program.

A host never waits for its sender, so ``wait4`` on the host (the other process rows) leaves the
sender out; yet on a busy machine, or for a CLI run hundreds of times a day, the sender is where
the hook's cost goes. So the runs happen under a parent that is the **subreaper** of its
descendants (``prctl(PR_SET_CHILD_SUBREAPER)``): a sender the host leaves behind is re-parented
to it, and once every one has been reaped, ``getrusage(RUSAGE_CHILDREN)`` holds the CPU of the
hosts and of all their senders. Each host's own CPU comes from its ``wait4``; the rest is the
senders'. The parent is a separate process (``python -m benchmarks.sender_cost --child``), so the
suite's own process never becomes a subreaper.

The program is the click program of the whole-run rows (``benchmarks/_packages.py``), watched
(``TELLY_AUTOINST_PACKAGES=click``), in the hooked venv, reporting to a real collector stand-in
on 127.0.0.1 that accepts every report. After the 100th run, one more sender is started as a
host would start it, so every queued report has left before the figures are read (the child
checks the counts that arrived).
Two variants, each from an empty spool:

* **as shipped**: a host starts a sender only when none took the spool in the last
  ``SENDER_INTERVAL_SEC`` (60 s), and the sender merges the queued counts of one user and day;
* **a sender at every exit**: the last sender's stamp is made old before each run, so every
  exit starts one (what the client did before, with this sender), for comparison.

Run alone: ``python -m benchmarks --only sender_cost [--quick] [--python 3.11]``.
"""

import json
import os
import subprocess
import sys

from benchmarks import _table
from benchmarks._measure import become_subreaper, children_cpu, reap_all, run_hosts
from benchmarks._packages import CLICK_PROGRAM as PROGRAM
from benchmarks._setup import Lab, per_python, script
from tests.support.venvs import find_python

VERSIONS = ("3.11",)
RUNS = 100


def _child(python, site_packages, program, home, runs, every_exit):
    """The measurement, in the subreaper process: a dict of figures, printed as JSON."""
    from telly_autoinst import pipeline
    from tests.support.loopback import Loopback
    from tests.support.venvs import clean_env

    become_subreaper()
    spool = os.path.join(home, ".cache", "telly_autoinst", "spool")
    stamp = os.path.join(spool, ".sender.started")
    with Loopback([200]) as server:
        env = clean_env(home, TELLY_AUTOINST_PACKAGES="click", TELLY_HTTP_SERVER=server.url)
        reap_all()
        before = children_cpu()
        hosts, wall = run_hosts([python, program], env, runs,
                                (stamp, pipeline.SENDER_INTERVAL_SEC) if every_exit else None)
        # Reap every sender the hosts started (re-parented here), then send what is still queued
        # with one more sender, started as a host starts it.
        reap_all()
        senders_started = server.attempts
        launch = (f"import sys;sys.path.append({site_packages!r});"
                  f"from telly_autoinst.sender import main;main([{spool!r}, '3.0'], detached=True)")
        pid = os.posix_spawn(python, [python, "-I", "-S", "-c", launch], env)
        os.waitpid(pid, 0)
        reap_all()
        total = children_cpu() - before
        received = list(server.received)
    calls = sum(json.loads(r.body)["stats"].get("click.utils.echo", 0) for r in received)
    return {"runs": runs, "hosts_cpu": hosts, "senders_cpu": total - hosts, "wall": wall,
            "requests": len(received), "requests_before_final_sender": senders_started,
            "echo_calls": calls, "left": sorted(n for n in os.listdir(spool) if n.endswith((".counts", ".report")))}


def _measure(lab, pair, program, every_exit, runs):
    home = lab.home()
    # Warm the caches (index, rewritten code) as after a program's first run, in this home, with
    # file storage: no spool entry and no sender outside the measurement.
    warm_env = lab.env(home, TELLY_AUTOINST_PACKAGES="click", TELLY_STORAGE_TYPE="file",
                       TELLY_LOCAL_STORAGE_PATH=str(home / "warm-up"))
    for _ in range(2):
        warm = subprocess.run([pair.hooked.python, program], env=warm_env, capture_output=True, check=False)
        if warm.returncode != 0:
            raise RuntimeError(f"warm-up failed: {warm.stderr[-300:]!r}")
    argv = [sys.executable, "-m", "benchmarks.sender_cost", "--child", pair.hooked.python,
            str(pair.hooked.site_packages), program, str(home), str(runs), "1" if every_exit else "0"]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run(argv, cwd=root, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"the subreaper child failed: {proc.stderr[-500:]!r}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _per_python(version, quick, base):
    python = find_python(version)
    if python is None:
        return [_table.missing(f"sender cost, Python {version}", "", "", f"Python {version} is not installed")]
    lab = Lab(base / f"py{version}", python=python)
    try:
        pair = lab.imports
        program = script(lab, "click_program.py", PROGRAM)
        runs = 30 if quick else RUNS
        rows = []
        for every_exit, name, target in ((False, "as shipped (a sender at most once a minute, queued counts "
                                                 "merged)", "<= 25"),
                                         (True, "a sender at every exit, for comparison", "-")):
            got = _measure(lab, pair, program, every_exit, runs)
            per_exit = got["senders_cpu"] / got["runs"] * 1e3
            complete = got["echo_calls"] == 2 * got["runs"] and not got["left"]
            detail = (f"{got['runs']} runs in {got['wall']:.1f} s; senders {got['senders_cpu'] * 1e3:.0f} ms CPU in "
                      f"all (hosts {got['hosts_cpu'] * 1e3 / got['runs']:.1f} ms each); {got['requests']} reports "
                      f"received ({got['requests_before_final_sender']} before the final sender) carrying "
                      f"{got['echo_calls']} of {2 * got['runs']} counted calls; "
                      f"{len(got['left'])} entries left in the spool")
            rows.append(_table.row(f"detached sender, CPU per host exit over {got['runs']} runs of the click "
                                   f"program, Python {version}: {name}", "ms of sender CPU per host exit",
                                   round(per_exit, 2), target,
                                   detail if complete else detail + " (INCOMPLETE: reports missing)",
                                   met=None if target == "-" else (_table.meets(per_exit, target) and complete)))
        return rows
    finally:
        lab.close()


def run(quick=False, lab=None):
    """The rows for every installed Python of VERSIONS."""
    return per_python(VERSIONS, lab, "sender_cost", lambda version, base: _per_python(version, quick, base))


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    python_, site_, program_, home_, runs_, every_ = sys.argv[2:8]
    print(json.dumps(_child(python_, site_, program_, home_, int(runs_), every_ == "1")))
