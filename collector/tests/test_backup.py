"""Backups of a SQLite store: made while the collector serves, restored whole, refused where unsafe."""

import json
import os
import stat
import subprocess
import sys

import pytest

from collector.tests.support import make_report, post
from telly_autoinst_collector.store import open_store
from tests.support.venvs import ROOT, SOURCE_PATH


def _cli(*args, home):
    return subprocess.run([sys.executable, "-m", "telly_autoinst", "collector", *args], cwd=str(ROOT),
                          capture_output=True, text=True, timeout=120,
                          env={"HOME": str(home), "PATH": "/usr/bin:/bin", "PYTHONPATH": SOURCE_PATH})


def test_a_backup_made_while_serving_restores_what_was_committed(tmp_path, serve):
    db_url = f"sqlite:///{tmp_path}/live.sqlite3"
    project_id = json.loads(_cli("project", "create", "demo", "--json", "--db", db_url, home=tmp_path).stdout)[
        "project_id"]
    server = serve(db_url)
    before = [make_report(project_id, user=str(n)) for n in range(30)]
    assert {post(server.url, r).status_code for r in before} == {200}
    backup = tmp_path / "backups" / "collector.backup"
    backup.parent.mkdir()
    done = _cli("backup", str(backup), "--db", db_url, home=tmp_path)  # the server is still running
    assert done.returncode == 0 and "schema version" in done.stdout, done.stderr
    assert stat.S_IMODE(os.stat(backup).st_mode) == 0o600 and not os.path.exists(f"{backup}-wal")
    after = make_report(project_id, user="late")
    assert post(server.url, after).status_code == 200
    again = _cli("backup", str(backup), "--db", db_url, home=tmp_path)
    assert again.returncode == 2 and "exists already" in again.stderr
    server.stop()

    # Restoring over the live store needs --replace, and gives back exactly what the backup held.
    refused = _cli("restore", str(backup), "--db", db_url, home=tmp_path)
    assert refused.returncode == 2 and "--replace" in refused.stderr
    done = _cli("restore", str(backup), "--replace", "--db", db_url, home=tmp_path)
    assert done.returncode == 0, done.stderr
    store = open_store(db_url)
    assert store.report_ids(project_id) == {r["report_id"] for r in before}
    store.dispose()
    # And a collector serves from it.
    server = serve(db_url)
    assert post(server.url, after).status_code == 200


def test_a_fresh_location_is_restored_into(tmp_path):
    db_url = f"sqlite:///{tmp_path}/old.sqlite3"
    assert _cli("project", "create", "demo", "--db", db_url, home=tmp_path).returncode == 0
    assert _cli("backup", str(tmp_path / "b"), "--db", db_url, home=tmp_path).returncode == 0
    restored = tmp_path / "elsewhere" / "new.sqlite3"
    restored.parent.mkdir()
    done = _cli("restore", str(tmp_path / "b"), "--db", f"sqlite:///{restored}", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(os.stat(restored).st_mode) == 0o600
    listed = json.loads(_cli("project", "list", "--json", "--db", f"sqlite:///{restored}", home=tmp_path).stdout)
    assert [p["name"] for p in listed] == ["demo"]


@pytest.mark.parametrize("content", [b"", b"not a database at all" * 100])
def test_restore_refuses_what_is_not_a_collector_store(tmp_path, content):
    bogus = tmp_path / "bogus"
    bogus.write_bytes(content)
    if not content:  # an empty SQLite database: no schema_version table
        import sqlite3

        sqlite3.connect(bogus).close()
    done = _cli("restore", str(bogus), "--db", f"sqlite:///{tmp_path}/x.sqlite3", home=tmp_path)
    assert done.returncode == 2 and "not a collector store" in done.stderr, done.stderr
    assert not (tmp_path / "x.sqlite3").exists()


def test_postgresql_is_pointed_at_pg_dump(tmp_path):
    for command in (["backup", str(tmp_path / "b")], ["restore", str(tmp_path / "b")]):
        done = _cli(*command, "--db", "postgresql://nobody@127.0.0.1:1/none", home=tmp_path)
        assert done.returncode == 2 and "pg_dump" in done.stderr


def _pg_tool(name):
    import shutil

    found = shutil.which(name) or f"/usr/lib/postgresql/15/bin/{name}"
    if not os.path.exists(found):
        pytest.skip(f"needs PostgreSQL's {name}")
    return found


@pytest.mark.postgres
def test_the_guides_pg_dump_and_pg_restore_commands(request, tmp_path):
    """docs/operators.md, "Backups", PostgreSQL: a custom-format dump restored into a database."""
    import secrets

    import psycopg

    from telly_autoinst_collector.registry import create_project

    server = request.getfixturevalue("postgres_url")
    names = [f"telly_dump_{secrets.token_hex(3)}_{n}" for n in ("from", "to")]
    with psycopg.connect(server, autocommit=True) as conn:
        for name in names:
            conn.execute(f"CREATE DATABASE {name}")
    source, target = (server.rsplit("/", 1)[0] + "/" + name for name in names)
    try:
        store = open_store(source)
        project_id, _ = create_project(store, "demo", "us")
        import datetime

        day = datetime.date(2026, 11, 1)
        store.insert_reports([{"project_id": project_id, "report_id": f"{n:032x}", "day": day, "uid": "u" * 32,
                               "version": "1.0", "python": "CPython 3.11", "os": "Linux", "arch": "x86_64",
                               "stats": '{"m.f": 1}'} for n in range(5)])
        store.dispose()
        dump = tmp_path / "telly.dump"
        subprocess.run([_pg_tool("pg_dump"), "--format=custom", f"--file={dump}", source], check=True)
        # Into a store that already holds tables, as --clean expects of a restore over a live one.
        open_store(target).dispose()
        subprocess.run([_pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", f"--dbname={target}",
                        str(dump)], check=True)
        restored = open_store(target)
        assert restored.project(project_id)["name"] == "demo" and len(restored.report_ids(project_id)) == 5
        assert restored.raw_days(project_id) == [day]
        restored.dispose()
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            for name in names:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
