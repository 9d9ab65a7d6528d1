"""The rolling analytics window: client hashes re-keyed on arrival with the day's secret key.

Each project has one random key per UTC day. The stored id is HMAC(key, client hash), so the
stored rows cannot be matched against hashes computed elsewhere, and once a day leaves the
window its raw rows and its key are deleted together (jobs.py): then nobody, the operator
included, can tell whether a given user is in what remains, which is only published aggregates.
"""

import asyncio
import datetime
import hmac
import secrets

import msgspec
from starlette.concurrency import run_in_threadpool

# Days of raw rows kept, at least and by default: a 4-week block (28 days) is released once it is
# complete, so its first day must still be in the window then, with a week to spare for a
# publisher that was down.
MIN_WINDOW_DAYS = 35


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


class Window:
    """Turns Contributions into raw rows keyed by (project, day), with the user id re-keyed."""

    def __init__(self, store, now=utc_now):
        self._store, self._now = store, now
        self._keys = {}  # (project_id, day) -> key, for the current day only
        self._pending = {}  # (project_id, day) -> future of the key being fetched

    async def _key(self, project_id, day):
        key = self._keys.get((project_id, day))
        if key is not None:
            return key
        # One lookup per (project, day) even when many requests arrive together after midnight.
        pending = self._pending.get((project_id, day))
        if pending is None:
            pending = self._pending[(project_id, day)] = asyncio.ensure_future(
                run_in_threadpool(self._store.window_key, project_id, day, secrets.token_bytes(32)))
        try:
            key = await asyncio.shield(pending)
        finally:
            if pending.done():
                self._pending.pop((project_id, day), None)
        if any(cached_day != day for _, cached_day in self._keys):
            # Yesterday's keys must not outlive their rows in memory either.
            self._keys = {k: v for k, v in self._keys.items() if k[1] == day}
        self._keys[(project_id, day)] = key
        return key

    async def row(self, kept):
        """The raw row of a kept report, or None for a report without a Level II id.

        Such a report belongs to no user-day: counted as a user of its own, a person making k of
        them a day would be k privacy units (ε grows with k), and a name only that person uses
        could pass the threshold. It is acknowledged and not stored; docs/privacy.md says so.
        """
        if kept.user is None:
            return None
        day = self._now().date()
        key = self._keys.get((kept.project_id, day)) or await self._key(kept.project_id, day)
        return raw_row(kept, day, key)


def raw_row(kept, day, key):
    """The raw row of a kept report with a Level II id, stored on ``day``, its id re-keyed with ``key``."""
    uid = hmac.digest(key, kept.user.encode("utf-8", "surrogatepass"), "sha256").hex()[:32]
    return {"project_id": kept.project_id, "report_id": kept.report_id, "day": day, "uid": uid,
            "version": kept.version, "python": kept.python, "os": kept.os, "arch": kept.arch,
            "stats": msgspec.json.encode(kept.stats).decode(), "level2_plaintext": kept.plaintext}
