"""The Node client (node/): one counted call, and start-up with the hook.

* Per call: ``node node/benchmarks/call_overhead.js --json``, the overhead of a counted call over
  a plain one as a ratio to a bare Proxy pass-through's (functions, methods, construction, and a
  CommonJS ``pkg.fn()`` property read plus call), measured inside Node in interleaved rounds.
* Start-up: ``node -e 0`` in a directory whose node_modules holds a watched package (not loaded),
  with and without ``--require telly-autoinst/register``, interleaved, medians of CPU time (user
  + system of all threads; wall time on this shared machine mostly measures the other tenants),
  once with a CommonJS package and once with an ES module package, whose loader hooks a CommonJS
  program registers only once its code may import; with the ES module package, an empty ES module
  program (``node main.mjs``) too, which has them from the start.
  An empty ``--require`` preload runs beside them: what Node itself charges for preloading a
  file, which no hook loaded that way can go under.
* Exit: a short program's wall time with the hook on against the kill switch.
* The detached sender's CPU per host exit, over 100 runs of that program reporting to a collector
  stand-in on 127.0.0.1, measured as ``sender_cost`` measures the Python sender: the runs happen
  in a subreaper child (``python -m benchmarks.node_client --child``), so the senders the hosts
  leave behind are reaped there and their CPU counted; after the last run one more sender drains
  what is queued, as the first exit after the interval would. As shipped (a sender only when none
  took the spool in the last minute) and with a sender at every exit, for comparison.

Needs ``node`` on PATH; without it the rows say so.
"""

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import _table
from benchmarks._measure import become_subreaper, children_cpu, reap_all, run_hosts
from telly_autoinst._contract import RETRY_SENDER_INTERVAL_SEC

ROOT = Path(__file__).resolve().parents[1]
NODE_DIR = ROOT / "node"


def _per_call(node, quick):
    args = [node, str(NODE_DIR / "benchmarks" / "call_overhead.js"), "--json"] + (["--quick"] if quick else [])
    rows = json.loads(subprocess.run(args, check=True, capture_output=True, text=True, timeout=600).stdout)
    return [_table.row(r["case"], r["measured"], r["value"], r["target"], r["detail"]) for r in rows]


