"""Storage on SQLite and PostgreSQL: migrations, project scoping, dedupe, expiry, releases."""

import datetime

import pytest
import sqlalchemy as sa

from telly_autoinst.errors import ConfigError
from telly_autoinst_collector import store as store_module

DAY = datetime.date(2026, 11, 1)


def _row(project_id, report_id, day=DAY, uid="u" * 32):
    return {"project_id": project_id, "report_id": report_id, "day": day, "uid": uid, "version": "1.0",
            "python": "CPython 3.11", "os": "Linux", "arch": "x86_64", "stats": '{"m.f": 1}'}


def _project(store, project_id, region="us"):
    store.create_project(project_id=project_id, name=project_id, region=region, read_token_sha256="0" * 64,
                         epsilon_per_day=1.0, epsilon_cap_per_day=4.0)


def test_migrates_a_new_database_to_the_current_version(store, db_url):
    assert store.version() == store_module.SCHEMA_VERSION
    # Opening again finds nothing to do and keeps the data.
    _project(store, "p1")
    again = store_module.open_store(db_url)
    assert again.version() == store_module.SCHEMA_VERSION and again.project("p1")["name"] == "p1"
    again.dispose()


def test_refuses_a_database_from_a_newer_release(store, db_url):
    with store.engine.begin() as conn:
        conn.execute(store_module.schema_version.insert().values(
            version=store_module.SCHEMA_VERSION + 1, applied_at=datetime.datetime.now(datetime.timezone.utc)))
    with pytest.raises(ConfigError, match="newer"):
        store_module.open_store(db_url)


def test_every_table_but_the_version_is_keyed_by_project_id(store):
    inspector = sa.inspect(store.engine)
    tables = set(inspector.get_table_names())
    assert {"projects", "window_keys", "raw_reports", "releases", "cells", "schema_version"} <= tables
    for table in tables - {"schema_version"}:
        primary = inspector.get_pk_constraint(table)["constrained_columns"]
        # Citus needs the distribution column in every primary key.
        assert primary[0] == "project_id", table


def test_duplicate_report_ids_are_stored_once(store):
    _project(store, "p1")
    store.insert_reports([_row("p1", "a" * 32), _row("p1", "a" * 32)])
    store.insert_reports([_row("p1", "a" * 32), _row("p1", "b" * 32)])
    assert store.report_ids("p1") == {"a" * 32, "b" * 32}


def test_queries_see_only_their_project(store):
    _project(store, "p1")
    _project(store, "p2")
    store.insert_reports([_row("p1", "a" * 32), _row("p2", "a" * 32), _row("p2", "b" * 32)])
    assert store.report_ids("p1") == {"a" * 32}
    assert len(list(store.reports_of_day("p2", DAY))) == 2
    store.record_release("p1", DAY, 1.0, True, [{"metric": "dau", "key": "", "value": 5, "scale": 5.0}])
    assert store.published_cells("p2", DAY, DAY) == []
    assert store.release_summary("p2") == {}
    store.expire("p1", DAY + datetime.timedelta(days=1))
    assert store.report_ids("p2") == {"a" * 32, "b" * 32}


def test_window_key_is_created_once_per_day(store):
    first = store.window_key("p1", DAY, b"1" * 32)
    assert store.window_key("p1", DAY, b"2" * 32) == first == b"1" * 32
    assert store.window_key("p1", DAY + datetime.timedelta(days=1), b"3" * 32) == b"3" * 32
    assert store.window_key("p2", DAY, b"4" * 32) == b"4" * 32


def test_expire_deletes_rows_and_keys_of_old_days_together(store):
    later = DAY + datetime.timedelta(days=3)
    store.insert_reports([_row("p1", "a" * 32, DAY), _row("p1", "b" * 32, later)])
    store.window_key("p1", DAY, b"1" * 32)
    store.window_key("p1", later, b"2" * 32)
    store.expire("p1", later)
    assert store.report_ids("p1") == {"b" * 32}
    assert store.key_days("p1") == [later]
    assert store.raw_days("p1") == [later]


def test_a_new_release_replaces_cells_and_adds_its_epsilon(store):
    store.record_release("p1", DAY, 1.0, False, [{"metric": "dau", "key": "", "value": 5, "scale": 5.0},
                                                 {"metric": "calls", "key": "m.f", "value": 9, "scale": 1.0}])
    store.record_release("p1", DAY, 0.5, True, [{"metric": "dau", "key": "", "value": 7, "scale": 5.0}])
    assert store.published_cells("p1", DAY, DAY) == [(DAY, "dau", "", 7, 5.0)]
    assert store.release_summary("p1") == {DAY: (1.5, True)}


