"""Validation: the hand-written validator accepts and rejects exactly what the JSON Schema does."""

import copy
import json

import hypothesis.strategies as st
import jsonschema
import pytest
from hypothesis import HealthCheck, assume, given, settings

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
from tests.support.venvs import ROOT

SCHEMA = json.loads((ROOT / "config" / "report.schema.json").read_text())
REFERENCE = jsonschema.Draft202012Validator(SCHEMA)


def test_the_sample_report_is_valid_for_both():
    assert REFERENCE.is_valid(VALID_REPORT) and hand_valid(VALID_REPORT)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_hand_validator_agrees_with_jsonschema(data):
    doc = copy.deepcopy(VALID_REPORT)
    for _ in range(data.draw(st.integers(1, 3))):
        candidates = [p for p in key_paths(doc) if p]
        path = data.draw(st.sampled_from(candidates)) if candidates else ()
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace" or not path:
            value = data.draw(json_values)
            # The schema's "$" also matches before a final newline; we are stricter on purpose.
            assume(not (isinstance(value, str) and value.endswith("\n")))
            parent[path[-1]] = value
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent[path[-1]], dict):
            parent[path[-1]][data.draw(st.text(max_size=520))] = data.draw(json_values)
    assert hand_valid(doc) == REFERENCE.is_valid(doc)


def test_hand_validator_agrees_on_every_single_change():
    """Each path of the sample report, replaced by each tricky value, deleted, or given a stranger."""
    assert _single_changes(VALID_REPORT) > 1000


def test_hand_validator_agrees_on_every_single_change_of_a_plaintext_report():
    """The same for a report carrying level2_plaintext (which needs the hashes beside it)."""
    assert REFERENCE.is_valid(PLAINTEXT_REPORT) and hand_valid(PLAINTEXT_REPORT)
    for name, limit in (("user", 256), ("home", 1024), ("machine", 256), ("host", 256)):
        for length in (limit, limit + 1):
            doc = copy.deepcopy(PLAINTEXT_REPORT)
            doc["level2_plaintext"][name] = "x" * length
            assert hand_valid(doc) == REFERENCE.is_valid(doc) == (length == limit), (name, length)
    assert _single_changes(PLAINTEXT_REPORT) > 1000


def _single_changes(base):
    checked = 0
    for path in [p for p in key_paths(base) if p]:
        variants = []
        for value in TRICKY:
            variants.append(("replace", value))
        variants.append(("delete", None))
        # New keys, including names at and just past the propertyNames limits.
        variants += [("add", (k, v)) for k in ("unexpected", "k" * 128, "k" * 129, "k" * 512, "k" * 513)
                     for v in (1, "1.0")]
        for action, value in variants:
            doc = copy.deepcopy(base)
            parent = doc
            for key in path[:-1]:
                parent = parent[key]
            if action == "replace":
                parent[path[-1]] = copy.deepcopy(value)
            elif action == "delete":
                del parent[path[-1]]
            elif isinstance(parent[path[-1]], dict):
                parent[path[-1]][value[0]] = value[1]
            else:
                continue
            assert hand_valid(doc) == REFERENCE.is_valid(doc), (path, action, value)
            checked += 1
    return checked


def test_plaintext_is_kept_only_when_the_project_agreed():
    sent = ingest.contribution_v1(PLAINTEXT_REPORT)
    assert ingest.keep_plaintext(sent, agreed=False).plaintext is None
    kept = ingest.keep_plaintext(sent, agreed=True)
    assert kept.plaintext == PLAINTEXT_REPORT["level2_plaintext"]
    # The id used for counting users is the hash either way, never the plaintext.
    assert kept.user == ingest.keep_plaintext(sent, agreed=False).user == VALID_REPORT["level2"]["user"]
    assert ingest.keep_plaintext(ingest.contribution_v1(VALID_REPORT), agreed=True).plaintext is None
    bad = copy.deepcopy(PLAINTEXT_REPORT)
    bad["level2_plaintext"]["user"] = "a\x00b"
    # Unstorable plaintext refuses the report only where it would be stored.
    assert ingest.keep_plaintext(ingest.contribution_v1(bad), agreed=False).plaintext is None
    with pytest.raises(ingest.Rejected, match="NUL"):
        ingest.keep_plaintext(ingest.contribution_v1(bad), agreed=True)


