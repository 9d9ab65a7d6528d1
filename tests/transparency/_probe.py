"""Pytest plugin loaded into a subject's test run: records which copy of the subject was imported.

The harness copies this file into a directory of its own and loads it with ``-p`` through
PYTHONPATH, so nothing else of this repository is importable inside the subject's run.
"""

import json
import os
import sys


def pytest_sessionfinish(session):
    out = os.environ.get("TRANSPARENCY_PROBE_OUT")
    name = os.environ.get("TRANSPARENCY_SUBJECT")
    if not out or not name:
        return
    module = sys.modules.get(name)
    record = {
        "module_file": getattr(module, "__file__", None),
        "sys_path": sys.path,
    }
    with open(out, "w") as fh:
        json.dump(record, fh)
