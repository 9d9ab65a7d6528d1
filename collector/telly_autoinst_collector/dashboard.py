"""Read-only views of the published numbers: the JSON API and the server-rendered dashboard.

Both read only the stored noisy cells of released days (never raw reports), through the same
``stats`` function, so the page and the API always show the same numbers. Every number comes
with the half-width of its 95% noise interval, computed from the noise of the cells it sums (the
noise only: the bias of bounding user-days is stated beside it, not in it). A number under
``min_group`` is shown as "fewer than N" with its band rather than hidden: the noisy number is
public already, so hiding it would add no privacy, only take away that something is there.
The one exception is the users table of a project created with ``--level2-plaintext`` (see
``_plaintext_users``).
"""

import datetime
import json
import math
import os
import urllib.parse

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse

from . import privacy
from .registry import token_matches

_HERE = os.path.dirname(os.path.abspath(__file__))
_TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(_HERE, "templates")),
                                autoescape=True, trim_blocks=True, lstrip_blocks=True)
_TOP = 15
# The page's views: (days, label). 7 and 28 are the latest complete week and 4-week block.
_PERIODS = ((7, "latest week"), (28, "latest 4 weeks"), (30, "30 days"), (90, "90 days"))
# The page runs only our own vendored script; no other origin can be reached from it.
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
# Inside <script type="application/json"> the HTML parser still looks for "</script" and "<!--";
# escaping every <, > and & (and the two line separators JavaScript once rejected) as JSON \u
# escapes keeps any stored name from ending or commenting out the block.
_SCRIPT_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026",
                   0x2028: "\\u2028", 0x2029: "\\u2029"}


def script_json(data):
    """JSON safe to embed in an HTML <script> data block, whatever strings ``data`` holds."""
    return json.dumps(data, ensure_ascii=False).translate(_SCRIPT_ESCAPES)


def _noise(detail):
    return detail.get("noise", "laplace")  # releases before schema 2 used the Laplace mechanism


def _total(cells, periodic=None, days=0):
    """Sum of noisy (value, noise kind, scale) cells, clamped at 0 for display, with its 95% half-width.

    ``periodic``: (sum, variance) estimates of the same sum from week and block releases. They
    combine with the cells' sum by inverse variance, the unbiased mix of least variance; the
    cells' sum takes part only when every one of the view's ``days`` released days has a cell
    (a name the daily releases did not publish on a day would bias it down).
    """
    if not periodic:
        value = sum(v for v, _, _ in cells)
        return max(0, value), privacy.half_width((kind, scale) for _, kind, scale in cells)
    estimates = list(periodic)
    if cells and len(cells) == days:
        estimates.append((sum(v for v, _, _ in cells), _variance(cells)))
    precision = sum(1 / max(v, 1e-12) for _, v in estimates)
    value = sum(x / max(v, 1e-12) for x, v in estimates) / precision
    return max(0, round(value)), privacy.half_width([("gaussian", math.sqrt(1 / precision))])


def _variance(cells):
    """Variance of the noise of a sum of cells: σ² of a Gaussian, 2b² of a Laplace cell."""
    return sum(scale * scale if kind == "gaussian" else 2 * scale * scale for _, kind, scale in cells)


