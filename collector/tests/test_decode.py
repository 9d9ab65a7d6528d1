"""The msgspec fast path accepts only what ingest.py's validator accepts, and keeps the same Contribution."""

import copy
import json

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings

from collector.tests.support import (
    PLAINTEXT_REPORT,
    TRICKY,
    VALID_REPORT,
    hand_valid,
    json_values,
    key_paths,
    make_report,
)
from telly_autoinst_collector import ingest
from telly_autoinst_collector.decode import fast_contribution_v1


def _agrees(doc):
    """True when the fast path took ``doc``; fails if it took one the validator refuses."""
    body = json.dumps(doc).encode()
    try:
        fast = fast_contribution_v1(body)
    except ingest.Rejected as exc:  # a valid report with a string that cannot be stored
        assert hand_valid(doc) and exc.code == "unstorable_string"
        return True
    if fast is None:
        return False
    assert hand_valid(doc), doc
    assert fast == ingest.contribution_v1(doc)
    return True


def test_valid_reports_take_the_fast_path():
    assert _agrees(VALID_REPORT)
    assert _agrees(make_report("eu-x", user="u", stats={f"m.f{i}": i + 1 for i in range(500)}))
    node = copy.deepcopy(VALID_REPORT)
    node["client"] = {"name": "telly-autoinst-node", "version": "0.1.0", "engine": "cjs+esm"}
    node["level2"] = None
    assert _agrees(node)


def test_the_fast_path_is_stricter_never_looser():
    # Each is valid for the schema (or not) in a way msgspec reads differently: the long way decides.
    for report_id in ("0" * 32 + "\n", "0" * 31):
        assert not _agrees(dict(VALID_REPORT, report_id=report_id))
    assert not _agrees(dict(VALID_REPORT, schema_version=1.0))  # valid, but msgspec wants 1
    assert hand_valid(dict(VALID_REPORT, schema_version=1.0))
    # A key given twice: json.loads keeps the last value, and so must the fast path (or refuse).
    duplicated = json.dumps(VALID_REPORT)[:-1] + ', "package": {"name": "demo", "version": "9.9"}}'
    fast = fast_contribution_v1(duplicated.encode())
    assert fast is None or fast == ingest.contribution_v1(json.loads(duplicated))


def test_the_fast_path_agrees_on_every_single_change():
    taken = 0
    for path in [p for p in key_paths(VALID_REPORT) if p]:
        for value in [*TRICKY, "delete"]:
            doc = copy.deepcopy(VALID_REPORT)
            parent = doc
            for key in path[:-1]:
                parent = parent[key]
            if value == "delete":
                del parent[path[-1]]
            else:
                parent[path[-1]] = copy.deepcopy(value)
            taken += _agrees(doc)
    assert taken > 50


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_fast_path_agrees_on_random_changes(data):
    doc = copy.deepcopy(VALID_REPORT)
    for _ in range(data.draw(st.integers(1, 3))):
        candidates = [p for p in key_paths(doc) if p]
        path = data.draw(st.sampled_from(candidates)) if candidates else ()
        if not path:
            break
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()):
            parent[path[-1]] = data.draw(json_values)
        elif isinstance(parent[path[-1]], dict):
            parent[path[-1]][data.draw(st.text(max_size=520))] = data.draw(json_values)
    _agrees(doc)


def test_plaintext_level2_takes_the_fast_path_only_as_the_schema_allows():
    assert _agrees(PLAINTEXT_REPORT)
    assert fast_contribution_v1(json.dumps(PLAINTEXT_REPORT).encode()).plaintext == PLAINTEXT_REPORT["level2_plaintext"]
    assert fast_contribution_v1(json.dumps(VALID_REPORT).encode()).plaintext is None
    # null instead of an object, or no hashes beside it: invalid, so never the fast path.
    assert not _agrees(dict(PLAINTEXT_REPORT, level2_plaintext=None))
    assert not _agrees(dict(PLAINTEXT_REPORT, level2=None))
    assert not hand_valid(dict(PLAINTEXT_REPORT, level2=None))
    taken = 0
    for path in [p for p in key_paths(PLAINTEXT_REPORT) if p and p[0] == "level2_plaintext"]:
        for value in [*TRICKY, "delete", "x" * 256, "x" * 257, "x" * 1024, "x" * 1025]:
            doc = copy.deepcopy(PLAINTEXT_REPORT)
            parent = doc
            for key in path[:-1]:
                parent = parent[key]
            if value == "delete":
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
            taken += _agrees(doc)
    assert taken > 10


def _node_engines():
    """The names Telly.js's engineOf (node/lib/control.js) can put in client.engine."""
    import re

    from tests.support.venvs import ROOT

    source = (ROOT / "node" / "lib" / "control.js").read_text()
    body = source[source.index("function engineOf("):]
    body = body[:body.index("\n}\n")]
    return {name for line in body.splitlines() if "return" in line for name in re.findall(r"'([a-z+]+)'", line)}


def test_every_engine_a_client_can_name_takes_the_fast_path():
    from telly_autoinst.engines import ENGINES

    python = set(ENGINES) - {"auto"}  # "auto" is resolved before a report is written
    node = _node_engines()
    assert "rewrite" in python and node == {"cjs", "esm", "cjs+esm"}
    for name in sorted(python | node):
        report = copy.deepcopy(VALID_REPORT)
        report["client"]["engine"] = name
        if name in node:
            report["client"]["name"] = "telly-autoinst-node"
        assert fast_contribution_v1(json.dumps(report).encode()) is not None, name
