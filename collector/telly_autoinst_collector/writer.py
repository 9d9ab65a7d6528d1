"""Group commit: requests wait on a shared batch, written in one transaction by one thread.

While one batch commits, the next one fills, so the commit rate adapts to the load and a
request is acknowledged only after the transaction holding its rows is durable.
"""

import asyncio
import collections
import logging
from concurrent.futures import ThreadPoolExecutor

_log = logging.getLogger("telly_autoinst_collector")


class Overloaded(Exception):
    """The queue of rows waiting for a commit is full; the client should retry later."""


class StorageFailed(Exception):
    """The batch holding the request's rows did not commit."""


class BatchWriter:
    """Collects rows from many requests and writes them with ``write(rows)`` in a worker thread."""

    def __init__(self, write, max_batch=5000, max_pending=100000, rows_refused=lambda _exc: False):
        # rows_refused(exc): whether a failed write was refused for the rows it held (a value that
        # does not fit, say), so that the batch's requests are worth writing one by one; an
        # unavailable database is not, as every retry would fail the same way.
        self._write, self._max_batch, self._max_pending = write, max_batch, max_pending
        self._rows_refused = rows_refused
        self._pending = collections.deque()  # (rows, future)
        self._pending_rows = 0
        self._wake = None
        self._task = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="telly-collector-writer")

    def start(self):
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def submit(self, rows):
        """Return once ``rows`` are committed; raise Overloaded or StorageFailed otherwise."""
        if self._pending_rows + len(rows) > self._max_pending:
            raise Overloaded()
        future = asyncio.get_running_loop().create_future()
        self._pending.append((rows, future))
        self._pending_rows += len(rows)
        self._wake.set()
        # Not shielded: if this request is cancelled, the future is too, and the writer skips it
        # (it resolves only futures that are not done); the rows are written all the same.
        await future

    async def _run(self):
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, taken = [], 0
                while self._pending and taken < self._max_batch:
                    rows, future = self._pending.popleft()
                    batch.append((rows, future))
                    taken += len(rows)
                self._pending_rows -= taken
                await self._commit(loop, batch)

    async def _commit(self, loop, batch):
        """Write ``batch`` ([(rows, future)]) in one transaction and resolve its futures.

        When the rows themselves were refused, each request's rows are written alone, so that
        one bad report cannot fail the reports that happened to share its commit.
        """
        rows = [row for part, _ in batch for row in part]
        try:
            await loop.run_in_executor(self._executor, self._write, rows)
        except Exception as exc:  # any driver error: fail this batch's requests, keep serving
            if len(batch) > 1 and self._rows_refused(exc):
                _log.warning("a batch of %d reports was refused (%s); writing its requests one by one",
                             len(rows), type(exc).__name__)
                for part in batch:
                    await self._commit(loop, [part])
                return
            _log.exception("a batch of %d reports was not stored", len(rows))
            for _, future in batch:
                if not future.done():
                    future.set_exception(StorageFailed(type(exc).__name__))
        else:
            for _, future in batch:
                if not future.done():
                    future.set_result(None)

    async def stop(self):
        """Write what is pending, then stop the worker."""
        while self._pending:
            await asyncio.sleep(0.01)
        if self._task:
            self._task.cancel()
        self._executor.shutdown(wait=True)