def _periodic(store, project_id, first, last):
    """{metric: {key: [(sum, variance)]}} from the week and 4-week releases that tile [first, last] exactly.

    A level counts only when every period of it in the view is released and publishes the name.
    """
    found = {}
    length = (last - first).days + 1
    tiles = {"week": [first + datetime.timedelta(days=7 * n) for n in range(length // 7)]
             if first.isoweekday() == 1 and length % 7 == 0 else [],
             "block": [first] if privacy.period("block", first) == (first, last) else []}
    for level, starts in tiles.items():
        if not starts:
            continue
        by_start = {}
        for start, metric, key, value, scale in store.published_period_cells(project_id, level, first, last):
            by_start.setdefault(start, {})[(metric, key)] = (int(value), float(scale) ** 2)
        if sorted(by_start) != starts:
            continue
        for name in set.intersection(*(set(cells) for cells in by_start.values())):
            metric, key = name
            total = sum(cells[name][0] for cells in by_start.values())
            variance = sum(cells[name][1] for cells in by_start.values())
            found.setdefault(metric, {}).setdefault(key, []).append((total, variance))
    return found


def _average(entries):
    """Mean daily users over released days, and its 95% half-width (noise of the mean of the days)."""
    if not entries:
        return None
    value = sum(e["raw"] for e in entries) / len(entries)
    band = privacy.half_width((e["noise"], e["scale"]) for e in entries) / len(entries)
    return {"value": max(0, round(value)), "band": max(1, round(band)), "days": len(entries),
            "first_day": entries[0]["day"], "last_day": entries[-1]["day"]}


def _small(value, min_group):
    """None for a value under ``min_group``: shown as "fewer than N" with its band (see the module docstring)."""
    return value if value >= min_group else None


def _breakdown(table, min_group, periodic=None, days=0):
    """Rows {key, users, band, fewer_than} summed over days, largest first; users None under ``min_group``.

    A row whose noisy total is 0 or less is left out (registered and platform names are released
    every day, used or not): listing it would say nothing. ``periodic`` and ``days``: see _total.
    """
    periodic = periodic or {}
    rows = []
    for key in set(table) | set(periodic):
        users, band = _total(table.get(key, []), periodic.get(key), days)
        if users == 0:
            continue  # nothing to say: public names nobody used (all of them are released daily)
        rows.append((users, {"key": key, "users": _small(users, min_group), "band": band, "fewer_than": min_group}))
    rows.sort(key=lambda r: (-r[0], r[1]["key"]))
    return {"rows": [row for _, row in rows]}


def _plaintext_users(store, project, first, today):
    """The users table of a project created with --level2-plaintext; None for every other project.

    The one view that reads raw identities instead of published noisy cells: the author, the
    user and this project all agreed to it (internal corporate deployments), and the rows still
    leave with their day's raw reports at the end of the window.
    """
    if not project.get("level2_plaintext"):
        return None
    rows = store.plaintext_users(project["project_id"], first, today)
    return {"users": [dict(r, last_day=r["last_day"].isoformat()) for r in rows]}


def period(today, days):
    """(first, last) day of the view: the latest complete ISO week for 7, 4-week block for 28.

    Any other number of days is the ``days`` days ending ``today`` (today's partial day included).
    """
    if days in (7, 28):  # the period before the one today is in (not complete yet)
        level = "week" if days == 7 else "block"
        return privacy.period(level, privacy.period(level, today)[0] - datetime.timedelta(days=1))
    return today - datetime.timedelta(days=days - 1), today


def _schedule(project, accounts, today):
    """When a small project's numbers first come: the day after its first complete ISO week and 4-week block.

    Counted from its first released day (its creation day before any): a week's release brings
    feature users, a block's the full table (calls, versions, Python, OS, architecture). None
    once that day has come, and for a large project (its days carry everything).
    """
    if project["profile"] == "large":
        return {"features_from": None, "full_table_from": None}
    start = min(accounts, default=project["created_at"].date())
    found = {}
    for level, name in (("week", "features_from"), ("block", "full_table_from")):
        first, last = privacy.period(level, start)
        if first < start:  # the period had begun before the project's first day: the next one
            first, last = privacy.period(level, last + datetime.timedelta(days=1))
        comes = last + datetime.timedelta(days=1)
        found[name] = comes.isoformat() if comes > today else None
    return found


def default_days(store, project, today):
    """The page's view when no ``days`` is asked for: the one the project's releases fill.

    30 days for a large project (its days carry everything). For a small one, whose days carry
    daily users only: the latest complete 4-week block once it is released, else the latest
    complete week once it is, else 30 days. So a new project's page shows daily users from its
    first day, feature users after its first complete week, the full table after its first block.
    """
    if project["profile"] == "large":
        return 30
    released = {(r["level"], r["first_day"]) for r in store.period_releases(project["project_id"])}
    for days, level in ((28, "block"), (7, "week")):
        if (level, period(today, days)[0]) in released:
            return days
    return 30


def stats(store, project, today, days, min_group, window_days):
    """The published numbers of ``project`` for the view of ``days`` days (see ``period``)."""
    project_id = project["project_id"]
    first, last = period(today, days)
    accounts = store.release_accounts(project_id)
    # The cards look back 30 days whatever the period shown below them.
    since = min(first, today - datetime.timedelta(days=29))
    per_day = {}
    for day, metric, key, value, scale in store.published_cells(project_id, since, today):
        noise = _noise(accounts.get(day, {}).get("detail", {}))
        per_day.setdefault(day, {}).setdefault(metric, {})[key] = (int(value), noise, float(scale))
    released = sorted(d for d in per_day if "" in per_day[d].get("dau", {}))
    entries = []
    for day in released:
        value, noise, scale = per_day[day]["dau"][""]
        entries.append({"day": day.isoformat(), "raw": value, "noise": noise, "scale": scale,
                        "partial": not accounts.get(day, {}).get("complete", True)})
    dau = []
    for entry in entries:
        if not first.isoformat() <= entry["day"] <= last.isoformat():
            continue
        value = max(0, entry["raw"])
        band = privacy.half_width([(entry["noise"], entry["scale"])])
        shown = value >= min_group
        dau.append({"day": entry["day"], "value": value if shown else None, "band": band,
                    "low": max(0, value - band) if shown else None, "high": value + band if shown else None,
                    "partial": entry["partial"], "fewer_than": min_group})
    latest = entries[-1] if entries else None
    today_card = None
    if latest is not None:
        value, band = max(0, latest["raw"]), privacy.half_width([(latest["noise"], latest["scale"])])
        today_card = {"day": latest["day"], "value": _small(value, min_group), "band": band,
                      "partial": latest["partial"], "fewer_than": min_group}

    def window(n):
        if latest is None:
            return None
        start = (datetime.date.fromisoformat(latest["day"]) - datetime.timedelta(days=n - 1)).isoformat()
        card = _average([e for e in entries if e["day"] >= start])
        if card is not None:
            card.update(value=_small(card["value"], min_group), fewer_than=min_group)
        return card

    # Average daily users over the view's released days (None before any): what the 7- and 28-day views lead with.
    period_card = _average([e for e in entries if first.isoformat() <= e["day"] <= last.isoformat()])
    in_period = [d for d in released if first <= d <= last]
    periodic = _periodic(store, project_id, first, last) if days in (7, 28) else {}
    if period_card is not None and periodic.get("dau"):
        # User-days of the period from its own releases and the days' (a day without one had no
        # reports), over all the period's days.
        cells = [per_day[d]["dau"][""] for d in in_period]
        total, band = _total(cells, periodic["dau"][""], len(in_period))
        length = (last - first).days + 1
        period_card.update(value=round(total / length), band=max(1, round(band / length)), days=length)
    if period_card is not None:
        period_card.update(value=_small(period_card["value"], min_group), fewer_than=min_group)
    sums = {m: {} for m in ("calls", "users", "version", "python", "os", "arch")}
    for day in in_period:
        for metric, table in sums.items():
            for key, cell in per_day[day].get(metric, {}).items():
                table.setdefault(key, []).append(cell)
    features = []
    feature_days = len(in_period)
    for key in set(sums["users"]) | set(periodic.get("users", {})):
        users, users_band = _total(sums["users"].get(key, []), periodic.get("users", {}).get(key), feature_days)
        if users == 0:
            continue  # as in _breakdown: a registered key nobody used has nothing to show
        shown = users >= min_group
        row = {"key": key, "users": users if shown else None, "users_band": users_band, "calls": None,
               "calls_band": None, "calls_per_user": None, "calls_released": False, "fewer_than": min_group}
        calls = None
        if sums["calls"].get(key) or periodic.get("calls", {}).get(key):
            # Not every release carries calls (a small project's days, any week): none of them, no number.
            calls, calls_band = _total(sums["calls"].get(key, []), periodic.get("calls", {}).get(key), feature_days)
            # Under min_group, calls go with the users: calls per user over so few user-days would be mostly noise.
            row.update(calls=calls if shown else None, calls_band=calls_band, calls_released=True,
                       calls_per_user=round(calls / users, 1) if shown else None)
        features.append((users, calls, row))
    version_rows = _breakdown(sums["version"], min_group, periodic.get("version"), feature_days)
    series = {}
    for row in (r for r in version_rows["rows"] if r["users"] is not None):
        points = []
        for day in in_period:
            value = per_day[day].get("version", {}).get(row["key"], (0,))[0]
            points.append(max(0, value) if value >= min_group else None)
        if any(point is not None for point in points):  # a small project's days carry no versions
            series[row["key"]] = points
    account = privacy.budget(store, project)
    return {
        "project_id": project_id,
        "name": project["name"],
        "region": project["region"],
        "first_day": first.isoformat(),
        "last_day": last.isoformat(),
        "days": days,
        "min_group": min_group,
        "confidence": "95%",
        "cards": {"today": today_card, "week": window(7), "month": window(30), "period": period_card},
        "dau": dau,
        "features": {
            "by_users": [f for _, _, f in sorted(features, key=lambda r: (-r[0], r[2]["key"]))[:_TOP]],
            # Only features whose calls the view's releases carry.
            "by_calls": [f for _, _, f in sorted((r for r in features if r[1] is not None),
                                                 key=lambda r: (-r[1], r[2]["key"]))[:_TOP]],
        },
        "versions": dict(version_rows, days=[d.isoformat() for d in in_period], series=series),
        "python": _breakdown(sums["python"], min_group, periodic.get("python"), feature_days),
        "os": _breakdown(sums["os"], min_group, periodic.get("os"), feature_days),
        "arch": _breakdown(sums["arch"], min_group, periodic.get("arch"), feature_days),
        "privacy": dict(account, window_days=window_days, region=project["region"], min_group=min_group,
                        noise_band="95%"),
        "level2_plaintext": _plaintext_users(store, project, first, last),
        "schedule": _schedule(project, accounts, today),
        "profile": {"name": project["profile"], "declared": project["profile_declared"],
                    "large_daily_users": privacy.LARGE_DAILY_USERS},
    }


def _bearer(request):
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


class DashboardViews:
    """Starlette endpoints for the stats API, the dashboard page and its login form."""

    def __init__(self, store, registry, config, now):
        self._store, self._registry, self._config, self._now = store, registry, config, now

    async def _project(self, request, token):
        """The project when ``token`` reads it in this region; None otherwise (never says which)."""
        project = await self._registry.get(request.path_params["project_id"])
        if project is None or project["region"] != self._config.region or not token_matches(project, token):
            return None
        return project

    def _days(self, request):
        """The ``days`` asked for, within 1 to 366; None when none (or no number) is asked for."""
        try:
            return min(max(int(request.query_params["days"]), 1), 366)
        except (KeyError, ValueError):
            return None

    async def _stats(self, project, days):
        return await run_in_threadpool(stats, self._store, project, self._now().date(), days,
                                       self._config.min_group, self._config.window_days)

    async def api_stats(self, request):
        project = await self._project(request, _bearer(request))
        if project is None:
            return JSONResponse({"error": "unauthorized", "detail": "a valid read token is required"},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return JSONResponse(await self._stats(project, self._days(request) or 30))

    def _html(self, template, status=200, **context):
        html = _TEMPLATES.get_template(template).render(**context)
        return HTMLResponse(html, status_code=status,
                            headers={"Content-Security-Policy": _CSP, "Cache-Control": "no-store",
                                     "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"})

    async def page(self, request):
        project_id = request.path_params["project_id"]
        token = _bearer(request) or request.cookies.get("telly_read")
        project = await self._project(request, token)
        if project is None:
            return self._html("login.html", status=401, project_id=project_id, failed=bool(token))
        days = self._days(request) or await run_in_threadpool(default_days, self._store, project, self._now().date())
        data = await self._stats(project, days)
        return self._html("dashboard.html", s=data, periods=_PERIODS, stats_json=script_json(data))

    async def login(self, request):
        project_id = request.path_params["project_id"]
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > 4096:  # a token is 43 characters; nothing legitimate is larger
                return self._html("login.html", status=413, project_id=project_id, failed=True)
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        token = (form.get("token") or [""])[0].strip()
        if await self._project(request, token) is None:
            return self._html("login.html", status=401, project_id=project_id, failed=True)
        path = "/projects/" + urllib.parse.quote(project_id, safe="")
        response = RedirectResponse(path, status_code=303)
        response.set_cookie("telly_read", token, path=path, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", max_age=30 * 86400)
        return response
