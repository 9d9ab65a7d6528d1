"""Storage: SQLAlchemy Core tables, the schema version and its migrations, and every query.

One SQL layer for SQLite (the embedded default) and PostgreSQL (psycopg 3). Every table but
``schema_version`` carries ``project_id``, every key starts with it and every query filters on
it, so each table can be distributed by ``project_id`` on Citus (``schema_version`` becomes a
reference table); docs/collector.md, "Scaling out", gives the commands.
"""

import contextlib
import datetime
import functools
import json
import operator
import os
import sqlite3

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from telly_autoinst._env import home_dir
from telly_autoinst.errors import ConfigError

# Bump with every change to the tables below, and add the step to _MIGRATIONS.
# 3: projects.level2_plaintext and the level2_plaintext table (corporate plaintext Level II).
# 4: releases.delta and releases.detail (the δ of a release and how it was made).
# 5: the public_keys table (names an author registered as public: released without a threshold).
# 6: period_releases and period_cells (the releases of ISO weeks and 4-week blocks).
# 7: projects.profile and projects.profile_declared (what each level's release carries, privacy.py).
SCHEMA_VERSION = 7

# What a project's releases carry (privacy.CARRIES): every new project starts small.
PROFILES = ("small", "large")

# pg_advisory_lock keys: migrations and new partitions (per transaction), background jobs (per session).
_MIGRATION_LOCK = 7406057
_JOB_LOCK = 7406058
_PARTITION_LOCK = 7406059

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version", metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)

