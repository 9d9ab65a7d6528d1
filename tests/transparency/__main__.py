"""Command line: ``python -m tests.transparency [--python 3.9,3.13] [--engine auto,wrapt]``.

Prints one row per (package, python, engine) and the differences found; exits 1 when any run
was not transparent.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

from tests.support.venvs import VenvFactory, find_python
from tests.transparency.harness import SUBJECTS, Runs, format_table


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.transparency", description=__doc__)
    parser.add_argument("--python", default="%d.%d" % sys.version_info[:2],
                        help="comma-separated versions, e.g. 3.9,3.11,3.13 (default: this interpreter)")
    parser.add_argument("--engine", default="auto",
                        help="comma-separated engines: auto (the default engine), rewrite, monitoring, wrapt")
    parser.add_argument("--only", default=",".join(SUBJECTS), help="comma-separated subjects")
    parser.add_argument("--work", help="keep venvs, sdists and run outputs in this directory")
    parser.add_argument("--json", dest="json_out", help="also write the rows as JSON to this file")
    args = parser.parse_args(argv)

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="telly-transparency-"))
    runs = Runs(VenvFactory(work / "cache", work / "venvs"), work, names=args.only.split(","))
    configs = []
    for version in args.python.split(","):
        if find_python(version) is None:
            print(f"python {version}: not installed, skipped", file=sys.stderr)
            continue
        configs += [(name, version, engine) for engine in args.engine.split(",") for name in args.only.split(",")]
    for config in configs:
        runs.submit(*config)
    rows, failures = [], []
    try:
        for name, version, engine in configs:
            print(f"running {name} on {version} ({engine}) ...", file=sys.stderr, flush=True)
            result = runs.comparison(name, version, engine)
            rows.append(result.row())
            problems = result.problems()
            if problems:
                failures.append(f"{name} on {version} ({engine}):\n  " + "\n  ".join(problems))
    finally:
        runs.close()
    print(format_table(rows))
    for failure in failures:
        print("\n" + failure)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, indent=2) + "\n")
    print(f"\nwork directory: {work}", file=sys.stderr)
    return 1 if failures or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
