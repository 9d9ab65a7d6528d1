"""Command line: ``python -m benchmarks [--quick] [--only startup,threads] [--json PATH]``.

``python -m benchmarks --docs [--check]`` runs nothing: it writes the documentation's performance
tables from the stored results (``--check``: exits 1 when the page is not current; CI runs it).

Runs every case (building the venvs they need in a temporary directory), prints the table of
figures against their targets, and writes the same rows as JSON. Exits 0 even when a target is
missed: the table says so; a benchmark is a measurement, not a test.
"""

import argparse
import datetime
import importlib
import inspect
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import _pages, _table
from benchmarks._setup import Lab
from tests.support.venvs import find_python, point_home_at

# (module, rows to print when the module does not exist yet: (case, measured, target)).
CASES = (
    ("engine_costs", ()),
    ("engine_floor", ()),
    ("sender_cost", ()),
    ("startup", ()),
    ("imports", ()),
    ("call_overhead", (
        ("one counted call, wrapt engine: function, method, classmethod",
         "overhead ratio to a bare wrapt.FunctionWrapper", "<= 1.10"),
        ("one counted call, sys.monitoring engine (3.12+)", "overhead ratio to a bare wrapt.FunctionWrapper",
         "<= 0.35"),
    )),
    ("node_client", (
        ("one counted call, Node client", "overhead ratio to a bare Proxy pass-through", "<= 1.10"),
    )),
    ("telly_original", ()),
    ("threads", ()),
    ("exit_delay", (
        ("process exit, report pending, endpoint unreachable", "extra wall time over no hook (ms)", "<= 5"),
    )),
    ("collector_load", (
        ("collector ingestion, SQLite", "reports/s at zero errors", ">= 10000"),
        ("collector ingestion, PostgreSQL", "reports/s at zero errors", ">= 5000"),
        ("collector ingestion, p99 latency at half rate", "ms", "<= 50"),
        ("dashboard JSON API, 30 days, 1,000,000 reports", "time to answer (ms)", "<= 300"),
    )),
)

RESULTS = Path(__file__).resolve().parent / "results"


def _run_case(name, placeholders, quick, lab):
    """The rows of one case module; placeholder rows when it is missing, an error row when it fails."""
    try:
        module = importlib.import_module(f"benchmarks.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"benchmarks.{name}":
            raise
        return [_table.missing(case, measured, target, f"not yet available (benchmarks/{name}.py missing)")
                for case, measured, target in placeholders]
    kwargs = {}
    params = inspect.signature(module.run).parameters
    if "quick" in params:
        kwargs["quick"] = quick
    if "lab" in params:
        kwargs["lab"] = lab
    try:
        rows = module.run(**kwargs)
    # One broken case must not lose the others' figures (SystemExit too: a case may exit when a
    # tool it needs is missing).
    except (Exception, SystemExit) as exc:
        return [_table.missing(name, "", "", f"failed: {type(exc).__name__}: {exc}")]
    return [_table.normalize(item, name) for item in rows or []]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds: a rough table in a few minutes")
    parser.add_argument("--only", help="comma-separated case modules: " + ",".join(n for n, _ in CASES))
    parser.add_argument("--json", dest="json_out",
                        help="where to write the rows (default: benchmarks/results/CASES-DATE.json, a new file: "
                             "a run never overwrites another's figures)")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    parser.add_argument("--python", help="interpreter version for the venv-based cases, e.g. 3.13 (default: this one)")
    parser.add_argument("--engine", help="TELLY_ENGINE for the hooked children: rewrite, monitoring or wrapt "
                                         "(default: none set, so the client's default engine, rewrite)")
    parser.add_argument("--work", help="keep venvs and outputs in this directory (default: a temporary one)")
    parser.add_argument("--docs", action="store_true",
                        help="run nothing: write docs/performance-tables.md from benchmarks/results/*.json")
    parser.add_argument("--check", action="store_true", help="with --docs: change nothing, exit 1 if it is stale")
    args = parser.parse_args(argv)
    if args.docs or args.check:
        return _pages.write_or_check(args.check)

    selected = [c for c in CASES if not args.only or c[0] in args.only.split(",")]
    python = find_python(args.python) if args.python else None
    if args.python and python is None:
        parser.error(f"python {args.python} is not installed")
    # A home of the run's own for every child (uv, pip, and the hooked interpreters of venv setup,
    # whose hook would write its index into the user's cache): the user's home is left as it was.
    home = tempfile.mkdtemp(prefix="telly-bench-home-")
    point_home_at(home, os.environ.__setitem__)
    lab = Lab(args.work, python=python, engine=args.engine)
    rows, durations = [], {}
    load_before = os.getloadavg()
    try:
        for name, placeholders in selected:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            start = time.perf_counter()
            rows += _run_case(name, placeholders, args.quick, lab)
            durations[name] = round(time.perf_counter() - start, 1)
    finally:
        lab.close()
        shutil.rmtree(home, ignore_errors=True)
    print(f"Python {args.python or platform.python_version()}, engine {args.engine or 'default'} (venv cases), "
          f"{os.cpu_count()} CPUs, load average {load_before[0]:.1f} at start{', quick' if args.quick else ''}\n")
    print(_table.format_table(rows))
    if args.markdown:
        print("\n" + _table.format_markdown(rows))
    record = {
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "python": args.python or platform.python_version(),
        "engine": args.engine or "default",
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_before_after": [load_before, os.getloadavg()],
        "durations_s": durations,
        "rows": rows,
    }
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d-%H%M")
    out = Path(args.json_out or RESULTS / f"{'-'.join(durations) if args.only else 'all'}-{stamp}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(f"\nwrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
