"""Scheduled work: release every completed UTC day, ISO week and 4-week block, then delete what has left
the analytics window."""

import datetime

from . import privacy
from .ingest import public_platforms

# One immutable default for both jobs (a call in the signature would hide that it is shared).
_BOUNDS = privacy.Bounds()


def public_names(store, project_id):
    """{metric: names} released without a threshold: the platform vocabulary and what the author registered."""
    public = {metric: set(names) for metric, names in public_platforms().items()}
    for metric, keys in store.public_keys(project_id).items():
        public.setdefault(metric, set()).update(keys)
    return public


def _release(store, project, day, complete, bounds, level="day"):
    return privacy.release(store, project, level, day, complete, bounds, public_names(store, project["project_id"]))


def _release_periods(store, project, today, bounds):
    """Release every complete week and 4-week block that has raw rows and is not released yet.

    A period is released only while all of it is in the window: a day of it released before
    whose raw rows are gone (released and expired before the calendar levels) would be missing
    from its sums. A period whose days' budget releases before the calendar levels spent is
    left out silently: it can never be released, and is no refusal of this run. A block's release
    may make a small project large (privacy.grows) for the releases after it.
    """
    done = []
    project_id = project["project_id"]
    raw = store.raw_days(project_id)
    released = store.release_summary(project_id)
    periods = {(level, privacy.period(level, day)) for level in privacy.LEVELS[1:] for day in raw}
    published = {(r["level"], r["first_day"]) for r in store.period_releases(project_id)}
    for level, (first, last) in sorted(periods, key=lambda p: (p[1][1], privacy.LEVELS.index(p[0]))):
        if last >= today or (level, first) in published:
            continue
        if any(first <= day <= last and day not in raw for day in released):
            continue
        spent = _release(store, project, first, True, bounds, level)
        if spent is not None:  # None: days released before the calendar levels spent their budget
            done.append((project_id, (level, first), spent))
            if level == "block" and privacy.grows(store, project, first):
                store.set_profile(project_id, "large", declared=False, only_from="small")
                project = store.project(project_id)
    return done


def publish(store, project_ids, today, through_now=False, bounds=_BOUNDS):
    """Release each completed day not yet released complete (and today's partial day if asked).

    And each complete week and 4-week block not released yet, after its days and before the days
    after it: a block may change the profile the next days are released with.

    Returns [(project_id, day or (level, first day), (ε, δ) its user-days have spent in total (the
    most spent of a period's), or None when the budget allowed no further release)].
    """
    done = []
    for project_id in project_ids:
        project = store.project(project_id)
        if project is None:
            continue
        released = store.release_summary(project_id)
        for day in store.raw_days(project_id):
            complete = day < today and not released.get(day, (0.0, False))[1]
            if not complete and not (day == today and through_now):
                continue
            done += _release_periods(store, project, day, bounds)  # the periods that ended before it
            project = store.project(project_id) or project
            done.append((project_id, day, _release(store, project, day, complete, bounds)))
        done += _release_periods(store, project, today, bounds)
    return done


def expire(store, project_ids, today, window_days, bounds=_BOUNDS, region=None):
    """Delete raw rows and window keys of days older than the window, after releasing them.

    A day that was never released complete (server down at midnight) is released first, so
    leaving the window never loses a day's numbers; its raw rows go either way. With ``region``
    (every project of that region is in ``project_ids``), whole days are dropped where the
    store can (PostgreSQL partitions) instead of deleted row by row.
    """
    cutoff = today - datetime.timedelta(days=window_days)
    for project_id in project_ids:
        project = store.project(project_id)
        released = store.release_summary(project_id)
        for day in store.raw_days(project_id):
            if day < cutoff and not released.get(day, (0.0, False))[1]:
                _release(store, project, day, True, bounds)
        _release_periods(store, project, today, bounds)
    dropped = store.drop_days_before(cutoff, region) if region is not None else None
    for project_id in project_ids:
        store.expire(project_id, cutoff, rows=dropped is None)
    return cutoff


def maintain(store, region, today, window_days):
    """The server's periodic job for every project of its region."""
    project_ids = store.project_ids(region)
    # Today's and tomorrow's partitions exist before their first report (none are created at midnight).
    store.ensure_partitions({today, today + datetime.timedelta(days=1)})
    published = publish(store, project_ids, today)
    expire(store, project_ids, today, window_days, region=region)
    return published
