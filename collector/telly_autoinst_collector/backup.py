"""Backups of a SQLite store, made and restored with SQLite's online backup API.

A SQLite store in WAL mode is a database file plus its -wal file: copying the file alone while
the collector runs can miss committed reports or copy a torn page. SQLite's backup API copies a
consistent snapshot through a connection instead, so a backup can be made while the collector
serves. PostgreSQL stores are backed up with pg_dump (docs/operators.md says how).
"""

import os
import sqlite3

from telly_autoinst.errors import ConfigError

from .store import SCHEMA_VERSION, sqlite_path

# Pages copied per step: small steps let the serving process write between them.
_PAGES_PER_STEP = 1024


def _file_of(url, what):
    if not url.startswith("sqlite:"):
        raise ConfigError(f"{what} works on a SQLite store; back up PostgreSQL with pg_dump and restore it with "
                          "psql or pg_restore (see the operator's guide)")
    path = sqlite_path(url)
    if path is None:
        raise ConfigError(f"{what} needs a database file, not an in-memory database")
    return path


def _private_copy(source, destination):
    """Copy the database ``source`` (a connection) into a new file ``destination``, mode 0600."""
    partial = destination + ".partial"
    # O_EXCL: never write through a file or link someone else put there; 0600: it holds the raw rows.
    fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    os.close(fd)
    try:
        target = sqlite3.connect(partial)
        try:
            source.backup(target, pages=_PAGES_PER_STEP)
            # A backup file stands alone: no -wal beside it, whatever the source's journal mode.
            target.execute("PRAGMA journal_mode=DELETE")
        finally:
            target.close()
        os.replace(partial, destination)
    except BaseException:
        os.unlink(partial)
        raise


def schema_of(path):
    """The schema version of the collector store in the file ``path``, refusing anything else."""
    if not os.path.isfile(path):
        raise ConfigError(f"{path} does not exist")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise ConfigError(f"{path} is damaged (SQLite's quick_check failed)")
        return conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"{path} is not a collector store ({exc})") from exc
    finally:
        conn.close()


def backup(url, destination):
    """Write a consistent copy of the SQLite store at ``url`` to the new file ``destination``.

    Returns the copy's schema version. The store may be serving meanwhile.
    """
    path = _file_of(url, "backup")
    if not os.path.isfile(path):
        raise ConfigError(f"there is no database at {path}")
    if os.path.lexists(destination):
        raise ConfigError(f"{destination} exists already; back up to a new file")
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        _private_copy(source, destination)
    finally:
        source.close()
    return schema_of(destination)


def restore(backup_file, url, replace=False):
    """Make the SQLite store at ``url`` a copy of ``backup_file``; return the backup's schema version.

    The collector must be stopped meanwhile. An existing store is replaced only with ``replace``.
    A backup made by an older release is migrated when the collector next opens it.
    """
    path = _file_of(url, "restore")
    version = schema_of(backup_file)
    if version is None or version > SCHEMA_VERSION:
        raise ConfigError(f"{backup_file} has schema version {version}; this collector reads up to "
                          f"{SCHEMA_VERSION}: restore it with the release that made it, or a newer one")
    if os.path.lexists(path) and not replace:
        raise ConfigError(f"{path} exists; pass --replace to overwrite it with the backup")
    source = sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)
    try:
        directory = os.path.dirname(os.path.abspath(path))
        staged = os.path.join(directory, f".{os.path.basename(path)}.restoring")
        if os.path.lexists(staged):
            os.unlink(staged)
        _private_copy(source, staged)
    finally:
        source.close()
    # The old store's -wal and -shm belong to the old file: left beside the new one, SQLite would
    # replay them into it.
    for suffix in ("-wal", "-shm"):
        if os.path.lexists(path + suffix):
            os.unlink(path + suffix)
    os.replace(staged, path)
    return version