def test_v1_0_facts_one_per_project_zero_counts_dropped():
    doc = {"api_version": "v1.0", "stats": {"m.f": 2, "m.g": 0}, "client_id": "p1;p2;p1",
           "platform": {"os_name": "Darwin", "user_name": "plain-text-user"}, "client": {}}
    kept = ingest.contributions_v10(doc)
    assert [f.project_id for f in kept] == ["p1", "p2"] and len({f.report_id for f in kept}) == 2
    assert kept[0].stats == {"m.f": 2} and kept[0].os == "macOS" and kept[0].python == "unknown"
    assert kept[0].user == "plain-text-user"  # re-keyed by the window before anything is stored


@pytest.mark.parametrize("bad", [
    {"client_id": [], "stats": {}}, {"client_id": ["x"] * 17, "stats": {}},
    {"client_id": ["bad id"], "stats": {}}, {"client_id": ["p"], "stats": {"k": -1}},
    {"client_id": ["p"], "stats": {"k": True}}, {"api_version": "v2", "client_id": ["p"], "stats": {}},
], ids=["no-client", "17-clients", "bad-id", "negative-count", "bool-count", "api-v2"])
def test_v1_0_bad_report_is_rejected(bad):
    with pytest.raises(ingest.Rejected) as raised:
        ingest.contributions_v10(bad)
    assert raised.value.status == 422


def test_project_id_is_read_before_the_rest():
    assert ingest.project_id_of({"project_id": "eu-abc"}) == "eu-abc"


@pytest.mark.parametrize("doc", [[], {"project_id": 5}, {"project_id": "a b"}, {"project_id": "x" * 129}],
                         ids=["not-an-object", "not-a-string", "space", "too-long"])
def test_bad_project_id_is_rejected(doc):
    with pytest.raises(ingest.Rejected) as raised:
        ingest.project_id_of(doc)
    assert raised.value.status == 422


def test_a_node_client_report_is_schema_v1_for_both():
    """The Node client (node/) sends schema v1 with its own client name, engine and interpreter."""
    doc = copy.deepcopy(VALID_REPORT)
    doc["client"] = {"name": "telly-autoinst-node", "version": "0.1.0", "engine": "cjs+esm"}
    doc["interpreter"] = {"implementation": "node", "version": "20.20.2", "mode": "script"}
    assert REFERENCE.is_valid(doc) and hand_valid(doc)
    assert ingest.contribution_v1(doc).python == "node 20.20"
    doc["client"]["engine"] = "wrapt-ish"
    assert not REFERENCE.is_valid(doc) and not hand_valid(doc)


def test_platform_names_are_one_vocabulary():
    """v1.0 clients send platform.python_implementation() and platform.processor(); ours sends
    sys.implementation.name and platform.machine(): the same platform must be one group."""
    ours = ingest.contribution_v1(make_report("p", interpreter={"implementation": "cpython", "version": "3.11.7",
                                                         "mode": "script"}))
    original = ingest.contributions_v10({"api_version": "v1.0", "client_id": ["p"], "stats": {"m.f": 1},
                                 "client": {"language_implementation": "CPython", "language_version": "3.11.2"},
                                 "platform": {"os_name": "linux", "architecture": "x86_64"}})[0]
    assert ours.python == original.python == "CPython 3.11"
    assert ours.os == original.os == "Linux"
    assert ours.arch == original.arch == "x86_64"
    for spelling in ("AMD64", "amd64", "x64", "Intel64 Family 6 Model 158 Stepping 10, GenuineIntel"):
        assert ingest.normalize_arch(spelling) == "x86_64", spelling
    assert ingest.normalize_arch("aarch64") == ingest.normalize_arch("ARM64") == "arm64"
    assert ingest.normalize_arch("") == "unknown"
    assert ingest.normalize_os("Darwin") == ingest.normalize_os("macOS") == "macOS"
    assert ingest.normalize_os("CYGWIN_NT-10.0") == ingest.normalize_os("Windows") == "Windows"
    assert ingest.normalize_os("Plan9") == "plan9"  # unknown names are kept, in one case
    pypy = ingest.contribution_v1(make_report("p", interpreter={"implementation": "PYPY", "version": "3.10.14",
                                                         "mode": "script"}))
    assert pypy.python == "PyPy 3.10"