def test_public_keys_are_added_listed_and_removed_per_project(store):
    assert store.add_public_keys("p1", "users", ["m.f", "m.g", "m.f"]) == 2
    assert store.add_public_keys("p1", "users", ["m.g", "m.h"]) == 1
    assert store.add_public_keys("p1", "version", ["1.0"]) == 1
    assert store.public_keys("p1") == {"users": ["m.f", "m.g", "m.h"], "version": ["1.0"]}
    assert store.public_keys("p2") == {}
    assert store.remove_public_key("p1", "m.g") == 1 and store.remove_public_key("p1", "m.g") == 0
    assert store.public_keys("p1")["users"] == ["m.f", "m.h"]


def test_project_region_listing(store):
    _project(store, "p1", "us")
    _project(store, "p2", "eu")
    assert store.project_ids("us") == ["p1"] and store.project_ids("eu") == ["p2"]
    assert store.project("nope") is None


def test_rejects_other_database_urls():
    with pytest.raises(ConfigError, match="sqlite:// or postgresql://"):
        store_module.open_store("mysql://x")


def test_a_long_read_does_not_hold_up_writes(store):
    """Publishing a big day streams rows for a while; ingestion must keep committing meanwhile."""
    store.insert_reports([_row("p1", f"{i:032x}") for i in range(20)])
    rows = store.reports_of_day("p1", DAY)
    next(rows)  # a read transaction is now open and positioned mid-result
    store.insert_reports([_row("p1", "f" * 32)])  # would wait for the read on a single lock
    assert "f" * 32 in store.report_ids("p1")
    assert len(list(rows)) == 19


def test_a_later_migration_runs_once_on_an_existing_database(store, db_url, monkeypatch):
    applied = []
    later = store_module.SCHEMA_VERSION + 1

    def to_later(conn):
        applied.append(later)
        conn.execute(sa.text("CREATE TABLE extra_v2 (project_id VARCHAR(128) PRIMARY KEY)"))

    monkeypatch.setattr(store_module, "SCHEMA_VERSION", later)
    monkeypatch.setitem(store_module._MIGRATIONS, later, to_later)
    _project(store, "p1")
    upgraded = store_module.open_store(db_url)
    again = store_module.open_store(db_url)
    assert applied == [later] and upgraded.version() == again.version() == later
    assert upgraded.project("p1") is not None and "extra_v2" in sa.inspect(upgraded.engine).get_table_names()
    with upgraded.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE extra_v2"))
    for opened in (upgraded, again):
        opened.dispose()


def test_schema_4_adds_delta_and_detail_to_the_releases_of_an_older_database(db_url):
    # A database as schema 3 left it: releases without the two columns, one release recorded.
    store_module.open_store(db_url).dispose()
    engine = store_module._engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE releases DROP COLUMN delta"))
        conn.execute(sa.text("ALTER TABLE releases DROP COLUMN detail"))
        conn.execute(sa.text("DELETE FROM schema_version WHERE version >= 4"))
        conn.execute(sa.text("INSERT INTO releases VALUES ('p1', :day, 1, :at, 1.0, :done)"),
                     {"day": DAY, "at": datetime.datetime(2026, 11, 2), "done": True})
    engine.dispose()
    upgraded = store_module.open_store(db_url)
    assert upgraded.version() == store_module.SCHEMA_VERSION
    assert upgraded.release_accounts("p1")[DAY] == {"day": DAY, "epsilon": 1.0, "delta": 0.0, "complete": True,
                                                   "detail": {}}
    upgraded.record_release("p1", DAY, 0.5, True, [], delta=1e-7, detail={"noise": "gaussian"})
    assert upgraded.release_accounts("p1")[DAY]["detail"] == {"noise": "gaussian"}
    assert upgraded.release_summary("p1") == {DAY: (1.5, True)}
    upgraded.dispose()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_checkpoint_moves_the_wal_into_the_database(store):
    store.insert_reports([_row("p1", f"{i:032x}") for i in range(200)])
    busy, log, checkpointed = store.checkpoint()
    assert busy == 0 and log == checkpointed > 0
    assert len(store.report_ids("p1")) == 200