projects = sa.Table(
    "projects", metadata,
    sa.Column("project_id", sa.String(128), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("region", sa.String(8), nullable=False),
    # SHA-256 of a 256-bit random token: a slow KDF adds nothing for a secret that is not a password.
    sa.Column("read_token_sha256", sa.String(64), nullable=False),
    # ε of one user-day in total, over every release that contains it (privacy.py).
    sa.Column("epsilon_per_day", sa.Float, nullable=False),
    # Unused since the total budget (it capped re-releases of a day); kept so no migration is needed.
    sa.Column("epsilon_cap_per_day", sa.Float, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # The collector's side of plaintext Level II (`project create --level2-plaintext`); fixed at creation.
    sa.Column("level2_plaintext", sa.Boolean, nullable=False, server_default=sa.false()),
    # Schema 7: one of PROFILES, and whether the operator declared it
    # (`project create --profile`, `project set-profile`); an automatic one may go from small to large.
    sa.Column("profile", sa.String(8), nullable=False, server_default="small"),
    sa.Column("profile_declared", sa.Boolean, nullable=False, server_default=sa.false()),
)

# One HMAC key per project and UTC day; deleted with that day's raw rows when it leaves the window.
window_keys = sa.Table(
    "window_keys", metadata,
    sa.Column("project_id", sa.String(128), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("key", sa.LargeBinary(32), nullable=False),
)

# Raw reports inside the analytics window: only re-keyed ids and the facts that get published.
# On PostgreSQL (schema 2) the table is partitioned by day, one partition per UTC day, named
# raw_reports_pYYYYMMDD, so that a day leaving the window is dropped instead of deleted row by
# row; its primary key is then (project_id, day, report_id), see _migrate_to_2.
raw_reports = sa.Table(
    "raw_reports", metadata,
    sa.Column("project_id", sa.String(128), primary_key=True),
    sa.Column("report_id", sa.String(32), primary_key=True),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("uid", sa.String(32), nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("python", sa.String(48), nullable=False),
    sa.Column("os", sa.String(64), nullable=False),
    sa.Column("arch", sa.String(64), nullable=False),
    sa.Column("stats", sa.Text, nullable=False),
    sa.Index("raw_reports_by_day", "project_id", "day"),
)

# One row per release of a day; the sum per day is the privacy loss of a user-day.
releases = sa.Table(
    "releases", metadata,
    sa.Column("project_id", sa.String(128), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("release", sa.Integer, primary_key=True),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("epsilon", sa.Float, nullable=False),
    sa.Column("complete", sa.Boolean, nullable=False),
    # Schema 4: the release's δ, and how it was made (noise, σ and thresholds per metric, bounds),
    # which the views need for the bands. Earlier releases were pure ε-DP Laplace: 0 and {}.
    sa.Column("delta", sa.Float, nullable=False, server_default="0"),
    sa.Column("detail", sa.Text, nullable=False, server_default="{}"),
)

# The published noisy numbers of the latest release of each day: all that the dashboard reads.
cells = sa.Table(
    "cells", metadata,
    sa.Column("project_id", sa.String(128), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("metric", sa.String(16), primary_key=True),
    sa.Column("key", sa.String(512), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
    sa.Column("scale", sa.Float, nullable=False),
)


# Plaintext Level II of one raw report, only for projects created with --level2-plaintext (and
# only when the author and the user agreed too). Deleted with its day when it leaves the window.
level2_plaintext = sa.Table(
    "level2_plaintext", metadata,
    sa.Column("project_id", sa.String(128), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("report_id", sa.String(32), primary_key=True),
    sa.Column("user", sa.String(256)),
    sa.Column("home", sa.String(1024)),
    sa.Column("machine", sa.String(256)),
    sa.Column("host", sa.String(256)),
)


# Names an author made public (`collector project register-keys`): feature keys from the package's
# `--dry-run --json` listing and package versions. Never filled from reports.
public_keys = sa.Table(
    "public_keys", metadata,
    sa.Column("project_id", sa.String(128), primary_key=True),
    sa.Column("metric", sa.String(16), primary_key=True),  # "users" (a feature key) or "version"
    sa.Column("key", sa.String(512), primary_key=True),
)


# One release of a whole ISO week ("week") or 4-week block ("block"), made once it is complete;
# it spends part of the budget of every user-day in it (privacy.py accounts it with the days').
period_releases = sa.Table(
    "period_releases", metadata,
    sa.Column("project_id", sa.String(128), primary_key=True),
    sa.Column("level", sa.String(8), primary_key=True),
    sa.Column("first_day", sa.Date, primary_key=True),
    sa.Column("last_day", sa.Date, nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("epsilon", sa.Float, nullable=False),
    sa.Column("delta", sa.Float, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
)

# The published noisy numbers of each period release, summed over the period's user-days.
period_cells = sa.Table(
    "period_cells", metadata,
    sa.Column("project_id", sa.String(128), primary_key=True),
    sa.Column("level", sa.String(8), primary_key=True),
    sa.Column("first_day", sa.Date, primary_key=True),
    sa.Column("metric", sa.String(16), primary_key=True),
    sa.Column("key", sa.String(512), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
    sa.Column("scale", sa.Float, nullable=False),
)


def _migrate_to_1(conn):
    for table in (projects, window_keys, raw_reports, releases, cells):
        table.create(conn, checkfirst=True)


_RAW_COLUMNS = ("project_id", "report_id", "day", "uid", "version", "python", "os", "arch", "stats")
_PG_RAW_IN = "telly_raw_in"  # the batch's temporary table, and its flag in a connection's info
_PG_COPY_RAW = f"COPY telly_raw_in ({', '.join(_RAW_COLUMNS)}) FROM STDIN"
_PG_INSERT_RAW = (f"INSERT INTO raw_reports ({', '.join(_RAW_COLUMNS)}) "
                  f"SELECT {', '.join(_RAW_COLUMNS)} FROM telly_raw_in ON CONFLICT DO NOTHING")


def _partition_name(day):
    return f"raw_reports_p{day:%Y%m%d}"


def _create_partition(conn, day):
    conn.exec_driver_sql(
        f"CREATE TABLE IF NOT EXISTS {_partition_name(day)} PARTITION OF raw_reports "
        f"FOR VALUES FROM ('{day.isoformat()}') TO ('{(day + datetime.timedelta(days=1)).isoformat()}')")


def _migrate_to_2(conn):
    """PostgreSQL: raw_reports partitioned by day (SQLite keeps its table; the version is shared).

    A partitioned table's primary key must contain the partition key, so the key becomes
    (project_id, day, report_id): a report is recognised as a retry within its UTC day.
    """
    if conn.dialect.name != "postgresql":
        return
    conn.exec_driver_sql("ALTER TABLE raw_reports RENAME TO raw_reports_v1")
    conn.exec_driver_sql("ALTER INDEX raw_reports_by_day RENAME TO raw_reports_v1_by_day")
    conn.exec_driver_sql("ALTER TABLE raw_reports_v1 RENAME CONSTRAINT raw_reports_pkey TO raw_reports_v1_pkey")
    conn.exec_driver_sql(
        "CREATE TABLE raw_reports (project_id VARCHAR(128) NOT NULL, report_id VARCHAR(32) NOT NULL, "
        "day DATE NOT NULL, uid VARCHAR(32) NOT NULL, version VARCHAR(64) NOT NULL, python VARCHAR(48) NOT NULL, "
        "os VARCHAR(64) NOT NULL, arch VARCHAR(64) NOT NULL, stats TEXT NOT NULL, "
        "CONSTRAINT raw_reports_pkey PRIMARY KEY (project_id, day, report_id)) PARTITION BY RANGE (day)")
    for (day,) in conn.exec_driver_sql("SELECT DISTINCT day FROM raw_reports_v1"):
        _create_partition(conn, day)
    conn.exec_driver_sql("INSERT INTO raw_reports SELECT project_id, report_id, day, uid, version, python, os, "
                         "arch, stats FROM raw_reports_v1")
    conn.exec_driver_sql("DROP TABLE raw_reports_v1")


def _migrate_to_3(conn):
    # A database created at version 3 already has the column (step 1 creates today's projects table).
    if "level2_plaintext" not in {c["name"] for c in sa.inspect(conn).get_columns("projects")}:
        conn.execute(sa.text("ALTER TABLE projects ADD COLUMN level2_plaintext BOOLEAN NOT NULL DEFAULT FALSE"))
    level2_plaintext.create(conn, checkfirst=True)


def _migrate_to_4(conn):
    """Releases record their δ and how they were made (noise, σ, thresholds, bounds)."""
    # A new database got these columns from _migrate_to_1 already (it creates the current tables).
    present = {c["name"] for c in sa.inspect(conn).get_columns("releases")}
    for column in (releases.c.delta, releases.c.detail):
        if column.name not in present:
            kind = column.type.compile(dialect=conn.dialect)
            conn.execute(sa.text(f"ALTER TABLE releases ADD COLUMN {column.name} {kind} NOT NULL "
                                 f"DEFAULT '{column.server_default.arg}'"))


def _migrate_to_5(conn):
    public_keys.create(conn, checkfirst=True)


def _migrate_to_6(conn):
    period_releases.create(conn, checkfirst=True)
    period_cells.create(conn, checkfirst=True)


# The daily users at which a project became large when schema 7 came (privacy.LARGE_DAILY_USERS then):
# a migration step is fixed once released, whatever the constant becomes later.
_LARGE_AT_7 = 1000


def _migrate_to_7(conn):
    """Projects get a profile: large (automatic) if the days they published in their latest 28
    averaged 1,000 daily users or more (their daily releases carried features until now); small otherwise."""
    present = {c["name"] for c in sa.inspect(conn).get_columns("projects")}
    for column in (projects.c.profile, projects.c.profile_declared):
        if column.name not in present:
            kind = column.type.compile(dialect=conn.dialect)
            default = "'small'" if column.name == "profile" else "FALSE"
            conn.execute(sa.text(f"ALTER TABLE projects ADD COLUMN {column.name} {kind} NOT NULL DEFAULT {default}"))
    for project_id, last in conn.execute(sa.select(cells.c.project_id, sa.func.max(cells.c.day))
                                         .where(cells.c.metric == "dau").group_by(cells.c.project_id)).all():
        average = conn.execute(sa.select(sa.func.avg(cells.c.value)).where(
            cells.c.project_id == project_id, cells.c.metric == "dau",
            cells.c.day > last - datetime.timedelta(days=28))).scalar_one()
        if average >= _LARGE_AT_7:
            conn.execute(projects.update().where(projects.c.project_id == project_id).values(profile="large"))


# version -> step; each step runs in its own transaction together with its schema_version row.
_MIGRATIONS = {1: _migrate_to_1, 2: _migrate_to_2, 3: _migrate_to_3, 4: _migrate_to_4, 5: _migrate_to_5,
               6: _migrate_to_6, 7: _migrate_to_7}


def _private_dir(path):
    """Create ``path`` (and missing parents) 0700 whatever the umask; leave existing ones alone."""
    if os.path.isdir(path):
        return
    _private_dir(os.path.dirname(path))
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        return
    os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask


def default_dir():
    """Where the embedded default keeps its files: ~/.telly_autoinst/collector, or None without a home.

    Never the current directory: a service (often started without HOME) and an operator's shell
    would each make a database of their own and never see the other's projects.
    """
    home = home_dir()
    return os.path.join(home, ".telly_autoinst", "collector") if home else None


def default_url(region):
    """The embedded default: one SQLite file per region, so regions never share a store."""
    directory = default_dir()
    if directory is None:
        raise ConfigError("the collector has no database location: HOME is not set; pass --db sqlite:///PATH "
                          "(or postgresql://...), or set TELLY_COLLECTOR_DB")
    _private_dir(directory)
    return "sqlite:///" + os.path.join(directory, f"collector-{region}.sqlite3")


def sqlite_path(url):
    """The file of a sqlite:/// URL, or None for an in-memory database."""
    path = sa.engine.make_url(url).database
    return path if path and path != ":memory:" and not path.startswith("file:") else None


def location(url):
    """Where the store at ``url`` is, for the operator: a SQLite file's absolute path, or the URL
    without its password."""
    if url.startswith("sqlite:"):
        path = sqlite_path(url)
        return os.path.abspath(path) if path else url
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def _private_file(path):
    """Create the database file 0600 before SQLite does (it would use 0644 minus the umask).

    SQLite gives the -wal and -shm files it creates later the mode of the database file itself.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return  # exists already, or cannot be created: SQLite opens it or says why
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def loosened(url):
    """Warnings for a SQLite store that others can read: the raw rows, day keys and token hashes.

    Checks the database, its -wal and -shm files, and the default directory when the store is in it.
    """
    path = sqlite_path(url) if url.startswith("sqlite:") else None
    if path is None:
        return []
    found = []
    candidates = [path, path + "-wal", path + "-shm"]
    directory = os.path.dirname(os.path.abspath(path))
    if default_dir() is not None and directory == os.path.abspath(default_dir()):
        candidates.insert(0, directory)
    for candidate in candidates:
        try:
            mode = os.stat(candidate).st_mode & 0o777
        except OSError:
            continue
        if mode & 0o077:
            want = 0o700 if candidate == directory else 0o600
            found.append(f"{candidate} is mode {mode:o}: others can read the collector's raw data; "
                         f"chmod {want:o} {candidate}")
    return found


def _engine(url, for_writes=True):
    if url.startswith(("postgresql://", "postgres://")):
        # SQLAlchemy's default PostgreSQL driver is psycopg2; we ship psycopg 3.
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("postgresql+psycopg://"):
        # The pid in the application name tells an operator (and the tests) which worker holds what.
        engine = sa.create_engine(url, pool_size=4, max_overflow=4, pool_pre_ping=True,
                                  connect_args={"application_name": f"telly-collector-{os.getpid()}"})

        @sa.event.listens_for(engine, "rollback")
        def _on_rollback(conn):
            # A rollback undoes a CREATE TEMPORARY TABLE made in its transaction (a connection's
            # first batch, see _copy_raw): the connection must no longer count on the table, or
            # every later batch on it fails with UndefinedTable.
            conn.info.pop(_PG_RAW_IN, None)

        return engine
    if not url.startswith("sqlite:"):
        raise ConfigError(f"collector database URL must start with sqlite:// or postgresql://, got {url[:40]!r}")
    path = sqlite_path(url)
    if path is not None:
        _private_file(path)
    # Raw rows reach the driver without SQLAlchemy's per-value processing (insert_reports): the
    # driver itself must store a day as SQLAlchemy's Date type does, ISO text. (Python 3.11's
    # default adapter does the same; 3.12 deprecates the defaults, so it is registered here.)
    sqlite3.register_adapter(datetime.date, datetime.date.isoformat)
    engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Autocommit at the driver so that the "begin" hook below owns transaction start.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before we acknowledge the reports in it (power loss included).
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        # Checkpoints are run by the server every second off the request path (Store.checkpoint);
        # the automatic one, inside whichever commit crosses the threshold, stalls that batch.
        # This large threshold only caps the WAL if the periodic one stops.
        cursor.execute("PRAGMA wal_autocheckpoint=20000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn):
        # Writers: IMMEDIATE takes the write lock up front; a deferred transaction that later
        # writes can fail with SQLITE_BUSY without waiting when another process holds the lock.
        # Readers: deferred, so that under WAL a long read (publishing a day, the dashboard)
        # never holds the write lock that ingestion's group commits need.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if for_writes else "BEGIN")

    return engine


def rows_refused(exc):
    """Whether a failed write was refused for the values it held rather than for the database's state.

    PEP 249 names these DataError (a value out of range or too long) and IntegrityError; drivers
    and SQLAlchemy alike subclass classes of those names.
    """
    return any(cls.__name__ in ("DataError", "IntegrityError") for cls in type(exc).__mro__)


def open_store(url):
    """Connect, apply any pending migrations, and return the Store."""
    writer = _engine(url)
    store = Store(writer, _engine(url, for_writes=False) if writer.dialect.name == "sqlite" else writer)
    store.migrate()
    return store


class Store:
    """All reads and writes of the collector, each filtered by project id."""

    def __init__(self, engine, reader=None):
        self.engine = engine
        self._reader = reader or engine
        self.dialect = engine.dialect.name
        self._insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        self._lock_conn = None
        self._partitions = set()  # days known to have a partition (PostgreSQL)

    def dispose(self):
        self.release_job_lock()
        self.engine.dispose()
        self._reader.dispose()

    def _read(self):
        """A read-only transaction (see _engine: it never blocks the writer on SQLite)."""
        return self._reader.begin()

    # --- schema --------------------------------------------------------------------------
    def migrate(self):
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                # Two processes starting at once must not both run the same migration.
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
            schema_version.create(conn, checkfirst=True)
            current = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0
            if current > SCHEMA_VERSION:
                raise ConfigError(
                    f"the collector database has schema version {current}, newer than this "
                    f"telly_autoinst ({SCHEMA_VERSION}); upgrade telly_autoinst[collector]")
            for version in range(current + 1, SCHEMA_VERSION + 1):
                _MIGRATIONS[version](conn)
                conn.execute(schema_version.insert().values(version=version, applied_at=_now()))

    def version(self):
        with self._read() as conn:
            return conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()

    def job_lock(self):
        """Whether this process runs the background jobs; on PostgreSQL, only the holder of a lock.

        Several `serve` workers (or servers) can share one PostgreSQL database; the first to ask
        takes a session-level advisory lock on a connection it keeps, and the others get False
        until that connection ends (its process died or the database restarted).
        """
        if self.dialect != "postgresql":
            return True  # a SQLite store has one serving process
        if self._lock_conn is not None:
            try:
                self._lock_conn.exec_driver_sql("SELECT 1")
                return True
            except sa.exc.DBAPIError:
                self.release_job_lock()  # the connection (and with it the lock) is gone
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        if conn.execute(sa.select(sa.func.pg_try_advisory_lock(_JOB_LOCK))).scalar():
            self._lock_conn = conn
            return True
        conn.close()
        return False

    def release_job_lock(self):
        if self._lock_conn is not None:
            with contextlib.suppress(sa.exc.DBAPIError):
                self._lock_conn.close()
            self._lock_conn = None
        self._partitions = set()  # days known to have a partition (PostgreSQL)

    def checkpoint(self):
        """Copy committed WAL pages into the SQLite database without waiting for anyone.

        Returns SQLite's (busy, WAL pages, pages checkpointed); None on PostgreSQL.
        """
        if self.dialect == "sqlite":
            # Outside any transaction: inside one, SQLite refuses to checkpoint ("table is locked").
            raw = self._reader.raw_connection()
            try:
                return tuple(raw.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())
            finally:
                raw.close()
        return None

    # --- projects ------------------------------------------------------------------------
    def create_project(self, **row):
        with self.engine.begin() as conn:
            conn.execute(projects.insert().values(created_at=_now(), **row))

    def set_profile(self, project_id, profile, declared, only_from=None):
        """Set the project's profile; False if there is no such project (or, with ``only_from``, its
        profile is not that one or was declared: an automatic switch never overrides an operator's)."""
        query = projects.update().where(projects.c.project_id == project_id)
        if only_from is not None:
            query = query.where(projects.c.profile == only_from, projects.c.profile_declared == sa.false())
        with self.engine.begin() as conn:
            return conn.execute(query.values(profile=profile, profile_declared=declared)).rowcount == 1

    def set_read_token(self, project_id, read_token_sha256):
        """Replace the project's read-token hash; False if there is no such project."""
        with self.engine.begin() as conn:
            return conn.execute(projects.update().where(projects.c.project_id == project_id)
                                .values(read_token_sha256=read_token_sha256)).rowcount == 1

    def project(self, project_id):
        """The project's row as a dict, or None."""
        with self._read() as conn:
            row = conn.execute(sa.select(projects).where(projects.c.project_id == project_id)).mappings().first()
        return dict(row) if row else None

    def projects(self):
        """Every project's row but its token hash, by project id."""
        columns = [c for c in projects.columns if c.name != "read_token_sha256"]
        with self._read() as conn:
            return [dict(row) for row in conn.execute(sa.select(*columns).order_by(projects.c.project_id)).mappings()]

    def delete_project(self, project_id):
        """Delete a project and every row stored for it; return the number of rows deleted per table.

        Rows are deleted even when the project row is gone already: a running server keeps a
        project cached for a few seconds (Registry.HIT_SECONDS) and may store reports meanwhile,
        which deleting again removes.
        """
        # Every table but schema_version is keyed by project (see the module docstring); projects last.
        tables = [t for t in metadata.sorted_tables if t is not projects and "project_id" in t.c] + [projects]
        with self.engine.begin() as conn:
            return {table.name: conn.execute(table.delete().where(table.c.project_id == project_id)).rowcount
                    for table in tables}

    def project_ids(self, region):
        with self._read() as conn:
            return list(conn.execute(
                sa.select(projects.c.project_id).where(projects.c.region == region)
                .order_by(projects.c.project_id)).scalars())

    # --- window keys and raw reports -----------------------------------------------------
    def window_key(self, project_id, day, candidate):
        """The key of (project, day), storing ``candidate`` if the day has none yet."""
        with self.engine.begin() as conn:
            conn.execute(self._insert(window_keys).values(project_id=project_id, day=day, key=candidate)
                         .on_conflict_do_nothing())
            return conn.execute(sa.select(window_keys.c.key).where(
                window_keys.c.project_id == project_id, window_keys.c.day == day)).scalar_one()

    def insert_reports(self, rows):
        """Store raw rows in one transaction; a report id seen before is dropped silently."""
        if not rows:
            return
        # Rows of agreed plaintext projects only; every other row has None here (or no such key).
        plain = [dict(r["level2_plaintext"], project_id=r["project_id"], report_id=r["report_id"], day=r["day"])
                 for r in rows if r.get("level2_plaintext")]
        if self.dialect == "postgresql":
            self.ensure_partitions({row["day"] for row in rows})
            with self.engine.begin() as conn:
                self._copy_raw(conn, rows)
                self._insert_plaintext(conn, plain)
            return
        sql, values = self._insert_raw
        params = [values(r) for r in rows]  # day: see the adapter registered in _engine
        with self.engine.begin() as conn:
            # The statement is compiled by SQLAlchemy once; executing it at driver level skips the
            # per-row parameter processing that dominated the cost of a batch (ingestion hot path).
            conn.exec_driver_sql(sql, params)
            self._insert_plaintext(conn, plain)

    def _insert_plaintext(self, conn, plain):
        if plain:
            conn.execute(self._insert_plain, plain)

    @functools.cached_property
    def _insert_plain(self):
        """Plaintext Level II of a report, kept only if its raw row was kept in the same day.

        So it is keyed like the raw rows: on SQLite a retry across midnight (a report id stored
        the day before) adds nothing, as it adds no raw row. Runs after the raw rows' insert, in
        its transaction.
        """
        names = [column.name for column in level2_plaintext.columns]
        values = [sa.bindparam(name, type_=level2_plaintext.c[name].type) for name in names]
        raw = raw_reports.c
        kept = sa.exists().where(raw.project_id == sa.bindparam("project_id"),
                                 raw.report_id == sa.bindparam("report_id"), raw.day == sa.bindparam("day"))
        insert = self._insert(level2_plaintext).from_select(names, sa.select(*values).where(kept))
        return insert.on_conflict_do_nothing()

    @staticmethod
    def _copy_raw(conn, rows):
        """PostgreSQL: COPY the batch into a temporary table, then insert what is new from it.

        COPY cannot skip duplicates itself, hence the second step. It costs the collector a
        quarter of the CPU of executemany (6 against 16-24 us a row), whose parameters were
        adapted row by row in Python; an INSERT from unnest() of arrays cost more still.
        """
        dbapi = conn.connection
        cursor = dbapi.driver_connection.cursor()
        if _PG_RAW_IN not in dbapi.info:
            # Per connection; emptied by each commit. The flag is forgotten by any rollback (see
            # _engine), which takes the table away too if this transaction created it.
            cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {_PG_RAW_IN} "
                           "(LIKE raw_reports INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
            dbapi.info[_PG_RAW_IN] = True
        with cursor.copy(_PG_COPY_RAW) as copy:
            for row in rows:
                copy.write_row([row[name] for name in _RAW_COLUMNS])
        cursor.execute(_PG_INSERT_RAW)

    def ensure_partitions(self, days):
        """Create the raw_reports partitions of ``days`` that do not exist yet (PostgreSQL only)."""
        missing = set(days) - self._partitions
        if not missing or self.dialect != "postgresql":
            return
        with self.engine.begin() as conn:
            # Serialized: two workers creating the same partition at once would collide in the catalog.
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PARTITION_LOCK)))
            for day in sorted(missing):
                _create_partition(conn, day)
        self._partitions |= missing

    def _partition_days(self, conn):
        names = conn.exec_driver_sql(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'raw_reports'::regclass").scalars()
        return sorted(datetime.datetime.strptime(name[len("raw_reports_p"):], "%Y%m%d").date() for name in names)

    def drop_days_before(self, before_day, region):
        """Drop whole days of raw rows before ``before_day``: PostgreSQL partitions, for every project.

        Returns the days dropped, or None when this store cannot (SQLite, or a PostgreSQL database
        that also holds another region's projects, whose days this server does not release):
        then expire() deletes per project.
        """
        if self.dialect != "postgresql":
            return None
        with self.engine.begin() as conn:
            foreign = conn.execute(sa.select(projects.c.project_id).where(projects.c.region != region).limit(1))
            if foreign.first() is not None:
                return None
            dropped = [day for day in self._partition_days(conn) if day < before_day]
            for day in dropped:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_partition_name(day)}")
        self._partitions -= set(dropped)
        return dropped

    @functools.cached_property
    def _insert_raw(self):
        """SQLite's INSERT, compiled once, and a C getter of a row's values in its order."""
        compiled = self._insert(raw_reports).on_conflict_do_nothing().compile(
            dialect=self.engine.dialect, column_keys=[c.name for c in raw_reports.columns])
        return str(compiled), operator.itemgetter(*compiled.positiontup)

    def reports_of_day(self, project_id, day):
        """Yield (uid, version, python, os, arch, stats) of a day's raw rows, streamed in chunks."""
        columns = [raw_reports.c[name] for name in ("uid", "version", "python", "os", "arch", "stats")]
        with self._read() as conn:
            # yield_per: a busy day has millions of rows; never hold them all in memory.
            result = conn.execution_options(yield_per=5000).execute(sa.select(*columns).where(
                raw_reports.c.project_id == project_id, raw_reports.c.day == day))
            for row in result:
                yield tuple(row)

    def raw_days(self, project_id):
        """Days that still have raw rows, oldest first."""
        with self._read() as conn:
            return list(conn.execute(sa.select(raw_reports.c.day).where(raw_reports.c.project_id == project_id)
                                     .group_by(raw_reports.c.day).order_by(raw_reports.c.day)).scalars())

    def report_ids(self, project_id):
        with self._read() as conn:
            return set(conn.execute(sa.select(raw_reports.c.report_id)
                                    .where(raw_reports.c.project_id == project_id)).scalars())

    def key_days(self, project_id):
        with self._read() as conn:
            return list(conn.execute(sa.select(window_keys.c.day).where(window_keys.c.project_id == project_id)
                                     .order_by(window_keys.c.day)).scalars())

    def expire(self, project_id, before_day, rows=True):
        """Delete raw rows (unless their days were dropped whole), window keys and plaintext Level II of days
        before ``before_day``."""
        with self.engine.begin() as conn:
            if rows:
                conn.execute(raw_reports.delete().where(raw_reports.c.project_id == project_id,
                                                        raw_reports.c.day < before_day))
            conn.execute(window_keys.delete().where(window_keys.c.project_id == project_id,
                                                    window_keys.c.day < before_day))
            conn.execute(level2_plaintext.delete().where(level2_plaintext.c.project_id == project_id,
                                                         level2_plaintext.c.day < before_day))

    def plaintext_users(self, project_id, first_day, last_day, limit=500):
        """Plaintext Level II seen in [first_day, last_day], one dict per distinct (user, home, machine, host).

        Each carries its number of reports, of days seen and its last day, most reports first.
        Only projects created with --level2-plaintext ever have rows here.
        """
        t = level2_plaintext.c
        identity = (t.user, t.home, t.machine, t.host)
        query = (sa.select(*identity, sa.func.count().label("reports"),
                           sa.func.count(sa.distinct(t.day)).label("days"), sa.func.max(t.day).label("last_day"))
                 .where(t.project_id == project_id, t.day >= first_day, t.day <= last_day)
                 .group_by(*identity).order_by(sa.desc("reports"), *identity).limit(limit))
        with self._read() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    # --- public names --------------------------------------------------------------------
    def add_public_keys(self, project_id, metric, keys):
        """Register ``keys`` of ``metric`` as public; returns how many were not registered before."""
        keys = sorted(set(keys))
        if not keys:
            return 0
        with self.engine.begin() as conn:
            before = conn.execute(sa.select(sa.func.count()).where(
                public_keys.c.project_id == project_id, public_keys.c.metric == metric)).scalar_one()
            conn.execute(self._insert(public_keys).on_conflict_do_nothing(),
                         [{"project_id": project_id, "metric": metric, "key": key} for key in keys])
            after = conn.execute(sa.select(sa.func.count()).where(
                public_keys.c.project_id == project_id, public_keys.c.metric == metric)).scalar_one()
        return after - before

    def public_keys(self, project_id):
        """{metric: sorted keys} registered as public for the project."""
        query = (sa.select(public_keys.c.metric, public_keys.c.key).where(public_keys.c.project_id == project_id)
                 .order_by(public_keys.c.metric, public_keys.c.key))
        found = {}
        with self._read() as conn:
            for metric, key in conn.execute(query):
                found.setdefault(metric, []).append(key)
        return found

    def remove_public_key(self, project_id, key):
        """Unregister ``key`` (of any metric); returns how many rows went."""
        with self.engine.begin() as conn:
            return conn.execute(public_keys.delete().where(public_keys.c.project_id == project_id,
                                                           public_keys.c.key == key)).rowcount

    # --- releases and published cells ----------------------------------------------------
    def release_summary(self, project_id):
        """{day: (epsilon spent on the day, complete day released?)}."""
        query = (sa.select(releases.c.day, sa.func.sum(releases.c.epsilon),
                           sa.func.max(sa.cast(releases.c.complete, sa.Integer)))
                 .where(releases.c.project_id == project_id).group_by(releases.c.day))
        with self._read() as conn:
            return {day: (float(eps), bool(done)) for day, eps, done in conn.execute(query)}

    def releases_by_day(self, project_id, day=None):
        """{day: [{epsilon, delta, complete, detail}, ... in release order]}, of one ``day`` if given."""
        query = (sa.select(releases.c.day, releases.c.epsilon, releases.c.delta, releases.c.complete,
                           releases.c.detail)
                 .where(releases.c.project_id == project_id).order_by(releases.c.day, releases.c.release))
        if day is not None:
            query = query.where(releases.c.day == day)
        by_day = {}
        with self._read() as conn:
            for row_day, epsilon, delta, complete, detail in conn.execute(query):
                by_day.setdefault(row_day, []).append({"epsilon": float(epsilon), "delta": float(delta),
                                                       "complete": bool(complete), "detail": json.loads(detail)})
        return by_day

    def day_releases(self, project_id, day):
        """The releases of one day, in order (see releases_by_day)."""
        return self.releases_by_day(project_id, day).get(day, [])

    def latest_release_detail(self, project_id):
        """How the latest release of the project was made (its detail), or None before any release."""
        query = (sa.select(releases.c.detail).where(releases.c.project_id == project_id)
                 .order_by(releases.c.published_at.desc(), releases.c.day.desc(), releases.c.release.desc()).limit(1))
        with self._read() as conn:
            detail = conn.execute(query).scalar()
        return None if detail is None else json.loads(detail)

    def release_accounts(self, project_id):
        """{day: {day, epsilon, delta (summed over the day's releases), complete, detail (latest release)}}."""
        accounts = {}
        for day, day_releases in self.releases_by_day(project_id).items():
            accounts[day] = {"day": day, "epsilon": sum(r["epsilon"] for r in day_releases),
                             "delta": sum(r["delta"] for r in day_releases),
                             "complete": any(r["complete"] for r in day_releases),
                             "detail": day_releases[-1]["detail"]}
        return accounts

    def record_release(self, project_id, day, epsilon, complete, new_cells, delta=0.0, detail=None, after=None):
        """Replace the day's published cells with a new release and account it, atomically.

        Returns False, writing nothing, when ``after`` (the number of releases of the day the caller
        planned its budget from) is no longer that number: the check and the write are one
        transaction, so two publishers at once cannot both spend the day's remaining budget.
        """
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                # SQLite's BEGIN IMMEDIATE already serializes writers; PostgreSQL needs a lock.
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(project_id))))
            number = conn.execute(sa.select(sa.func.count()).where(
                releases.c.project_id == project_id, releases.c.day == day)).scalar_one()
            if after is not None and number != after:
                return False
            conn.execute(releases.insert().values(project_id=project_id, day=day, release=number + 1,
                                                  published_at=_now(), epsilon=epsilon, complete=complete,
                                                  delta=delta, detail=json.dumps(detail or {})))
            conn.execute(cells.delete().where(cells.c.project_id == project_id, cells.c.day == day))
            if new_cells:
                conn.execute(cells.insert(), [dict(c, project_id=project_id, day=day) for c in new_cells])
        return True

    def published_cells(self, project_id, first_day, last_day):
        """Published (day, metric, key, value, scale) rows of the days in [first_day, last_day]."""
        query = (sa.select(cells.c.day, cells.c.metric, cells.c.key, cells.c.value, cells.c.scale)
                 .where(cells.c.project_id == project_id, cells.c.day >= first_day, cells.c.day <= last_day)
                 .order_by(cells.c.day))
        with self._read() as conn:
            return [tuple(r) for r in conn.execute(query)]

    def record_period_release(self, project_id, level, first_day, last_day, epsilon, delta, detail, new_cells):
        """Store the one release of a period and its cells; False, writing nothing, if it exists already."""
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(project_id))))
            exists = conn.execute(sa.select(sa.func.count()).where(
                period_releases.c.project_id == project_id, period_releases.c.level == level,
                period_releases.c.first_day == first_day)).scalar_one()
            if exists:
                return False
            conn.execute(period_releases.insert().values(
                project_id=project_id, level=level, first_day=first_day, last_day=last_day, published_at=_now(),
                epsilon=epsilon, delta=delta, detail=json.dumps(detail)))
            if new_cells:
                conn.execute(period_cells.insert(), [dict(c, project_id=project_id, level=level, first_day=first_day)
                                                     for c in new_cells])
        return True

    def period_releases(self, project_id):
        """[{level, first_day, last_day, epsilon, delta, detail}] of the project's week and block releases."""
        t = period_releases.c
        query = (sa.select(t.level, t.first_day, t.last_day, t.epsilon, t.delta, t.detail)
                 .where(t.project_id == project_id).order_by(t.first_day, t.level))
        with self._read() as conn:
            return [{"level": level, "first_day": first, "last_day": last, "epsilon": float(epsilon),
                     "delta": float(delta), "detail": json.loads(detail)}
                    for level, first, last, epsilon, delta, detail in conn.execute(query)]

    def published_period_cells(self, project_id, level, first_day, last_day):
        """Published (first_day, metric, key, value, scale) of ``level`` periods starting in [first_day, last_day]."""
        t = period_cells.c
        query = (sa.select(t.first_day, t.metric, t.key, t.value, t.scale)
                 .where(t.project_id == project_id, t.level == level, t.first_day >= first_day,
                        t.first_day <= last_day).order_by(t.first_day))
        with self._read() as conn:
            return [tuple(r) for r in conn.execute(query)]


def _now():
    return datetime.datetime.now(datetime.timezone.utc)
