"""The pipeline in fresh interpreters of a real venv: storage types, one report per project, SHOW_ME, consent."""

import json
import time

import pytest

from tests.support.dists import installed
from tests.support.loopback import Loopback, dead_url
from tests.support.schema import read_reports, split_shown, validate_report
from tests.support.spooled import age_last_sender, wait_sender_done
from tests.support.venvs import find_python

pytestmark = pytest.mark.slow

PROGRAM = """
import sample_hatch, sample_st
print("result", sample_hatch.add(2, 3))
c = sample_hatch.Counter(); c.bump(); c.bump()
print(sample_st.greet("you"))
"""


def _file_env(tmp_path, **extra):
    return {"TELLY_STORAGE_TYPE": "file", "TELLY_LOCAL_STORAGE_PATH": str(tmp_path / "out"), **extra}


def _spool(home):
    return home / ".cache" / "telly_autoinst" / "spool"


def test_file_storage_one_report_per_project(st_hatch_venv, home, tmp_path):
    proc = st_hatch_venv.run(PROGRAM, home, env=_file_env(tmp_path), check=True)
    assert proc.stderr == ""
    reports = {r["project_id"]: r for r in read_reports(tmp_path / "out")}
    assert set(reports) == {"sample-hatch-project", "sample-st-project"}
    # Each author gets only their own counts (the original lumped all projects into one body).
    assert reports["sample-hatch-project"]["stats"] == {"sample_hatch.add": 1, "sample_hatch.Counter": 1,
                                                        "sample_hatch.Counter.bump": 2}
    assert reports["sample-st-project"]["stats"] == {"sample_st.core.greet": 1}
    assert reports["sample-hatch-project"]["package"] == {"name": "sample-hatch", "version": "0.4.0"}
    for report in reports.values():
        assert report["trigger"] == "exit" and report["interpreter"]["mode"] == "command"
        assert report["level2"] is not None