def test_a_report_keeps_only_the_features_a_user_day_can_publish():
    from telly_autoinst_collector.privacy import FEATURES_PER_REPORT as limit

    stats = {f"m.f{i:05d}": 1 + i % 997 for i in range(20000)}
    kept = ingest.contribution_v1(make_report("p", stats=stats)).stats
    assert len(kept) == limit
    assert sorted(kept.values(), reverse=True) == sorted(stats.values(), reverse=True)[:limit]
    original = ingest.contributions_v10({"api_version": "v1.0", "client_id": ["p"], "stats": stats})[0].stats
    assert original == kept
    assert ingest.contribution_v1(make_report("p", stats={"m.f": 10 ** 30})).stats == {"m.f": 2 ** 31}


def test_only_utf8_json_is_read():
    doc = make_report("p")
    assert ingest.parse_json(json.dumps(doc).encode("utf-8")) == doc
    for encoding in ("utf-16", "utf-16-le", "utf-32"):
        try:
            ingest.parse_json(json.dumps(doc).encode(encoding))
        except ingest.Rejected as exc:
            assert (exc.status, exc.code) == (400, "malformed_json")
        else:
            raise AssertionError(encoding)


# "İ".lower() is two characters: 64 of them pass the schema's 64 and become 128 once folded.
_DOTTED = "\u0130" * 64


@pytest.mark.parametrize("where, change", [
    ("platform.os", lambda r: r["platform"].update(os=_DOTTED)),
    ("platform.machine", lambda r: r["platform"].update(machine=_DOTTED)),
])
def test_a_string_too_long_once_folded_is_refused_by_both_decoders(where, change):
    from telly_autoinst_collector.decode import fast_contribution_v1

    report = make_report("p")
    change(report)
    with pytest.raises(ingest.Rejected) as long_way:
        ingest.validate_v1(report)
        ingest.contribution_v1(report)
    with pytest.raises(ingest.Rejected) as fast_way:
        fast_contribution_v1(json.dumps(report).encode())
    for refused in (long_way.value, fast_way.value):
        assert (refused.status, refused.code) == (422, "unstorable_string") and where in refused.detail


def test_a_v1_0_platform_too_long_once_folded_is_refused():
    payload = {"api_version": "v1.0", "client_id": ["p"], "stats": {"m.f": 1},
               "platform": {"os_name": _DOTTED, "architecture": "x86_64"}}
    with pytest.raises(ingest.Rejected) as refused:
        ingest.contributions_v10(payload)
    assert refused.value.status == 422 and "platform.os_name" in refused.value.detail


def test_every_kept_string_fits_its_column():
    from telly_autoinst_collector.store import level2_plaintext, raw_reports

    names = ingest.make_contribution("p", "0" * 32, None, {"m.f": 1}, "v" * 64, _DOTTED[:32], "3.11." + "9" * 26,
                                     "Ǆ" * 64, "Ǆ" * 64)
    for column in ("version", "python", "os", "arch"):
        assert len(getattr(names, column)) <= raw_reports.c[column].type.length
    assert ingest.PLAINTEXT_LIMITS == {name: level2_plaintext.c[name].type.length
                                       for name in ("home", "host", "machine", "user")}
