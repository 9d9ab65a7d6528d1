"""Group commit: concurrent requests share transactions; a failed commit fails exactly its requests."""

import asyncio
import threading
import time

import pytest

from telly_autoinst_collector.writer import BatchWriter, Overloaded, StorageFailed


def test_concurrent_submits_share_commits():
    batches = []

    def write(rows):
        time.sleep(0.01)  # a commit takes time; meanwhile the next batch fills
        batches.append(list(rows))

    async def run():
        writer = BatchWriter(write)
        writer.start()
        await asyncio.gather(*(writer.submit([i]) for i in range(500)))
        await writer.stop()

    asyncio.run(run())
    assert sorted(r for b in batches for r in b) == list(range(500))
    assert len(batches) < 100


def test_a_failed_commit_fails_its_requests_and_the_writer_goes_on():
    calls = []

    def write(rows):
        calls.append(rows)
        if len(calls) == 1:
            raise OSError("disk full")

    async def run():
        writer = BatchWriter(write)
        writer.start()
        with pytest.raises(StorageFailed):
            await writer.submit(["lost"])
        await writer.submit(["kept"])
        await writer.stop()

    asyncio.run(run())
    assert calls == [["lost"], ["kept"]]


def test_a_full_queue_refuses_instead_of_growing():
    gate, entered = threading.Event(), threading.Event()

    def write(rows):
        entered.set()
        gate.wait(30)

    async def run():
        writer = BatchWriter(write, max_pending=10)
        writer.start()
        first = asyncio.ensure_future(writer.submit(list(range(10))))
        while not entered.is_set():  # the first batch has left the queue for the writer thread
            await asyncio.sleep(0.01)
        second = asyncio.ensure_future(writer.submit(list(range(10))))
        await asyncio.sleep(0)
        with pytest.raises(Overloaded):
            await writer.submit([1])
        gate.set()
        await asyncio.gather(first, second)
        await writer.stop()

    asyncio.run(run())


def test_rows_refused_in_a_shared_commit_fail_only_their_own_request():
    class DataError(Exception):  # as PEP 249 names it
        pass

    calls = []

    def write(rows):
        calls.append(list(rows))
        time.sleep(0.01)
        if "bad" in rows:
            raise DataError("value too long for type character varying(64)")

    async def run():
        writer = BatchWriter(write, rows_refused=lambda exc: isinstance(exc, DataError))
        writer.start()
        answers = await asyncio.gather(*(writer.submit([row]) for row in ["a", "b", "bad", "c"]),
                                       return_exceptions=True)
        await writer.stop()
        return answers

    answers = asyncio.run(run())
    assert answers[:2] == [None, None] and answers[3] is None and isinstance(answers[2], StorageFailed)
    written = [rows for rows in calls if "bad" not in rows]
    assert sorted(r for rows in written for r in rows) == ["a", "b", "c"]


def test_an_unavailable_database_is_not_retried_row_by_row():
    calls = []

    def write(rows):
        calls.append(list(rows))
        time.sleep(0.01)
        raise OSError("connection refused")

    async def run():
        writer = BatchWriter(write, rows_refused=lambda exc: False)
        writer.start()
        answers = await asyncio.gather(*(writer.submit([row]) for row in range(20)), return_exceptions=True)
        await writer.stop()
        return answers

    assert all(isinstance(a, StorageFailed) for a in asyncio.run(run())) and len(calls) < 20


def test_the_store_tells_refused_rows_from_an_unavailable_database():
    import sqlite3

    import sqlalchemy as sa

    from telly_autoinst_collector.store import rows_refused

    assert rows_refused(sqlite3.IntegrityError()) and rows_refused(sa.exc.DataError("x", {}, Exception()))
    assert not rows_refused(sqlite3.OperationalError("database is locked")) and not rows_refused(OSError())
    try:
        import psycopg
    except ImportError:
        return
    assert rows_refused(psycopg.errors.StringDataRightTruncation()) and not rows_refused(psycopg.OperationalError())
