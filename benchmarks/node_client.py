"""The Node client (node/): one counted call, and start-up with the hook.

* Per call: ``node node/benchmarks/call_overhead.js --json``, the overhead of a counted call over
  a plain one as a ratio to a bare Proxy pass-through's (functions, methods, construction, and a
  CommonJS ``pkg.fn()`` property read plus call), measured inside Node in interleaved rounds.
* Start-up: ``node -e 0`` in a directory whose node_modules holds a watched package (not loaded),
  with and without ``--require telly-autoinst/register``, interleaved, medians of CPU time (user
  + system of all threads; wall time on this shared machine mostly measures the other tenants),
  once with a CommonJS package and once with an ES module package, which needs the loader hooks.

Needs ``node`` on PATH; without it the rows say so.
"""

import json
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks import _table

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
    kind = "an ES module package (loader hooks needed)" if esm else "a CommonJS package"
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
        variants = {"bare": [node, "-e", "0"], "hooked": [node, "--require", str(NODE_DIR / "register.js"), "-e", "0"]}
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
    return _table.row(
        f"Node start, `node -e 0`, hook on, {kind} watched, not loaded",
        "ratio of CPU time (user + system) to the same start without the hook", cpu["hooked"] / cpu["bare"], "<= 1.05",
        f"medians of {rounds} interleaved runs: CPU {cpu['bare']:.0f} ms bare, {cpu['hooked']:.0f} ms hooked; "
        f"wall {wall['bare']:.0f} ms bare, {wall['hooked']:.0f} ms hooked")


def _exit_handoff(node, quick):
    """Wall time of a program that loads and calls a watched package, hook on vs. kill switch on:
    what the exit path adds (report built, spooled, detached sender spawned; endpoint unreachable)."""
    with tempfile.TemporaryDirectory(prefix="telly-node-bench-") as work:
        pkg = Path(work) / "node_modules" / "watched"
        pkg.mkdir(parents=True)
        (pkg / "package.json").write_text(json.dumps({"name": "watched", "version": "1.0.0",
                                                      "telly": {"project_id": "bench", "endpoint": "http://127.0.0.1:9"}}))
        (pkg / "index.js").write_text("exports.f = () => 1;\n")
        (Path(work) / "app.js").write_text("const w = require('watched'); for (let i = 0; i < 1000; i++) w.f();\n")
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
        "wrapping, the report, the spool write and spawning the detached sender")


def run(quick=False):
    node = shutil.which("node")
    if node is None:
        return [_table.missing("one counted call, Node", "overhead ratio to a bare Proxy", "<= 1.10", "node not found")]
    return _per_call(node, quick) + [_startup(node, quick, esm=False), _startup(node, quick, esm=True),
                                     _exit_handoff(node, quick)]


if __name__ == "__main__":
    for item in run(quick=True):
        print(item)
