"""The project registry: registration with a hashed read token, cached lookup, token checks."""

import asyncio
import hashlib
import hmac
import secrets
import time

from starlette.concurrency import run_in_threadpool

from telly_autoinst.errors import ConfigError

from .ingest import project_id_ok
from .store import PROFILES

REGIONS = ("us", "eu")


def _sha256(token):
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_project(store, name, region, project_id=None, epsilon_per_day=1.0, level2_plaintext=False,
                   profile=None):
    """Register a project; return (project_id, read_token). The token is shown once, stored hashed.

    ``level2_plaintext`` is the collector's agreement to store plaintext Level II for this project
    (internal corporate deployments); it cannot be changed later. ``profile`` ("small" or "large")
    is declared by the operator; without it the project starts small and may become large on its own.
    """
    if profile is not None and profile not in PROFILES:
        raise ConfigError(f"--profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    if region not in REGIONS:
        raise ConfigError(f"region must be one of {', '.join(REGIONS)}, got {region!r}")
    if not epsilon_per_day > 0:
        raise ConfigError("--epsilon-per-day must be positive")
    # The region is part of the id, so an id pasted into the wrong region's config is obvious.
    if project_id is None:
        project_id = f"{region}-{secrets.token_hex(12)}"
    if not project_id_ok(project_id):
        # An id that reports cannot name would register a project that can never receive one.
        raise ConfigError(f"--project-id {project_id[:140]!r} is not a project id: use 1 to 128 characters "
                          "of A-Z a-z 0-9 . _ : -")
    if store.project(project_id) is not None:
        raise ConfigError(f"project {project_id!r} is already registered")
    token = secrets.token_urlsafe(32)
    store.create_project(project_id=project_id, name=name[:200], region=region, read_token_sha256=_sha256(token),
                         epsilon_per_day=float(epsilon_per_day),
                         # The column of a per-day cap on re-releases; the ε per day is a total now.
                         epsilon_cap_per_day=float(epsilon_per_day),
                         level2_plaintext=bool(level2_plaintext), profile=profile or "small",
                         profile_declared=profile is not None)
    return project_id, token


def set_profile(store, project_id, profile):
    """Declare the project's profile ("small" or "large"), or give the choice back to the collector
    ("auto": the profile stays as it is, and a small one becomes large at a 4-week boundary when its
    block averaged enough daily users). Applies to the releases made from now on."""
    if profile not in PROFILES + ("auto",):
        raise ConfigError(f"the profile must be one of {', '.join(PROFILES)} or auto, got {profile!r}")
    project = store.project(project_id)
    if project is None:
        raise ConfigError(f"no project {project_id!r} is registered in this database")
    if profile == "auto":
        store.set_profile(project_id, project["profile"], declared=False)
    else:
        store.set_profile(project_id, profile, declared=True)


def rotate_token(store, project_id):
    """Give the project a new read token and return it; the old one stops working at once here,
    and within ``Registry.HIT_SECONDS`` in running servers."""
    token = secrets.token_urlsafe(32)
    if not store.set_read_token(project_id, _sha256(token)):
        raise ConfigError(f"no project {project_id!r} is registered in this database")
    return token


# The stored lengths of a feature key and a version (store.py's cells and raw_reports columns).
_KEY_CHARS, _VERSION_CHARS = 512, 64


def _listing_entries(listing, project_id):
    """The entries of a ``--dry-run --json`` listing that carry ``project_id``."""
    entries = listing.get("distributions") if isinstance(listing, dict) else None
    if not isinstance(entries, list):
        raise ConfigError("the file is not what `python -m telly_autoinst --dry-run --json` prints "
                          "(no \"distributions\" list)")
    return [e for e in entries if isinstance(e, dict) and e.get("project_id") == project_id]


def register_keys(store, project_id, listing, versions=()):
    """Make public the feature keys (and versions) of ``project_id``'s entries in a dry-run listing.

    Returns (feature keys added, versions added). Registering again adds what a new release of the
    package lists; nothing is removed (``unregister_key`` does that). Keys are never taken from reports.
    """
    if store.project(project_id) is None:
        raise ConfigError(f"no project {project_id!r} is registered in this database")
    entries = _listing_entries(listing, project_id)
    if not entries and not versions:
        raise ConfigError(f"the listing has no entry with project_id {project_id!r}; run --dry-run --json "
                          f"where the package is installed, or check its project id")
    keys = [key for entry in entries for key in entry.get("keys") or ()]
    found = list(versions) + [entry["version"] for entry in entries if entry.get("version")]
    for value, limit, what in [(k, _KEY_CHARS, "key") for k in keys] + [(v, _VERSION_CHARS, "version") for v in found]:
        if not isinstance(value, str) or not value.strip() or len(value) > limit:
            raise ConfigError(f"{what} {value!r} is not a string of 1 to {limit} characters")
    return store.add_public_keys(project_id, "users", keys), store.add_public_keys(project_id, "version", found)


def unregister_key(store, project_id, key):
    """Take a registered key (or version) back, e.g. a typo; False if it was not registered."""
    return store.remove_public_key(project_id, key) > 0


def token_matches(project, token):
    return bool(token) and hmac.compare_digest(project["read_token_sha256"], _sha256(token))


class Registry:
    """Project rows by id, cached: ingestion looks a project up on every request."""

    # A miss is remembered briefly, so a flood for an unknown id costs one query per interval.
    _MISS_SECONDS = 1.0
    # A hit is re-read after this long, so a rotated read token (changed by another process)
    # stops opening the dashboard of a running server soon after.
    HIT_SECONDS = 5.0

    def __init__(self, store, clock=time.monotonic):
        self._store, self._clock = store, clock
        self._known = {}  # project_id -> (row, time read)
        self._misses = {}
        self._loading = {}  # project_id -> future of the row being read

    async def get(self, project_id):
        now = self._clock()
        known = self._known.get(project_id)
        if known is not None and now - known[1] < self.HIT_SECONDS:
            return known[0]
        if now - self._misses.get(project_id, -1e9) < self._MISS_SECONDS:
            return None
        # One read per id however many requests arrive while it runs.
        loading = self._loading.get(project_id)
        if loading is None:
            loading = self._loading[project_id] = asyncio.ensure_future(self._load(project_id, now))
            loading.add_done_callback(lambda _done: self._loading.pop(project_id, None))
        return await asyncio.shield(loading)

    async def _load(self, project_id, now):
        project = await run_in_threadpool(self._store.project, project_id)
        if project is None:
            if len(self._misses) > 10000:  # bounded: hostile ids must not grow memory
                self._misses.clear()
            self._misses[project_id] = now
            self._known.pop(project_id, None)
        else:
            self._known[project_id] = (project, now)
        return project