def test_stdout_and_status_unchanged(st_hatch_venv, home, tmp_path):
    plain = st_hatch_venv.run(PROGRAM, home, env={"TELLY_DISABLE": "1"})
    hooked = st_hatch_venv.run(PROGRAM, home, env={"TELLY_HTTP_SERVER": dead_url()})
    assert (hooked.returncode, hooked.stdout, hooked.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    failing = PROGRAM + "raise SystemExit(7)\n"
    assert st_hatch_venv.run(failing, home, env={"TELLY_HTTP_SERVER": dead_url()}).returncode == 7


def test_show_me_bytes_arrive_identical(st_hatch_venv, home):
    with Loopback([200]) as server:
        proc = st_hatch_venv.run(PROGRAM, home, env={"TELLY_SHOW_ME": "1", "TELLY_HTTP_SERVER": server.url}, check=True)
        shown = split_shown(proc.stderr)
        received = server.wait_for(2)
    assert len(shown) == 2 and len(received) == 2
    assert sorted(r.body for r in received) == sorted(shown)
    for req in received:
        assert req.path == "/api/v1/reports" and req.headers["Content-Encoding"] == "gzip"
        validate_report(req.body)
    assert "result 5" in proc.stdout and "{" not in proc.stdout


def test_sender_sends_the_report_the_host_would_have_built(st_hatch_venv, home, tmp_path):
    """Default storage: the host queues counts and the sender builds the report; the same program with
    file storage has the host build it. Everything but the report's id and time is the same, byte
    layout included."""
    assert st_hatch_venv.run(PROGRAM, home, env=_file_env(tmp_path), check=True).stderr == ""
    built_by_host = {r["project_id"]: r for r in read_reports(tmp_path / "out")}
    with Loopback([200]) as server:
        proc = st_hatch_venv.run(PROGRAM, home, env={"TELLY_HTTP_SERVER": server.url}, check=True)
        received = server.wait_for(2)
    assert proc.stderr == ""
    wait_sender_done(_spool(home))
    assert len(received) == 2
    for request in received:
        validate_report(request.body)
        sent = json.loads(request.body)
        host = dict(built_by_host[sent["project_id"]], report_id=sent["report_id"], created_at=sent["created_at"])
        assert sent == host
        assert request.body == json.dumps(host, indent=2, sort_keys=True).encode("ascii") + b"\n"
        assert sent["level2"] is not None and sent["packages"] is not None


def test_http_sync_and_global_socket_timeout(st_hatch_venv, home):
    program = ("import atexit, socket\n"
               "atexit.register(lambda: print('timeout', socket.getdefaulttimeout()))\n" + PROGRAM)
    with Loopback([200]) as server:
        proc = st_hatch_venv.run(program, home, env={"TELLY_STORAGE_TYPE": "http", "TELLY_HTTP_SERVER": server.url},
                        check=True)
        # Synchronous: delivered before the process ended, no sender involved.
        assert len(server.received) == 2
    assert proc.stdout.strip().endswith("timeout None")


def test_endpoint_down_then_a_later_run_delivers(st_hatch_venv, home):
    url = dead_url()
    st_hatch_venv.run(PROGRAM, home, env={"TELLY_HTTP_SERVER": url}, check=True)
    spool = _spool(home)
    # The detached sender tried, failed and left both reports queued.
    wait_sender_done(spool)
    assert len(list(spool.glob("*.report"))) == 2
    with Loopback([200], port=int(url.rsplit(":", 1)[1])) as server:
        # Within the interval of the last sender: this exit starts none, its counts wait.
        st_hatch_venv.run("import sample_hatch; sample_hatch.add(1, 1)", home, env={"TELLY_HTTP_SERVER": server.url},
                 check=True)
        time.sleep(1)
        assert server.received == [] and len(list(spool.glob("*.counts"))) == 1
        age_last_sender(spool)
        st_hatch_venv.run("import sample_hatch; sample_hatch.add(1, 1)", home, env={"TELLY_HTTP_SERVER": server.url},
                 check=True)
        received = server.wait_for(3)
    assert sorted(json.loads(r.body)["project_id"] for r in received) == [
        "sample-hatch-project", "sample-hatch-project", "sample-st-project"]
    # The two later runs' counts left as one report (one user, same day): the sums of both.
    adds = [json.loads(r.body)["stats"].get("sample_hatch.add") for r in received]
    assert sorted(a for a in adds if a) == [1, 2]
    wait_sender_done(spool)
    assert list(spool.glob("*.report")) == [] and list(spool.glob("*.counts")) == []


@pytest.mark.parametrize("script", [
    [500, 200],
    ["reset", 200],
    [(429, {"Retry-After": "1"}), 200],
    [("sleep", 8), 200],
], ids=["500", "reset", "429", "slow"])
def test_endpoint_failures_are_retried_by_the_sender(st_hatch_venv, home, script):
    with Loopback(script) as server:
        proc = st_hatch_venv.run("import sample_hatch; sample_hatch.add(1, 1); print('done')", home,
                        env={"TELLY_HTTP_SERVER": server.url, "TELLY_SHOW_ME": "1"}, check=True)
        (received,) = server.wait_for(1, timeout=60)
    assert proc.stdout == "done\n"
    assert split_shown(proc.stderr) == [received.body]
    assert server.attempts >= 2


def test_unwritable_home(st_hatch_venv, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    home = blocker / "home"  # not creatable: its parent is a file
    proc = st_hatch_venv.run(PROGRAM, tmp_path, env=dict(_file_env(tmp_path), HOME=str(home)), check=True)
    assert "result 5" in proc.stdout and proc.stderr == ""


def test_unwritable_home_with_default_storage(st_hatch_venv, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = st_hatch_venv.run(PROGRAM, tmp_path, env={"HOME": str(blocker / "home"), "TELLY_HTTP_SERVER": dead_url()})
    assert proc.returncode == 0 and proc.stderr == ""


def _run_after(st_hatch_venv, home, tmp_path, commands, env):
    """Run the CLI ``commands`` (each a list of arguments), then PROGRAM with file storage."""
    for args in commands:
        st_hatch_venv.run(["-m", "telly_autoinst", *args], home, check=True)
    proc = st_hatch_venv.run(PROGRAM, home, env=_file_env(tmp_path, **env), check=True)
    assert "result 5" in proc.stdout


def _reported_projects(tmp_path):
    return sorted(r["project_id"] for r in read_reports(tmp_path / "out"))


@pytest.mark.parametrize("commands, env", [
    ([], {}),
    ([["optin", "sample-hatch-project"]], {"TELLY_OPTIN": "1"}),
    ([], {"CI": "false", "TELLY_SEND_FROM_CI": "0"}),
], ids=["default", "optin-mode-listed", "ci-false"])
def test_consent_allows_the_report(st_hatch_venv, home, tmp_path, commands, env):
    _run_after(st_hatch_venv, home, tmp_path, commands, env)
    assert "sample-hatch-project" in _reported_projects(tmp_path)


def test_report_from_ci_is_sent_and_flagged(st_hatch_venv, home, tmp_path):
    _run_after(st_hatch_venv, home, tmp_path, [], {"GITHUB_ACTIONS": "true"})
    (report,) = [r for r in read_reports(tmp_path / "out") if r["project_id"] == "sample-hatch-project"]
    assert (report["platform"]["ci"], report["platform"]["ci_vendor"]) == (True, "github_actions")


@pytest.mark.parametrize("commands, env", [
    ([], {"TELLY_DISABLE": "1"}),
    ([], {"DO_NOT_TRACK": "1"}),
    ([["disable"]], {}),
], ids=["TELLY_DISABLE", "DO_NOT_TRACK", "telly_disable_file"])
def test_kill_switch_leaves_no_trace(st_hatch_venv, home, tmp_path, commands, env):
    _run_after(st_hatch_venv, home, tmp_path, commands, env)
    # A kill switch means nothing at all: no report, no salt, no notice record.
    assert not (tmp_path / "out").exists()
    assert not (home / ".telly_salt").exists()
    assert not (home / ".telly_notices").exists()


def test_optout_refuses_only_that_project(st_hatch_venv, home, tmp_path):
    _run_after(st_hatch_venv, home, tmp_path, [["optout", "sample-hatch-project"]], {})
    assert _reported_projects(tmp_path) == ["sample-st-project"]


def test_optin_mode_sends_nothing_unlisted(st_hatch_venv, home, tmp_path):
    _run_after(st_hatch_venv, home, tmp_path, [], {"TELLY_OPTIN": "1"})
    assert _reported_projects(tmp_path) == []


def test_ci_with_send_from_ci_off_sends_nothing(st_hatch_venv, home, tmp_path):
    _run_after(st_hatch_venv, home, tmp_path, [], {"CI": "true", "TELLY_SEND_FROM_CI": "0"})
    assert not (tmp_path / "out").exists()


def _assert_no_level2(home, tmp_path):
    reports = read_reports(tmp_path / "out")
    assert reports and all(r["level2"] is None for r in reports)
    assert not (home / ".telly_salt").exists()


def test_level2_off_from_the_environment(st_hatch_venv, home, tmp_path):
    st_hatch_venv.run(PROGRAM, home, env=_file_env(tmp_path, TELLY_INCLUDE_LEVEL2="0"), check=True)
    _assert_no_level2(home, tmp_path)


def test_level2_off_from_the_user_config(st_hatch_venv, home, tmp_path):
    config = home / ".config" / "telly_autoinst" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("level2 = false\n")
    st_hatch_venv.run(PROGRAM, home, env=_file_env(tmp_path), check=True)
    _assert_no_level2(home, tmp_path)


def test_manual_flush_api(st_hatch_venv, home, tmp_path):
    program = ("import telly_autoinst, sample_hatch\n"
               "sample_hatch.add(1, 2)\n"
               "print(telly_autoinst.flush())\n"
               "sample_hatch.add(1, 2); sample_hatch.add(1, 2)\n")
    proc = st_hatch_venv.run(program, home, env=_file_env(tmp_path), check=True)
    assert proc.stdout == "1\n"
    reports = read_reports(tmp_path / "out")
    assert [(r["trigger"], r["stats"]) for r in reports] == [("manual", {"sample_hatch.add": 1}),
                                                            ("exit", {"sample_hatch.add": 2})]


def test_cli_show_and_status(st_hatch_venv, home):
    st_hatch_venv.run(["-m", "telly_autoinst", "optout", "sample-st-project"], home, check=True)
    status = st_hatch_venv.run(["-m", "telly_autoinst", "status"], home, check=True).stdout
    rows = {line.split()[1]: line for line in status.splitlines() if line.startswith("sample-")}
    assert " on " in rows["sample-hatch-project"] and " off " in rows["sample-st-project"]
    assert "opted out" in rows["sample-st-project"]
    shown = json.loads(st_hatch_venv.run(["-m", "telly_autoinst", "show", "--json"], home, check=True).stdout)
    projects = {p["project_id"]: p for p in shown["projects"]}
    assert projects["sample-hatch-project"]["would_send"] and not projects["sample-st-project"]["would_send"]
    validate_report(projects["sample-hatch-project"]["report"])
    assert shown["queued"] == []
    text = st_hatch_venv.run(["-m", "telly_autoinst", "show"], home, check=True).stdout
    assert "# sample-hatch-project: would send" in text


def test_optout_during_the_run_drops_the_counts(st_hatch_venv, home, tmp_path):
    program = ("import sample_hatch\nsample_hatch.add(1, 2)\n"
               "from telly_autoinst.consent import optout\noptout('sample-hatch-project')\n")
    st_hatch_venv.run(program, home, env=_file_env(tmp_path), check=True)
    assert _no_reports(tmp_path)


def _no_reports(tmp_path):
    return not (tmp_path / "out").exists() or read_reports(tmp_path / "out") == []


def test_first_run_notice_on_a_tty_with_a_real_import(st_hatch_venv, home, tmp_path):
    def run_on_tty(out):
        return st_hatch_venv.run_on_tty(PROGRAM, home, _file_env(out))

    stdout, tty = run_on_tty(tmp_path / "first")
    assert "result 5" in stdout and "collects anonymous usage statistics" not in stdout
    assert tty.count("sample-hatch (project sample-hatch-project) collects anonymous usage statistics") == 1
    assert tty.count("(project sample-st-project) collects anonymous usage statistics") == 1
    assert {r["project_id"] for r in read_reports(tmp_path / "first" / "out")} == {"sample-hatch-project",
                                                                           "sample-st-project"}
    stdout, tty = run_on_tty(tmp_path / "second")
    assert "collects" not in tty
    assert len(read_reports(tmp_path / "second" / "out")) == 2


def test_flush_with_nothing_pending_loads_nothing(st_hatch_venv, home):
    code = ("import sys, telly_autoinst\n"
            "assert telly_autoinst.flush() == 0\n"
            "print(sorted(m for m in sys.modules if m.startswith('telly_autoinst.')))\n")
    st_hatch_venv.run("pass", home, check=True)  # a first start in this home
    loaded = st_hatch_venv.run(code, home, check=True).stdout
    for heavy in ("settings", "discovery", "finder", "transport", "consent"):
        assert f"'telly_autoinst.{heavy}'" not in loaded


@pytest.mark.cross_python
@pytest.mark.skipif(find_python("3.13") is None, reason="needs CPython 3.13 for sys.monitoring")
def test_report_names_the_engine_that_really_counted(venvs, sample_wheels, home, tmp_path):
    venv = venvs.get(python=find_python("3.13"), extra=[sample_wheels["pkg_hatch"]])
    # Every sys.monitoring tool id is taken, so the monitoring engine falls back to another one.
    code = "import sys\nfor i in range(6):\n    sys.monitoring.use_tool_id(i, 'other')\n" + (
        "import sample_hatch\nsample_hatch.add(1, 2)\n")
    venv.run(code, home, env=_file_env(tmp_path, TELLY_ENGINE="monitoring"), check=True)
    (report,) = read_reports(tmp_path / "out")
    assert report["client"]["engine"] in ("rewrite", "wrapt")  # the fallback that counted, not "monitoring"
    assert report["stats"] == {"sample_hatch.add": 1}


def test_two_distributions_sharing_a_project_id_report_each_under_its_own_name(st_hatch_venv, home, tmp_path):
    """One report per distribution: never one labelled with the other's name holding both counts."""
    site = tmp_path / "site"
    for name, module in (("twin-a", "twin_a"), ("twin-b", "twin_b")):
        installed(site, name, module, 'project_id = "twins"\n', source="def hello():\n    return 1\n")
    program = "import twin_a, twin_b\ntwin_a.hello(); twin_b.hello(); twin_b.hello()\n"
    st_hatch_venv.run(program, home, env=_file_env(tmp_path, PYTHONPATH=str(site)), check=True)
    reports = read_reports(tmp_path / "out")
    by_package = {r["package"]["name"]: r["stats"] for r in reports}
    assert by_package == {"twin-a": {"twin_a.hello": 1}, "twin-b": {"twin_b.hello": 2}}
    assert {r["project_id"] for r in reports} == {"twins"} and len({r["report_id"] for r in reports}) == 2
    dry = st_hatch_venv.run(["-m", "telly_autoinst", "--dry-run"], home, env={"PYTHONPATH": str(site)}).stdout
    assert "twin-a 1.0  (project twins)" in dry and "twin-b 1.0  (project twins)" in dry
