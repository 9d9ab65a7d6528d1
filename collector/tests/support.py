"""What the collector's tests share: a valid report and its variants, and a client that posts them."""

import copy
import json
import uuid

import hypothesis.strategies as st

from telly_autoinst_collector import ingest

VALID_REPORT = {
    "schema_version": 1, "report_id": "0" * 32, "project_id": "p", "created_at": "2026-11-29T01:02:03Z",
    "trigger": "exit", "exit_signal": None,
    "client": {"name": "telly_autoinst", "version": "0.1.0", "engine": "wrapt"},
    "interpreter": {"implementation": "CPython", "version": "3.11.7", "mode": "script"},
    "platform": {"os": "Linux", "release": "6.1.0", "machine": "x86_64", "cpu_model": None, "cpu_count": 2,
                 "memory_mib": 2048, "container": False, "ci": False, "ci_vendor": None, "wsl": False},
    "package": {"name": "demo", "version": "1.0"}, "packages": {"wrapt": "1.16.0"},
    "stats": {"demo.f": 3, "demo.C.m": 1}, "level2": {"user": "a" * 64, "home": None, "machine": None, "host": None},
}


def make_report(project_id, user=None, stats=None, version="1.0", **changes):
    """A valid v1 report for ``project_id``; ``user`` is any string, hashed into a Level II id."""
    report = copy.deepcopy(VALID_REPORT)
    report.update(report_id=uuid.uuid4().hex, project_id=project_id)
    if user is not None:
        import hashlib
        report["level2"]["user"] = hashlib.sha256(str(user).encode()).hexdigest()
    if stats is not None:
        report["stats"] = stats
    report["package"]["version"] = version
    report.update(changes)
    return report


def post(url, report, **kwargs):
    import httpx

    body = report if isinstance(report, (bytes, bytearray)) else json.dumps(report).encode()
    headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
    return httpx.post(url + "/api/v1/reports", content=body, timeout=30, headers=headers, **kwargs)


def hand_valid(doc):
    try:
        ingest.validate_v1(doc)
        return True
    except ingest.Rejected:
        return False


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 70), st.integers(), st.floats(allow_nan=False), st.just(1.0),
    st.just(3.0), st.text(max_size=3), st.text(alphabet="0123456789abcdef", min_size=31, max_size=65),
    st.sampled_from(["exit", "wrapt", "monitoring", "cjs", "esm", "cjs+esm", "script", "telly_autoinst",
                     "telly-autoinst-node", "node", "", "A" * 129, "a" * 513,
                     "0" * 32, "0" * 64, "p:q.r-s_t", "bad id", "ab\u00e9"]),
)
json_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)), max_leaves=6)


def key_paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from key_paths(value, prefix + (key,))


TRICKY = [None, True, False, 0, 1, -1, 1.0, 1.5, 3.0, 64, 65, 100000, 100001, 2 ** 70, "", "x", "a" * 33,
           "0" * 32, "0" * 31, "0" * 64, "0" * 63, "G" * 64, "A" * 129, "a" * 513, "p:q.r-s_t", "bad id", [], {},
           "exit", "timer", "wrapt", "monitoring", "cjs", "esm", "cjs+esm", "script", "jupyter", "telly_autoinst",
           "telly-autoinst-node", "CPython", "node"]


PLAINTEXT_REPORT = dict(copy.deepcopy(VALID_REPORT), level2_plaintext={
    "user": "alice", "home": "/home/alice", "machine": "0" * 32, "host": None})