def _timed(args, cwd, env):
    """(wall seconds, CPU seconds of the child: user + system, every thread) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, env=env, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _startup(node, quick, esm):
    kind = "an ES module package" if esm else "a CommonJS package"
    with tempfile.TemporaryDirectory(prefix="telly-node-bench-") as work:
        pkg = Path(work) / "node_modules" / "watched"
        pkg.mkdir(parents=True)
        manifest = {"name": "watched", "version": "1.0.0", "telly": {"project_id": "bench", "endpoint": "http://127.0.0.1:9"}}
        if esm:
            manifest["type"] = "module"
        (pkg / "package.json").write_text(json.dumps(manifest))
        (pkg / "index.js").write_text("export const f = () => 1;\n" if esm else "exports.f = () => 1;\n")
        env = {"PATH": "/usr/bin:/bin", "HOME": work, "TELLY_STORAGE_TYPE": "file",
               "TELLY_LOCAL_STORAGE_PATH": str(Path(work) / "out")}
        # The floor of any hook that Node loads with --require: a preload that does nothing.
        empty = Path(work) / "empty-preload.js"
        empty.write_text("")
        register = str(NODE_DIR / "register.js")
        variants = {"bare": [node, "-e", "0"], "hooked": [node, "--require", register, "-e", "0"],
                    "empty": [node, "--require", str(empty), "-e", "0"]}
        if esm:
            # An ES module program has the loader hooks from its start; `node -e 0` is CommonJS,
            # which registers them only once its code may import.
            (Path(work) / "main.mjs").write_text("")
            variants.update({"bare-mjs": [node, "main.mjs"], "hooked-mjs": [node, "--require", register, "main.mjs"]})
        rounds = 7 if quick else 25
        samples = {label: ([], []) for label in variants}
        for args in variants.values():  # warm the file cache and build the hook's index, untimed
            subprocess.run(args, cwd=work, env=env, check=True)
        for _ in range(rounds):
            for label, args in variants.items():
                wall, cpu = _timed(args, work, env)
                samples[label][0].append(wall)
                samples[label][1].append(cpu)
        wall = {label: statistics.median(w) * 1000 for label, (w, _) in samples.items()}
        cpu = {label: statistics.median(c) * 1000 for label, (_, c) in samples.items()}
    rows = [_table.row(
        f"Node start, `node -e 0`, hook on, {kind} watched, not loaded",
        "ratio of CPU time (user + system) to the same start without the hook", cpu["hooked"] / cpu["bare"], "<= 1.05",
        f"medians of {rounds} interleaved runs: CPU {cpu['bare']:.0f} ms bare, {cpu['hooked']:.0f} ms hooked, "
        f"{cpu['empty']:.0f} ms with an empty --require preload; "
        f"wall {wall['bare']:.0f} ms bare, {wall['hooked']:.0f} ms hooked")]
    if esm:
        rows.append(_table.row(
            f"Node start, an empty ES module program (`node main.mjs`), hook on, {kind} watched, not loaded",
            "ratio of CPU time (user + system) to the same start without the hook", cpu["hooked-mjs"] / cpu["bare-mjs"],
            "<= 1.05", f"medians of {rounds} interleaved runs: CPU {cpu['bare-mjs']:.0f} ms bare, "
            f"{cpu['hooked-mjs']:.0f} ms hooked; "
            f"wall {wall['bare-mjs']:.0f} ms bare, {wall['hooked-mjs']:.0f} ms hooked"))
    else:
        rows.append(_table.row(
            "Node start, `node -e 0` with an empty --require preload (the floor under any hook Node preloads)",
            "ratio of CPU time (user + system) to the same start without it", cpu["empty"] / cpu["bare"], "-",
            f"medians of {rounds} interleaved runs, the same runs as the row above: CPU {cpu['bare']:.0f} ms bare, "
            f"{cpu['empty']:.0f} ms with the empty preload"))
    return rows


CALLS = 1000  # counted calls per run of the program


def _program(work, endpoint):
    """A watched CommonJS package and a program calling it CALLS times, in ``work``."""
    pkg = Path(work) / "node_modules" / "watched"
    pkg.mkdir(parents=True)
    (pkg / "package.json").write_text(json.dumps({"name": "watched", "version": "1.0.0",
                                                  "telly": {"project_id": "bench", "endpoint": endpoint}}))
    (pkg / "index.js").write_text("exports.f = () => 1;\n")
    (Path(work) / "app.js").write_text(f"const w = require('watched'); for (let i = 0; i < {CALLS}; i++) w.f();\n")


def _exit_handoff(node, quick):
    """Wall time of a program that loads and calls a watched package, hook on vs. kill switch on:
    what loading the client, the first watched load and the exit add (the counts spooled, a
    detached sender spawned when one is due; endpoint unreachable)."""
    with tempfile.TemporaryDirectory(prefix="telly-node-bench-") as work:
        _program(work, "http://127.0.0.1:9")
        base = {"PATH": "/usr/bin:/bin", "HOME": work, "CI": "false"}
        args = [node, "--require", str(NODE_DIR / "register.js"), "app.js"]
        variants = {"off": dict(base, TELLY_DISABLE="1"), "on": base}
        rounds = 7 if quick else 25
        samples = {label: ([], []) for label in variants}
        for env in variants.values():
            subprocess.run(args, cwd=work, env=env, check=True)
        for _ in range(rounds):
            for label, env in variants.items():
                wall, cpu = _timed(args, work, env)
                samples[label][0].append(wall)
                samples[label][1].append(cpu)
        ms = {label: statistics.median(w) * 1000 for label, (w, _) in samples.items()}
        cpu = {label: statistics.median(c) * 1000 for label, (_, c) in samples.items()}
    return _table.row(
        "Node process exit, report pending, endpoint unreachable (default http_async)",
        "extra wall time over the same program with TELLY_DISABLE=1 (ms)", ms["on"] - ms["off"], "<= 5",
        f"medians of {rounds} interleaved runs: wall {ms['off']:.1f} ms off, {ms['on']:.1f} ms on; "
        f"CPU {cpu['off']:.0f} ms off, {cpu['on']:.0f} ms on (the detached sender's own CPU not included); "
        "includes loading the client, "
        "the first watched load, wrapping, the counts written to the spool and, at most once a minute, "
        "spawning the detached sender")


def _child(node, work, runs, every_exit):
    """The sender measurement, in the subreaper process: a dict of figures, printed as JSON."""
    from tests.support.loopback import Loopback

    become_subreaper()
    spool = os.path.join(work, ".cache", "telly_autoinst", "spool")
    stamp = os.path.join(spool, ".sender-node.started")
    with Loopback([200]) as server:
        _program(work, server.url)
        env = {"PATH": "/usr/bin:/bin", "HOME": work, "CI": "false"}
        argv = [node, "--require", str(NODE_DIR / "register.js"), "app.js"]
        os.chdir(work)  # the hosts' directory: this process is the measurement's own
        reap_all()
        before = children_cpu()
        hosts, wall = run_hosts(argv, env, runs, (stamp, RETRY_SENDER_INTERVAL_SEC) if every_exit else None)
        reap_all()
        before_final = len(server.received)
        # What is still queued leaves with one more sender, started as the first exit after the
        # interval starts one.
        final = subprocess.run([node, str(NODE_DIR / "lib" / "sender.js"), spool, "3", "120"], env=env, cwd="/",
                               check=False)
        reap_all()
        total = children_cpu() - before
        received = list(server.received)
    calls = sum(json.loads(r.body)["stats"].get("watched.f", 0) for r in received)
    return {"runs": runs, "hosts_cpu": hosts, "senders_cpu": total - hosts, "wall": wall, "final": final.returncode,
            "requests": len(received), "requests_before_final_sender": before_final, "calls": calls,
            "left": sorted(n for n in os.listdir(spool) if n.endswith(".report"))}


def _sender_cost(node, quick):
    runs = 30 if quick else 100
    rows = []
    for every_exit, name, target in ((False, "as shipped (a sender at most once a minute)", "<= 25"),
                                     (True, "a sender at every exit, for comparison", "-")):
        with tempfile.TemporaryDirectory(prefix="telly-node-bench-") as work:
            argv = [sys.executable, "-m", "benchmarks.node_client", "--child", node, work, str(runs),
                    "1" if every_exit else "0"]
            proc = subprocess.run(argv, cwd=str(ROOT), capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"the subreaper child failed: {proc.stderr[-500:]!r}")
            got = json.loads(proc.stdout.strip().splitlines()[-1])
        per_exit = got["senders_cpu"] / got["runs"] * 1e3
        complete = got["calls"] == CALLS * got["runs"] and not got["left"]
        detail = (f"{got['runs']} runs in {got['wall']:.1f} s; senders {got['senders_cpu'] * 1e3:.0f} ms CPU in all "
                  f"(hosts {got['hosts_cpu'] * 1e3 / got['runs']:.1f} ms each); {got['requests']} reports received "
                  f"({got['requests_before_final_sender']} before the final sender) carrying {got['calls']} of "
                  f"{CALLS * got['runs']} counted calls; {len(got['left'])} reports left in the spool")
        rows.append(_table.row(f"Node detached sender, CPU per host exit over {got['runs']} runs of a short program: "
                               f"{name}", "ms of sender CPU per host exit", round(per_exit, 2), target,
                               detail if complete else detail + " (INCOMPLETE: reports missing)",
                               met=None if target == "-" else (_table.meets(per_exit, target) and complete)))
    return rows


def run(quick=False):
    node = shutil.which("node")
    if node is None:
        return [_table.missing("one counted call, Node", "overhead ratio to a bare Proxy", "<= 1.10", "node not found")]
    return (_per_call(node, quick) + _startup(node, quick, esm=False) + _startup(node, quick, esm=True)
            + [_exit_handoff(node, quick)] + _sender_cost(node, quick))


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    node_, work_, runs_, every_ = sys.argv[2:6]
    print(json.dumps(_child(node_, work_, int(runs_), every_ == "1")))
elif __name__ == "__main__":
    for item in run(quick=True):
        print(item)
