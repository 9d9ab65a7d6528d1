"""Read-only views of the published numbers: the JSON API and the server-rendered dashboard.

Both read only the stored noisy cells of released days (never raw reports), through the same
``stats`` function, so the page and the API always show the same numbers. The one exception is
the users table of a project created with ``--level2-plaintext`` (see ``_plaintext_users``).
"""

import datetime
import json
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
# The page runs only our own vendored script; no other origin can be reached from it.
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def _totals(values, min_group):
    """Rows of {key, users} summed over days, largest first, and how many were below min_group."""
    rows = sorted(({"key": k, "users": v} for k, v in values.items() if v >= min_group),
                  key=lambda r: (-r["users"], r["key"]))
    return {"rows": rows, "hidden": sum(1 for v in values.values() if v < min_group)}


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


def stats(store, project, today, days, min_group, window_days):
    """The published numbers of ``project`` for the ``days`` UTC days ending ``today``."""
    project_id = project["project_id"]
    first = today - datetime.timedelta(days=days - 1)
    summary = store.release_summary(project_id)
    per_day = {}
    for day, metric, key, value, scale in store.published_cells(project_id, first, today):
        per_day.setdefault(day, {}).setdefault(metric, {})[key] = (int(value), float(scale))
    day_list = sorted(d for d in per_day if "" in per_day[d].get("dau", {}))
    dau = []
    for day in day_list:
        value, scale = per_day[day]["dau"][""]
        value = max(0, value)
        low, high = privacy.band(value, scale)
        shown = value >= min_group
        dau.append({"day": day.isoformat(), "value": value if shown else None, "low": low if shown else None,
                    "high": high if shown else None, "partial": not summary.get(day, (0, True))[1]})
    sums = {m: {} for m in ("calls", "users", "python", "os", "arch")}
    version_keys = set()
    for cells_of_day in per_day.values():
        for metric, table in sums.items():
            for key, (value, _) in cells_of_day.get(metric, {}).items():
                table[key] = table.get(key, 0) + value
        version_keys.update(k for k, (v, _) in cells_of_day.get("version", {}).items() if v >= min_group)
    # Sums of the unclamped noisy cells are unbiased; only the totals shown are clamped at 0.
    shown = [k for k, users in sums["users"].items() if users >= min_group]
    features = [{"key": k, "calls": max(0, sums["calls"].get(k, 0)), "users": sums["users"][k]} for k in shown]
    versions = {}
    for key in sorted(version_keys):
        series = []
        for day in day_list:
            value = max(0, per_day[day].get("version", {}).get(key, (0, 0))[0])
            series.append(value if value >= min_group else None)
        versions[key] = series
    return {
        "project_id": project_id,
        "name": project["name"],
        "region": project["region"],
        "first_day": first.isoformat(),
        "last_day": today.isoformat(),
        "min_group": min_group,
        "dau": dau,
        "features": {
            "by_calls": sorted(features, key=lambda r: (-r["calls"], r["key"]))[:_TOP],
            "by_users": sorted(features, key=lambda r: (-r["users"], r["key"]))[:_TOP],
            "hidden": len(sums["users"]) - len(shown),
        },
        "versions": {"days": [d.isoformat() for d in day_list], "series": versions},
        "python": _totals(sums["python"], min_group),
        "os": _totals(sums["os"], min_group),
        "arch": _totals(sums["arch"], min_group),
        "privacy": dict(privacy.budget(store, project), window_days=window_days, region=project["region"],
                        min_group=min_group, noise_band="95%"),
        "level2_plaintext": _plaintext_users(store, project, first, today),
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
        try:
            return min(max(int(request.query_params.get("days", "30")), 1), 366)
        except ValueError:
            return 30

    async def _stats(self, project, days):
        return await run_in_threadpool(stats, self._store, project, self._now().date(), days,
                                       self._config.min_group, self._config.window_days)

    async def api_stats(self, request):
        project = await self._project(request, _bearer(request))
        if project is None:
            return JSONResponse({"error": "unauthorized", "detail": "a valid read token is required"},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return JSONResponse(await self._stats(project, self._days(request)))

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
        data = await self._stats(project, self._days(request))
        return self._html("dashboard.html", s=data, stats_json=json.dumps(data).replace("</", "<\\/"))

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
