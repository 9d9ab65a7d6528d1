"""Level II in plain text needs three agreements: every combination, end to end.

Real programs in a real venv (four opted-in packages: the author agreed or not) run as two users
(TELLY_LEVEL2_PLAINTEXT set or not) and report to a real collector whose projects were created
with or without --level2-plaintext. What was sent (TELLY_SHOW_ME), what was stored and what the
stats API and dashboard show are checked for all 2 x 2 x 2 combinations.
"""

import datetime
import itertools
import json
import shutil
import subprocess
import sys
import time

import httpx
import pytest
import sqlalchemy as sa

from telly_autoinst_collector import store as store_module
from telly_autoinst_collector.registry import create_project
from tests.support.venvs import ROOT, SOURCE_PATH

pytestmark = pytest.mark.slow

# (author agreed, collector project agreed) -> the package and its project id.
PACKAGES = {(author, collector): (f"pt_{author:d}{collector:d}", f"pt-author{author:d}-collector{collector:d}")
            for author, collector in itertools.product((False, True), repeat=2)}
USERS = {"alice": True, "bob": False}  # user name -> TELLY_LEVEL2_PLAINTEXT=1 or not

PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "1.0"

[tool.setuptools]
packages = ["{name}"]

[tool.telly]
project_id = "{project_id}"
level2_plaintext = {author}
"""


@pytest.fixture(scope="module")
def venv(venvs, tmp_path_factory):
    checkouts = tmp_path_factory.mktemp("plaintext-packages")
    dirs = []
    for (author, _), (name, project_id) in PACKAGES.items():
        root = checkouts / name
        (root / name).mkdir(parents=True)
        (root / name / "__init__.py").write_text("def work(x):\n    return x + 1\n")
        # Installed from a local directory (not editable): discovery reads its pyproject.toml.
        (root / "pyproject.toml").write_text(PYPROJECT.format(name=name, project_id=project_id,
                                                              author=str(author).lower()))
        dirs.append(root)
    return venvs.get(extra=dirs)


def _collector(*args, home):
    return subprocess.run([sys.executable, "-m", "telly_autoinst", "collector", *args], cwd=str(ROOT),
                          capture_output=True, text=True, check=True,
                          env={"HOME": str(home), "PATH": "/usr/bin:/bin", "PYTHONPATH": SOURCE_PATH})


def _reports(shown):
    """The reports printed by TELLY_SHOW_ME, in order."""
    decoder, found, at = json.JSONDecoder(), [], shown.find("{")
    while at != -1:
        report, end = decoder.raw_decode(shown, at)
        found.append(report)
        at = shown.find("{", end)
    return found


def test_plaintext_only_with_all_three_agreements(venv, tmp_path, serve):
    db = f"sqlite:///{tmp_path / 'plaintext.sqlite3'}"
    tokens = {}
    for (_, collector), (_, project_id) in PACKAGES.items():
        flag = ["--level2-plaintext"] if collector else []
        done = _collector("project", "create", project_id, "--project-id", project_id, "--json", *flag, "--db", db,
                          home=tmp_path)
        created = json.loads(done.stdout)
        assert created["level2_plaintext"] is collector
        assert ("plain text" in done.stderr) is collector
        tokens[project_id] = created["read_token"]
    server = serve(db, "--min-group", "1")
    program = "".join(f"import {name}; {name}.work(1)\n" for name, _ in PACKAGES.values())
    sent = {}
    for user, accepts in USERS.items():
        home = tmp_path / user
        home.mkdir()
        env = {"TELLY_HTTP_SERVER": server.url, "TELLY_STORAGE_TYPE": "http", "TELLY_SHOW_ME": "1",
               "LOGNAME": user, "USER": user, "TELLY_LEVEL2_PLAINTEXT": "1" if accepts else None}
        proc = venv.run(program, home, env=env, check=True)
        for report in _reports(proc.stderr):
            sent[(user, report["project_id"])] = report
    assert len(sent) == 8

    store = store_module.open_store(db)
    with store.engine.begin() as conn:
        stored = conn.execute(sa.select(store_module.level2_plaintext)).mappings().all()
    for (author, _), (_, project_id) in PACKAGES.items():
        for user, accepts in USERS.items():
            report = sent[(user, project_id)]
            # On the wire: only where the author and the user both agreed, always beside the hashes.
            assert ("level2_plaintext" in report) is (author and accepts), (author, accepts)
            assert set(report["level2"]) == {"user", "home", "machine", "host"}
            if author and accepts:
                assert report["level2_plaintext"]["user"] == user
                assert report["level2_plaintext"]["home"] == str(tmp_path / user)
            # Every report was stored and counted, whatever happened to its plaintext.
            assert report["report_id"] in store.report_ids(project_id)
    # Stored: only where all three agreed.
    everyone = PACKAGES[(True, True)][1]
    assert [(r["project_id"], r["user"], r["home"]) for r in stored] == [(everyone, "alice", str(tmp_path / "alice"))]
    assert stored[0]["report_id"] == sent[("alice", everyone)]["report_id"]

    for (author, collector), (_, project_id) in PACKAGES.items():
        headers = {"Authorization": f"Bearer {tokens[project_id]}"}
        api = httpx.get(f"{server.url}/api/v1/projects/{project_id}/stats", headers=headers).json()
        page = httpx.get(f"{server.url}/projects/{project_id}", headers=headers).text
        if not collector:
            assert api["level2_plaintext"] is None and 'id="level2-plaintext"' not in page
            continue
        # The project agreed: banner and users table, with the one user who agreed under an author who did.
        assert 'class="banner"' in page and "Level II in plain text." in page
        users = [(u["user"], u["host"], u["reports"], u["days"]) for u in api["level2_plaintext"]["users"]]
        if author:
            host = sent[("alice", project_id)]["level2_plaintext"]["host"]
            assert users == [("alice", host, 1, 1)]
            assert '<tr class="plaintext-user"><td>alice</td>' in page
        else:
            assert users == [] and "No plaintext Level II received" in page
        assert "bob" not in page
    store.dispose()


@pytest.mark.browser
@pytest.mark.skipif(not (shutil.which("chromium") and shutil.which("chromedriver")),
                    reason="needs Debian's chromium and chromium-driver (tests/run installs them)")
def test_browser_shows_the_banner_and_the_users_table(tmp_path, serve):
    from collector.tests.test_dashboard import _Browser

    db = f"sqlite:///{tmp_path / 'browser.sqlite3'}"
    store = store_module.open_store(db)
    project_id, token = create_project(store, "Internal tool", "us", level2_plaintext=True)
    today = datetime.datetime.now(datetime.timezone.utc).date()
    rows = []
    for i, (user, host) in enumerate([("alice", "ws-1"), ("alice", "ws-1"), ("bob", "ws-2")]):
        rows.append({"project_id": project_id, "report_id": f"{i:032x}", "day": today, "uid": f"u{user}",
                     "version": "1.0", "python": "CPython 3.11", "os": "Linux", "arch": "x86_64",
                     "stats": '{"tool.f": 1}',
                     "level2_plaintext": {"user": user, "home": f"/home/{user}", "machine": "0" * 32, "host": host}})
    store.insert_reports(rows)
    store.dispose()
    server = serve(db, "--min-group", "1")
    browser = _Browser(tmp_path)
    try:
        browser.go(f"{server.url}/projects/{project_id}")
        browser.type("#token", token)
        browser.click("#sign-in")
        deadline = time.monotonic() + 30
        # Nothing is published yet, so no chart is drawn (data-rendered stays 0): wait for the section.
        while browser.script("return document.readyState === 'complete' && "
                             "!!document.querySelector('#level2-plaintext')") is not True:
            assert time.monotonic() < deadline, "the dashboard never showed the plaintext section"
            time.sleep(0.1)
        banner = browser.script("""const b = document.querySelector('#level2-plaintext .banner');
            const r = b.getBoundingClientRect();
            return [b.innerText, r.width > 0 && r.height > 0, getComputedStyle(b).visibility, r.top];""")
        cells = browser.script("""return Array.from(document.querySelectorAll('tr.plaintext-user')).map(
            tr => Array.from(tr.cells).map(td => td.innerText.trim()));""")
    finally:
        browser.close()
    text, visible, visibility, top = banner
    assert text.startswith("Level II in plain text.") and visible and visibility == "visible"
    assert top < 400  # at the top of the page, not below the charts
    assert cells == [["alice", "ws-1", "0" * 32, "/home/alice", "2", "1", today.isoformat()],
                     ["bob", "ws-2", "0" * 32, "/home/bob", "1", "1", today.isoformat()]]
