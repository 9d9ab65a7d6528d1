"""Collector fixtures: a fresh store on SQLite and on PostgreSQL, reports, and a real server process."""

import datetime
import os
import re
import secrets
import subprocess
import sys
import time

import pytest

pytest.importorskip("opendp", reason="the collector needs its extra (Python >= 3.10)")

from telly_autoinst_collector import store as store_module  # noqa: E402
from tests.support.venvs import ROOT, SOURCE_PATH  # noqa: E402


class Clock:
    """A controllable UTC clock for the window and the publication schedule."""

    def __init__(self, start=datetime.datetime(2026, 11, 1, 12, 0, tzinfo=datetime.timezone.utc)):
        self.current = start

    def __call__(self):
        return self.current

    def advance(self, **delta):
        self.current += datetime.timedelta(**delta)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture(scope="session")
def pg_database(request):
    """A database of its own for this test session, dropped at the end."""
    import psycopg

    server = request.getfixturevalue("postgres_url")
    name = "telly_collector_" + secrets.token_hex(4)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield server.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _fresh(url):
    """Drop every collector table so that each test migrates from nothing."""
    engine = store_module._engine(url)
    with engine.begin() as conn:
        store_module.metadata.drop_all(conn)
        store_module.schema_version.drop(conn, checkfirst=True)
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """A URL of an empty collector database: a SQLite file, or the session's PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'collector.sqlite3'}"
    return _fresh(request.getfixturevalue("pg_database"))


@pytest.fixture
def store(db_url):
    opened = store_module.open_store(db_url)
    yield opened
    opened.dispose()


class CollectorProcess:
    """`python -m telly_autoinst collector serve` in a subprocess, on a free port."""

    def __init__(self, db_url, home_dir, *args, env=None):
        environ = dict(os.environ, HOME=str(home_dir), PYTHONPATH=SOURCE_PATH, **(env or {}))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "telly_autoinst", "collector", "serve", "--port", "0", "--db", db_url, *args],
            cwd=str(ROOT), env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        match = re.search(r"listening on (http://\S+)", line)
        if not match:
            self.proc.kill()
            raise RuntimeError(f"collector did not start: {line!r} {self.proc.stderr.read()}")
        self.url = match.group(1)
        self._wait_ready()

    def _wait_ready(self):
        import httpx

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("collector never became ready")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.stderr.read()


@pytest.fixture
def serve(tmp_path):
    """Start collectors: ``serve(db_url, *options)``; all are stopped after the test."""
    started = []

    def start(db_url, *args, env=None):
        server = CollectorProcess(db_url, tmp_path, *args, env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


