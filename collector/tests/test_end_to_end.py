"""End to end: instrumented programs in a real venv report through the real client pipeline to a collector
started here, and the published numbers reach the stats API and the dashboard."""

import json
import subprocess
import sys
import time

import httpx
import pytest

from telly_autoinst_collector.store import open_store
from tests.support.venvs import ROOT, SOURCE_PATH

pytestmark = pytest.mark.slow

PROGRAM = """
import sample_hatch, sample_st
print("result", sample_hatch.add(2, 3))
c = sample_hatch.Counter(); c.bump(); c.bump()
print(sample_st.greet("you"))
"""


def _collector(*args, home):
    done = subprocess.run([sys.executable, "-m", "telly_autoinst", "collector", *args], cwd=str(ROOT),
                          capture_output=True, text=True, check=True,
                          env={"HOME": str(home), "PATH": "/usr/bin:/bin", "PYTHONPATH": SOURCE_PATH})
    return done.stdout


def test_counts_of_real_programs_reach_the_dashboard(st_hatch_venv, tmp_path, serve):
    db = f"sqlite:///{tmp_path / 'e2e.sqlite3'}"
    # The sample packages' own project ids, registered here as large (features in daily releases);
    # a huge epsilon makes the noise vanish.
    created = {}
    for project_id in ("sample-hatch-project", "sample-st-project"):
        created[project_id] = json.loads(_collector("project", "create", project_id, "--project-id", project_id,
                                                    "--epsilon-per-day", "1e6", "--profile", "large", "--json",
                                                    "--db", db, home=tmp_path))
    server = serve(db, "--min-group", "1")
    # The authors register their packages' keys (and versions) from what the client lists: daily
    # releases carry public names only.
    listing = tmp_path / "keys.json"
    listing.write_text(st_hatch_venv.run(["-m", "telly_autoinst", "--dry-run", "--json"], tmp_path, check=True).stdout)
    for project_id in created:
        _collector("project", "register-keys", "--project", project_id, str(listing), "--db", db, home=tmp_path)
    for user in ("alice", "bob"):
        home = tmp_path / user
        home.mkdir()
        # The default storage: the exiting program hands its reports to the detached sender.
        proc = st_hatch_venv.run(PROGRAM, home, env={"TELLY_HTTP_SERVER": server.url}, check=True)
        assert "result 5" in proc.stdout
    store = open_store(db)
    deadline = time.monotonic() + 60
    while sum(len(store.report_ids(p)) for p in created) < 4:
        assert time.monotonic() < deadline, "the reports never arrived"
        time.sleep(0.2)
    _collector("publish", "--through-now", "--db", db, home=tmp_path)

    token = created["sample-hatch-project"]["read_token"]
    stats = httpx.get(f"{server.url}/api/v1/projects/sample-hatch-project/stats",
                      headers={"Authorization": f"Bearer {token}"}).json()
    assert stats["dau"][-1]["value"] == 2
    calls = {f["key"]: (f["calls"], f["users"]) for f in stats["features"]["by_calls"]}
    assert calls == {"sample_hatch.add": (2, 2), "sample_hatch.Counter": (2, 2), "sample_hatch.Counter.bump": (4, 2)}
    assert stats["versions"]["series"] == {"0.4.0": [2]}
    page = httpx.get(f"{server.url}/projects/sample-hatch-project", headers={"Authorization": f"Bearer {token}"})
    assert 'data-metric="calls" data-key="sample_hatch.Counter.bump">4<' in page.text
    other = httpx.get(f"{server.url}/api/v1/projects/sample-st-project/stats",
                      headers={"Authorization": f"Bearer {created['sample-st-project']['read_token']}"}).json()
    assert [(f["key"], f["calls"]) for f in other["features"]["by_calls"]] == [("sample_st.core.greet", 2)]