@pytest.mark.parametrize("db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_checkpoint_is_nothing_to_do_on_postgresql(store):
    store.insert_reports([_row("p1", f"{i:032x}") for i in range(200)])
    assert store.checkpoint() is None
    assert len(store.report_ids("p1")) == 200


def test_the_budget_is_checked_in_the_same_transaction(store, db_url):
    import threading

    cell = [{"metric": "dau", "key": "", "value": 1, "scale": 1.0}]
    # Eight publishers race to add the day's first release (each planned from no release): one wins.
    stores = [store_module.open_store(db_url) for _ in range(8)]
    results, start = [], threading.Barrier(8)

    def publish(own):
        start.wait()
        results.append(own.record_release("p1", DAY, 1.0, False, cell, after=0))

    threads = [threading.Thread(target=publish, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]
    assert store.release_summary("p1") == {DAY: (1.0, False)}
    for own in stores:
        own.dispose()


def _partitions(store):
    with store.engine.begin() as conn:
        return sorted(conn.exec_driver_sql(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'raw_reports'::regclass").scalars())


@pytest.mark.parametrize("db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_postgresql_keeps_one_partition_per_day_and_drops_whole_days(store):
    days = [DAY + datetime.timedelta(days=n) for n in range(3)]
    _project(store, "p1")
    _project(store, "p2")
    store.insert_reports([_row(p, f"{p}{n}".ljust(32, "0"), day) for n, day in enumerate(days) for p in ("p1", "p2")])
    assert _partitions(store) == ["raw_reports_p20261101", "raw_reports_p20261102", "raw_reports_p20261103"]
    # A retry of the same report on its day is stored once.
    store.insert_reports([_row("p1", "p10".ljust(32, "0"), days[0])])
    assert len(store.report_ids("p1")) == 3
    for project_id in ("p1", "p2"):
        store.window_key(project_id, days[0], b"1" * 32)
    assert store.drop_days_before(days[2], "us") == days[:2]
    assert _partitions(store) == ["raw_reports_p20261103"]
    assert store.raw_days("p1") == store.raw_days("p2") == [days[2]]
    # A project of another region in the same database: its days are not this server's to drop.
    _project(store, "e1", region="eu")
    assert store.drop_days_before(days[2] + datetime.timedelta(days=1), "us") is None
    assert _partitions(store) == ["raw_reports_p20261103"]
    # Another process creates the same partition: nothing breaks.
    other = store_module.open_store(store.engine.url.render_as_string(hide_password=False))
    other.ensure_partitions({days[2], days[2] + datetime.timedelta(days=1)})
    store.insert_reports([_row("p1", "z" * 32, days[2] + datetime.timedelta(days=1))])
    assert len(_partitions(store)) == 2
    other.dispose()


@pytest.mark.parametrize("db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_a_schema_1_database_is_partitioned_with_its_rows(db_url):
    engine = store_module._engine(db_url)
    with engine.begin() as conn:
        store_module.schema_version.create(conn)
        store_module._migrate_to_1(conn)
        conn.execute(store_module.schema_version.insert().values(version=1, applied_at=datetime.datetime.now()))
        conn.execute(store_module.raw_reports.insert(),
                     [_row("p1", "a" * 32), _row("p1", "b" * 32, DAY.replace(day=2))])
    engine.dispose()
    upgraded = store_module.open_store(db_url)
    assert upgraded.version() == store_module.SCHEMA_VERSION
    assert upgraded.report_ids("p1") == {"a" * 32, "b" * 32}
    assert _partitions(upgraded) == ["raw_reports_p20261101", "raw_reports_p20261102"]
    upgraded.dispose()


def test_expiry_by_the_job_drops_or_deletes_and_keeps_the_window(store):
    from telly_autoinst_collector import jobs

    _project(store, "p1")
    today = DAY + datetime.timedelta(days=10)
    store.insert_reports([_row("p1", "a" * 32, DAY), _row("p1", "b" * 32, today - datetime.timedelta(days=2))])
    store.window_key("p1", DAY, b"1" * 32)
    jobs.expire(store, ["p1"], today, window_days=5, region="us")
    assert store.raw_days("p1") == [today - datetime.timedelta(days=2)]
    assert store.key_days("p1") == []
    assert store.release_summary("p1")[DAY][1]  # released before it left the window


def test_version_2_database_gains_the_plaintext_agreement_switched_off(db_url, monkeypatch):
    # A genuine version-2 database: today's steps 1 and 2, minus what version 3 added.
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 2)
    old = store_module.open_store(db_url)
    with old.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE projects DROP COLUMN level2_plaintext"))
        conn.execute(sa.text("INSERT INTO projects (project_id, name, region, read_token_sha256, epsilon_per_day, "
                             "epsilon_cap_per_day, created_at) VALUES ('old', 'old', 'us', :t, 1, 4, :now)"),
                     {"t": "0" * 64, "now": datetime.datetime.now(datetime.timezone.utc)})
    assert "level2_plaintext" not in sa.inspect(old.engine).get_table_names()
    old.dispose()
    monkeypatch.undo()
    upgraded = store_module.open_store(db_url)
    assert upgraded.version() == store_module.SCHEMA_VERSION == 7
    assert upgraded.project("old")["level2_plaintext"] is False
    assert upgraded.public_keys("old") == {}  # schema 5 follows on
    assert upgraded.period_releases("old") == []  # and schema 6
    assert "level2_plaintext" in sa.inspect(upgraded.engine).get_table_names()
    upgraded.dispose()


def _plain(user, host="h1"):
    return {"user": user, "home": f"/home/{user}", "machine": "m" * 32, "host": host}


def test_plaintext_rows_are_stored_once_grouped_and_expire_with_their_day(store):
    _project(store, "p1")
    _project(store, "p2")
    later = DAY + datetime.timedelta(days=1)
    store.insert_reports([dict(_row("p1", "a" * 32), level2_plaintext=_plain("alice")),
                          dict(_row("p1", "a" * 32), level2_plaintext=_plain("alice")),  # re-delivery
                          dict(_row("p1", "b" * 32, day=later), level2_plaintext=_plain("alice")),
                          dict(_row("p1", "c" * 32), level2_plaintext=_plain("bob", host=None)),
                          dict(_row("p1", "d" * 32), level2_plaintext=None),
                          dict(_row("p2", "e" * 32), level2_plaintext=_plain("carol"))])
    users = store.plaintext_users("p1", DAY, later)
    assert [(u["user"], u["host"], u["reports"], u["days"], u["last_day"]) for u in users] == [
        ("alice", "h1", 2, 2, later), ("bob", None, 1, 1, DAY)]
    assert users[0]["home"] == "/home/alice" and users[0]["machine"] == "m" * 32
    assert store.report_ids("p1") == {"a" * 32, "b" * 32, "c" * 32, "d" * 32}
    assert [u["user"] for u in store.plaintext_users("p1", later, later)] == ["alice"]
    # Whether the raw rows go row by row or as whole days, the plaintext of the day goes with them.
    store.expire("p1", later, rows=False)
    assert [(u["user"], u["reports"]) for u in store.plaintext_users("p1", DAY, later)] == [("alice", 1)]
    assert [u["user"] for u in store.plaintext_users("p2", DAY, later)] == ["carol"]


def test_a_failed_first_batch_leaves_no_connection_that_fails_the_next(store, monkeypatch):
    """A batch that fails in a connection's first transaction (where PostgreSQL creates its temporary
    table) must not leave that connection believing the table exists: every later batch would fail."""
    _project(store, "p1")
    real, failures = store._insert_plaintext, []

    def fail_once(conn, plain):
        if not failures:
            failures.append(1)
            raise RuntimeError("injected: the batch fails after its rows were copied")
        return real(conn, plain)

    monkeypatch.setattr(store, "_insert_plaintext", fail_once)
    with pytest.raises(RuntimeError, match="injected"):
        store.insert_reports([_row("p1", "0" * 32)])
    # Sequential batches take the pool's connections in turn: the failed one comes round again.
    for number in range(1, 13):
        store.insert_reports([_row("p1", f"{number:032x}")])
    assert store.report_ids("p1") == {f"{number:032x}" for number in range(1, 13)}


def test_a_row_too_long_for_its_column_fails_its_batch_only(store):
    _project(store, "p1")
    if store.dialect == "postgresql":  # SQLite does not enforce VARCHAR lengths; ingestion does (test_ingest)
        import psycopg

        with pytest.raises(psycopg.errors.StringDataRightTruncation):  # raised by COPY at the driver
            store.insert_reports([_row("p1", "0" * 32) | {"os": "i\u0307" * 64}])
    for number in range(1, 13):
        store.insert_reports([_row("p1", f"{number:032x}")])
    assert len(store.report_ids("p1")) == 12


def test_plaintext_is_keyed_like_the_raw_rows(store):
    """A retry delivered after midnight is one raw row on SQLite (keyed by report id) and one per
    day on PostgreSQL (keyed by day too): its plaintext Level II is counted as often, never more."""
    _project(store, "p1")
    later = DAY + datetime.timedelta(days=1)
    store.insert_reports([dict(_row("p1", "a" * 32), level2_plaintext=_plain("alice"))])
    store.insert_reports([dict(_row("p1", "a" * 32, day=later), level2_plaintext=_plain("alice"))])
    raw = len(store.raw_days("p1"))
    assert raw == (2 if store.dialect == "postgresql" else 1)
    (alice,) = store.plaintext_users("p1", DAY, later)
    assert (alice["reports"], alice["days"], alice["last_day"]) == (raw, raw, DAY if raw == 1 else later)
