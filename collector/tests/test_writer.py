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
