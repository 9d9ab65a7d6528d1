"""Upgrades: a store made by an earlier release (kept as a fixture) is migrated and keeps its data."""

import datetime
import hashlib
import secrets
import sqlite3
from pathlib import Path

import pytest

from telly_autoinst_collector import store as store_module

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DAYS = [datetime.date(2026, 11, 1), datetime.date(2026, 11, 2)]


def restore_sqlite(path, version=4):
    """A SQLite store at ``path`` holding the fixture made by schema ``version``."""
    with sqlite3.connect(path) as conn:
        conn.executescript((FIXTURES / f"store-schema{version}.sqlite.sql").read_text())
    conn.close()
    return f"sqlite:///{path}"


@pytest.fixture
def old_store(request, tmp_path):
    """The URL of a store made by schema 4: a SQLite file, or a PostgreSQL database of its own."""
    if request.param == "sqlite":
        yield restore_sqlite(tmp_path / "old.sqlite3")
        return
    import psycopg

    server = request.getfixturevalue("postgres_url")
    name = "telly_upgrade_" + secrets.token_hex(4)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = server.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(url, autocommit=True) as conn:
        # No parameters: psycopg sends the dump's statements as one simple query.
        conn.execute((FIXTURES / "store-schema4.postgresql.sql").read_text())
    yield url
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def check_schema4_contents(store):
    """What the schema-4 fixture holds, read through today's store."""
    assert store.version() == store_module.SCHEMA_VERSION
    assert store.project_ids("us") == ["us-corporate", "us-fixture"] and store.project_ids("eu") == ["eu-fixture"]
    project = store.project("us-corporate")
    assert project["level2_plaintext"] and not store.project("us-fixture")["level2_plaintext"]
    assert project["read_token_sha256"] == hashlib.sha256(b"fixture-read-token").hexdigest()
    for project_id in ("us-fixture", "us-corporate", "eu-fixture"):
        assert store.raw_days(project_id) == DAYS and store.key_days(project_id) == DAYS
        assert len(store.report_ids(project_id)) == 6
        assert set(store.release_accounts(project_id)) == {DAYS[0]}
        assert store.period_releases(project_id) == []  # weeks and blocks came with schema 6
        assert [cell[:2] for cell in store.published_cells(project_id, DAYS[0], DAYS[1])] == [(DAYS[0], "dau")]
    # Schema 7: every project gets a profile the collector chose; these published a few users a day.
    assert {(p["profile"], p["profile_declared"]) for p in store.projects()} == {("small", False)}
    users = store.plaintext_users("us-corporate", DAYS[0], DAYS[1])
    assert sorted(u["user"] for u in users) == ["user0", "user1", "user2"] and {u["days"] for u in users} == {2}
    assert store.plaintext_users("us-fixture", DAYS[0], DAYS[1]) == []


@pytest.mark.parametrize("old_store", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
                         indirect=True)
def test_a_schema4_store_is_migrated_and_keeps_its_data(old_store):
    store = store_module.open_store(old_store)
    try:
        check_schema4_contents(store)
        # Today's code writes into the upgraded store: a new day, a retried id dropped.
        day = DAYS[1] + datetime.timedelta(days=1)
        row = {"project_id": "us-fixture", "report_id": "f" * 32, "day": day, "uid": "u" * 32, "version": "2.0",
               "python": "CPython 3.13", "os": "Linux", "arch": "arm64", "stats": '{"demo.h": 1}'}
        store.insert_reports([row, dict(row)])
        assert store.raw_days("us-fixture") == DAYS + [day] and len(store.report_ids("us-fixture")) == 7
        # Schema 5's table of public names exists and is empty.
        assert store.public_keys("us-fixture") == {} and store.add_public_keys("us-fixture", "users", ["demo.h"]) == 1
    finally:
        store.dispose()


def test_the_operators_upgrade_steps_on_a_schema4_store(tmp_path, serve):
    """docs/operators.md, "Upgrading": back up, stop, install the new release, start it."""
    import json
    import subprocess
    import sys

    import httpx

    from collector.tests.support import make_report, post
    from tests.support.venvs import ROOT, SOURCE_PATH

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "telly_autoinst", "collector", *args], cwd=str(ROOT),
                              capture_output=True, text=True, timeout=120,
                              env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONPATH": SOURCE_PATH})

    db_url = restore_sqlite(tmp_path / "collector.sqlite3")
    backup = cli("backup", str(tmp_path / "before-upgrade.backup"), "--db", db_url)
    assert backup.returncode == 0 and "schema version 4" in backup.stdout, backup.stderr
    # The new release migrates at start. (No scheduled job: the fixture's days are past the window.)
    server = serve(db_url, "--publish-interval", "0")
    assert post(server.url, make_report("us-fixture", user="after")).status_code == 200
    stats = httpx.get(f"{server.url}/api/v1/projects/us-fixture/stats",
                      headers={"Authorization": "Bearer fixture-read-token"})
    assert stats.status_code == 200 and stats.json()["project_id"] == "us-fixture"
    server.stop()
    store = store_module.open_store(db_url)
    stored = store.report_ids("us-fixture")
    store.dispose()
    assert len(stored) == 7
    # The way back: the backup, restored, still holds the schema-4 store as it was.
    restored = cli("restore", str(tmp_path / "before-upgrade.backup"), "--db", f"sqlite:///{tmp_path}/back.sqlite3")
    assert restored.returncode == 0 and "schema version 4" in restored.stdout, restored.stderr
    store = store_module.open_store(f"sqlite:///{tmp_path}/back.sqlite3")
    try:
        check_schema4_contents(store)
    finally:
        store.dispose()
    assert [p["project_id"] for p in json.loads(cli("project", "list", "--json", "--db", db_url).stdout)] == [
        "eu-fixture", "us-corporate", "us-fixture"]


def test_a_project_that_published_1000_daily_users_is_large_after_the_upgrade(tmp_path):
    """Until profiles came, every daily release carried features: a project that large keeps them."""
    url = restore_sqlite(tmp_path / "old.sqlite3")
    with sqlite3.connect(tmp_path / "old.sqlite3") as conn:
        conn.execute("UPDATE cells SET value = 1500 WHERE project_id = 'eu-fixture'")
        # An older day beyond the latest 28 published days does not count.
        conn.execute("INSERT INTO cells VALUES ('us-fixture', '2026-09-01', 'dau', '', 90000, 20.0)")
    conn.close()
    store = store_module.open_store(url)
    try:
        profiles = {p["project_id"]: (p["profile"], p["profile_declared"]) for p in store.projects()}
        assert profiles == {"eu-fixture": ("large", False), "us-corporate": ("small", False),
                            "us-fixture": ("small", False)}
    finally:
        store.dispose()
