"""The Node client (node/): one counted call, and start-up with the hook.

* Per call: ``node node/benchmarks/call_overhead.js --json``, the overhead of a counted call over
  a plain one as a ratio to a bare Proxy pass-through's (functions, methods, construction, and a
  CommonJS ``pkg.fn()`` property read plus call), measured inside Node in interleaved rounds.
* Start-up: ``node -e 0`` in a directory whose node_modules holds a watched package (not loaded),
  with and without ``--require telly-autoinst/register``, interleaved, medians of wall time.

Needs ``node`` on PATH; without it the rows say so.
"""

import json
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


def _startup(node, quick):
    with tempfile.TemporaryDirectory(prefix="telly-node-bench-") as work:
        pkg = Path(work) / "node_modules" / "watched"
        pkg.mkdir(parents=True)
        (pkg / "package.json").write_text(json.dumps({"name": "watched", "version": "1.0.0",
                                                      "telly": {"project_id": "bench", "endpoint": "http://127.0.0.1:9"}}))
        (pkg / "index.js").write_text("exports.f = () => 1;\n")
        env = {"PATH": "/usr/bin:/bin", "HOME": work, "TELLY_STORAGE_TYPE": "file",
               "TELLY_LOCAL_STORAGE_PATH": str(Path(work) / "out")}
        variants = {"bare": [node, "-e", "0"], "hooked": [node, "--require", str(NODE_DIR / "register.js"), "-e", "0"]}
        rounds = 7 if quick else 25
        samples = {label: [] for label in variants}
        for args in variants.values():  # warm the file cache, untimed
            subprocess.run(args, cwd=work, env=env, check=True)
        for _ in range(rounds):
            for label, args in variants.items():
                start = time.perf_counter()
                subprocess.run(args, cwd=work, env=env, check=True)
                samples[label].append(time.perf_counter() - start)
        ms = {label: statistics.median(values) * 1000 for label, values in samples.items()}
    return [_table.row(
        "Node start, `node -e 0`, hook on, one watched package installed, not loaded",
        "ratio to the same start without the hook", ms["hooked"] / ms["bare"], "<= 1.05",
        f"medians of {rounds} interleaved runs: {ms['bare']:.1f} ms bare, {ms['hooked']:.1f} ms hooked "
        "(most of the difference is module.register starting Node's loader thread)")]


def run(quick=False):
    node = shutil.which("node")
    if node is None:
        return [_table.missing("one counted call, Node", "overhead ratio to a bare Proxy", "<= 1.10", "node not found")]
    return _per_call(node, quick) + _startup(node, quick)


if __name__ == "__main__":
    for item in run(quick=True):
        print(item)
