"""`collector serve --workers N` on PostgreSQL: several processes, one database, one job runner."""

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from collector.tests.support import make_report, post
from telly_autoinst_collector.registry import create_project
from telly_autoinst_collector.store import open_store


def _children(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as children:
        return [int(p) for p in children.read().split()]


def _job_holders(store):
    """Pids of the collector processes holding the background jobs' advisory lock."""
    with store.engine.begin() as conn:
        names = conn.exec_driver_sql(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.objid = 7406058 AND l.granted").scalars().all()
    return [int(name.rsplit("-", 1)[1]) for name in names]


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_workers_share_the_port_and_exactly_one_runs_the_jobs(db_url, serve):
    store = open_store(db_url)
    project_id, _ = create_project(store, "demo", "us")
    server = serve(db_url, "--workers", "2", "--publish-interval", "1", "--rate-limit", "0")
    workers = _children(server.proc.pid)
    assert len(workers) == 2
    reports = [make_report(project_id, user=str(i)) for i in range(300)]
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda r: post(server.url, r).status_code, reports))
    assert statuses == [200] * 300
    assert store.report_ids(project_id) == {r["report_id"] for r in reports}
    deadline = time.monotonic() + 20
    while len(_job_holders(store)) != 1:
        assert time.monotonic() < deadline, _job_holders(store)
        time.sleep(0.2)
    (holder,) = _job_holders(store)
    assert holder in workers
    # The holder dies: the supervisor starts a new worker and one worker takes the jobs over.
    os.kill(holder, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        holders, now = _job_holders(store), _children(server.proc.pid)
        if len(holders) == 1 and holders[0] != holder and len(now) == 2 and holder not in now:
            break
        assert time.monotonic() < deadline, (holders, now)
        time.sleep(0.2)
    assert post(server.url, make_report(project_id)).status_code == 200
    # SIGTERM to the parent stops every worker.
    current = _children(server.proc.pid)
    server.stop()
    assert server.proc.returncode == 0
    for pid in current:
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    store.dispose()


def test_workers_need_postgresql(tmp_path):
    import subprocess
    import sys

    from tests.support.venvs import ROOT, SOURCE_PATH

    done = subprocess.run([sys.executable, "-m", "telly_autoinst", "collector", "serve", "--workers", "2",
                           "--db", f"sqlite:///{tmp_path}/x.sqlite3"], cwd=str(ROOT), capture_output=True, text=True,
                          env=dict(os.environ, HOME=str(tmp_path), PYTHONPATH=SOURCE_PATH))
    assert done.returncode == 2 and "PostgreSQL" in done.stderr
