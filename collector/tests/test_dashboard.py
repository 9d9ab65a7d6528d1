"""The dashboard and the stats API: same numbers, small numbers shown as "fewer than N", login, and a real browser."""

import base64
import datetime
import json
import math
import random
import re
import shutil
import socket
import subprocess
import time

import httpx
import pytest

from telly_autoinst_collector import dashboard, jobs, privacy
from telly_autoinst_collector.dashboard import script_json, stats
from telly_autoinst_collector.registry import create_project
from telly_autoinst_collector.store import open_store


def _seed(store, epsilon=1e6, days=5, users=12, odd_name=None, profile="large"):
    """``days`` released days of ``users`` users each, ending yesterday; exact when epsilon is huge.

    With ``odd_name``, every other user also calls a feature of that name. A large project by
    default: its daily releases carry everything.
    """
    project_id, token = create_project(store, "Demo Package", "us", epsilon_per_day=epsilon, profile=profile)
    today = datetime.datetime.now(datetime.timezone.utc).date()
    rng = random.Random(7)
    for back in range(days, 0, -1):
        day = today - datetime.timedelta(days=back)
        rows = []
        for u in range(users - back):
            rows.append({"project_id": project_id, "report_id": f"{back:04x}{u:028x}", "day": day, "uid": f"u{u}",
                         "version": "1.0" if u % 3 else "2.0", "python": f"CPython 3.{10 + u % 3}",
                         "os": "Linux" if u % 4 else "Windows", "arch": "x86_64",
                         "stats": json.dumps({"demo.f": rng.randint(1, 9), "demo.Rare.g" if u < 2 else "demo.h": 1,
                                              **({odd_name: 2} if odd_name and u % 2 else {})})})
        store.insert_reports(rows)
    # The package's keys and versions are registered: released whatever their count.
    store.add_public_keys(project_id, "users", ["demo.f", "demo.Rare.g", "demo.h"] + ([odd_name] if odd_name else []))
    store.add_public_keys(project_id, "version", ["1.0", "2.0"])
    jobs.publish(store, [project_id], today)
    return project_id, token, today


def test_stats_are_exact_with_a_huge_epsilon_and_hide_small_groups(store):
    project_id, _, today = _seed(store)
    data = stats(store, store.project(project_id), today, 30, min_group=3, window_days=30)
    assert [d["value"] for d in data["dau"]] == [7, 8, 9, 10, 11]
    # Cards: the latest released day, and the mean of the released days in the last 7 and 30 days.
    assert data["cards"]["today"]["value"] == 11 and data["cards"]["today"]["day"] == data["dau"][-1]["day"]
    assert data["cards"]["week"]["value"] == 9 and data["cards"]["week"]["days"] == 5
    users = {f["key"]: f["users"] for f in data["features"]["by_users"]}
    assert users["demo.f"] == 45 and users["demo.Rare.g"] == 10  # users 0 and 1 on each of 5 days
    high = stats(store, store.project(project_id), today, 30, min_group=11, window_days=30)
    # Under min_group a feature is listed as "fewer than N" with its band, its calls not shown.
    (rare,) = [f for f in high["features"]["by_users"] if f["key"] == "demo.Rare.g"]
    assert rare["users"] is None and rare["calls"] is None and rare["fewer_than"] == 11 and rare["users_band"] >= 0
    assert {r["key"] for r in data["os"]["rows"]} == {"Linux", "Windows"}
    assert data["privacy"]["epsilon_max_user_day"] > 0 and data["privacy"]["region"] == "us"
    # The days' own releases, and their week's if one of them completed: within δ per user-day in total.
    delta_max = data["privacy"]["delta_max_user_day"]
    day_delta = privacy.LEVEL_SHARE["large"]["day"] * privacy.DELTA_PER_USER_DAY
    assert day_delta * 0.999 < delta_max <= privacy.DELTA_PER_USER_DAY
    assert set(data["privacy"]["per_person"]) == {"28", "365"}
    assert set(data["versions"]["series"]) == {"1.0", "2.0"} and len(data["versions"]["series"]["1.0"]) == 5
    calls = {f["key"]: (f["calls"], f["calls_per_user"]) for f in data["features"]["by_calls"]}
    assert calls["demo.Rare.g"] == (10, 1.0)


def test_bands_come_from_the_noise_of_the_cells_summed(store):
    project_id, _ = create_project(store, "demo", "us")
    today = datetime.date(2026, 11, 10)
    detail = {"noise": "gaussian"}
    for back in range(1, 5):
        store.record_release(project_id, today - datetime.timedelta(days=back), 1.0, True, [
            {"metric": "dau", "key": "", "value": 100, "scale": 10.0},
            {"metric": "users", "key": "m.f", "value": 50, "scale": 10.0}], delta=1e-7, detail=detail)
    data = stats(store, store.project(project_id), today, 30, min_group=1, window_days=30)
    assert data["dau"][0]["band"] == 20 and (data["dau"][0]["low"], data["dau"][0]["high"]) == (80, 120)
    # Four days of σ 10: the sum has σ 20; the mean of four days has σ 5.
    assert data["features"]["by_users"][0]["users"] == 200 and data["features"]["by_users"][0]["users_band"] == 40
    assert data["cards"]["week"] == {"value": 100, "band": 10, "days": 4, "first_day": "2026-11-06",
                                     "last_day": "2026-11-09", "fewer_than": 1}


def test_inline_json_cannot_end_or_comment_out_its_script_block():
    name = "</script><!--<script>&\u2028\u2029"
    block = script_json({"key": name})
    assert not set(block) & {"<", ">", "&", "\u2028", "\u2029"}
    assert json.loads(block) == {"key": name}


def test_login_form_sets_a_cookie_scoped_to_the_project(db_url, serve):
    store = open_store(db_url)
    project_id, token, _ = _seed(store)
    server = serve(db_url, "--min-group", "1")
    page = f"{server.url}/projects/{project_id}"
    anonymous = httpx.get(page)
    assert anonymous.status_code == 401 and 'name="token"' in anonymous.text
    wrong = httpx.post(page + "/login", data={"token": "nope"})
    assert wrong.status_code == 401 and "login-error" in wrong.text
    with httpx.Client() as client:
        signed = client.post(page + "/login", data={"token": token})
        assert signed.status_code == 303 and "HttpOnly" in signed.headers["set-cookie"]
        assert f"Path=/projects/{project_id}" in signed.headers["set-cookie"]
        shown = client.get(page)
    assert shown.status_code == 200 and "Demo Package" in shown.text
    assert "script-src 'self'" in shown.headers["Content-Security-Policy"]
    # Works offline: nothing is loaded from another origin.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", shown.text)
    assert httpx.get(f"{server.url}/static/uPlot.iife.min.js").status_code == 200


# --- a real browser -----------------------------------------------------------------------
class _Browser:
    """Headless Debian chromium driven through chromedriver's W3C WebDriver HTTP API."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.driver = subprocess.Popen([shutil.which("chromedriver"), f"--port={port}"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(self.base + "/status").json()["value"]["ready"]:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("chromedriver did not start")
            time.sleep(0.1)
        options = {"binary": shutil.which("chromium"), "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1200,900",
            f"--user-data-dir={tmp_path / 'chrome'}"]}
        created = self._call("POST", "/session", {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": options, "goog:loggingPrefs": {"browser": "ALL"}}}})
        self.session = f"/session/{created['sessionId']}"

    def _call(self, method, path, body=None):
        response = httpx.request(method, self.base + path, json=body, timeout=60)
        value = response.json()["value"]
        if response.status_code != 200:
            raise RuntimeError(f"webdriver {path}: {value}")
        return value

    def go(self, url):
        self._call("POST", self.session + "/url", {"url": url})

    def sign_in(self, url, token):
        """Open the dashboard through its login form (which answers 401: not a page error)."""
        self.go(url)
        self.console_errors()  # reading the log clears it
        self.type("#token", token)
        self.click("#sign-in")

    def element(self, css):
        found = self._call("POST", self.session + "/element", {"using": "css selector", "value": css})
        return next(iter(found.values()))  # the W3C web element reference is the only key

    def type(self, css, text):
        self._call("POST", f"{self.session}/element/{self.element(css)}/value", {"text": text})

    def click(self, css):
        self._call("POST", f"{self.session}/element/{self.element(css)}/click", {})

    def script(self, source):
        return self._call("POST", self.session + "/execute/sync", {"script": source, "args": []})

    def press_tab(self):
        self._call("POST", self.session + "/actions", {"actions": [{"type": "key", "id": "keyboard", "actions": [
            {"type": "keyDown", "value": "\ue004"}, {"type": "keyUp", "value": "\ue004"}]}]})

    def resize(self, width, height):
        self._call("POST", self.session + "/window/rect", {"width": width, "height": height})

    def color_scheme(self, scheme):
        self._call("POST", self.session + "/goog/cdp/execute", {"cmd": "Emulation.setEmulatedMedia", "params": {
            "features": [{"name": "prefers-color-scheme", "value": scheme}]}})

    def console_errors(self):
        entries = self._call("POST", self.session + "/se/log", {"type": "browser"})
        return [e["message"] for e in entries if e["level"] == "SEVERE"]

    def screenshot(self, name):
        """Saved under the test's temporary directory, kept as the test's artifact."""
        path = self.tmp_path / f"{name}.png"
        path.write_bytes(base64.b64decode(self._call("GET", self.session + "/screenshot")))
        return path

    def wait_rendered(self):
        deadline = time.monotonic() + 30
        while self.script("return document.body && document.body.getAttribute('data-rendered')") in (None, "0"):
            assert time.monotonic() < deadline, "the page never drew its charts"
            time.sleep(0.1)
        return int(self.script("return document.body.getAttribute('data-rendered')"))

    def close(self):
        try:
            self._call("DELETE", self.session)
        finally:
            self.driver.terminate()
            self.driver.wait(10)


# For each chart: how many canvas pixels have each series colour (antialiasing aside: points are
# filled with exactly that colour), so an empty box, an axis alone or a blank canvas all count 0.
_PIXELS = """return Array.from(document.querySelectorAll('.chart')).map(chart => {
  const canvas = chart.querySelector('canvas');
  const colors = (chart.dataset.seriesColors || '').split(' ').filter(Boolean).map(hex => {
    const n = parseInt(hex.slice(1).length === 3 ? hex.slice(1).replace(/./g, '$&$&') : hex.slice(1), 16);
    return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  });
  if (!canvas || !colors.length) return [chart.id, []];
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  return [chart.id, colors.map(([r, g, b]) => {
    let count = 0;
    for (let i = 0; i < data.length; i += 4) {
      const near = Math.abs(data[i] - r) < 8 && Math.abs(data[i + 1] - g) < 8 && Math.abs(data[i + 2] - b) < 8;
      if (data[i + 3] > 200 && near) count++;
    }
    return count;
  })];
});"""

_SHOWN = """return Array.from(document.querySelectorAll('[data-metric]')).map(
    e => [e.dataset.metric, e.dataset.key, e.textContent.trim()]);"""


def _expected(api):
    """What the page must show, in page order, formatted as the page formats numbers."""
    def n(value):
        return f"{value:,}"

    cards = api["cards"]
    def shown(value, fewer_than):
        return n(value) if value is not None else f"fewer than {n(fewer_than)}"

    expected = [["card", name, shown(cards[name]["value"], cards[name]["fewer_than"])]
                for name in ("today", "week", "month") if cards[name]]
    expected += [["dau", d["day"], shown(d["value"], d["fewer_than"])] for d in api["dau"]]
    for f in api["features"]["by_users"]:
        expected += [["users", f["key"], shown(f["users"], f["fewer_than"])]]
        expected += [["calls", f["key"], n(f["calls"])]] if f["users"] is not None and f["calls_released"] else []
    expected += [["version", r["key"], shown(r["users"], r["fewer_than"])] for r in api["versions"]["rows"]]
    for name in ("python", "os", "arch"):
        expected += [[name, r["key"], shown(r["users"], r["fewer_than"])] for r in api[name]["rows"]]
    privacy_shown = api["privacy"]
    profile = api["profile"]
    expected += [["privacy", "profile", f"{profile['name']} ({'declared' if profile['declared'] else 'automatic'})"]]
    expected += [["privacy", key, str(privacy_shown[key])] for key in (
        "epsilon_per_user_day", "delta_per_user_day", "epsilon_max_user_day", "delta_max_user_day")]
    expected += [["privacy", f"per_person_{days}", f"ε {loss['epsilon']} at δ {loss['delta']}"]
                 for days, loss in privacy_shown["per_person"].items()]
    expected += [["privacy", key, str(privacy_shown[key])] for key in ("min_group", "window_days", "region")]
    return expected


_needs_chromium = pytest.mark.skipif(not (shutil.which("chromium") and shutil.which("chromedriver")),
                                     reason="needs Debian's chromium and chromium-driver (tests/run installs them)")


@pytest.mark.browser
@_needs_chromium
def test_browser_draws_the_charts_and_shows_the_api_numbers(tmp_path, serve):
    db_url = f"sqlite:///{tmp_path / 'browser.sqlite3'}"
    store = open_store(db_url)
    # Ordinary epsilon: real noise, so the page must show exactly the stored noisy numbers. A
    # feature name that would end or comment out a naively escaped data block must still draw.
    project_id, token, _ = _seed(store, epsilon=1.0, days=6, users=400, odd_name="demo.<!--<script")
    server = serve(db_url, "--min-group", "1")
    api = httpx.get(f"{server.url}/api/v1/projects/{project_id}/stats",
                    headers={"Authorization": f"Bearer {token}"}).json()
    assert "demo.<!--<script" in {f["key"] for f in api["features"]["by_users"]}
    assert len(api["dau"]) == 6 and api["versions"]["series"]
    browser = _Browser(tmp_path)
    try:
        browser.sign_in(f"{server.url}/projects/{project_id}", token)
        assert browser.wait_rendered() == 2
        pixels = dict(browser.script(_PIXELS))
        assert set(pixels) == {"chart-dau", "chart-versions"}
        assert all(pixels[chart] and min(pixels[chart]) > 20 for chart in pixels), pixels
        assert browser.script(_SHOWN) == _expected(api)
        # The x axis spans the days shown, labelled by date, not years of empty axis.
        for chart in ("chart-dau", "chart-versions"):
            shown_range = browser.script(f"return document.getElementById('{chart}').dataset.xRange")
            assert shown_range == f"{api['dau'][0]['day']} {api['dau'][-1]['day']}"
        browser.screenshot("dashboard-desktop")
        # Keyboard: the first Tab reaches the skip link, the next ones the period links.
        browser.press_tab()
        assert browser.script("return document.activeElement.className") == "skip"
        browser.press_tab()
        assert browser.script("return document.activeElement.getAttribute('href')") == "?days=7"
        # A phone's width: nothing wider than the screen, and the charts follow the width.
        browser.resize(390, 844)
        time.sleep(0.5)
        assert browser.script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        assert browser.script("return document.querySelector('#chart-dau canvas').getBoundingClientRect().width") < 390
        browser.screenshot("dashboard-phone")
        browser.resize(1200, 900)
        browser.color_scheme("dark")
        browser.go(f"{server.url}/projects/{project_id}")
        assert browser.wait_rendered() == 2
        background = browser.script("return getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(15, 20, 27)"
        assert all(min(counts) > 20 for counts in dict(browser.script(_PIXELS)).values())
        browser.screenshot("dashboard-dark")
        assert browser.console_errors() == []
    finally:
        browser.close()


@pytest.mark.browser
@_needs_chromium
def test_browser_empty_and_small_states_say_so(tmp_path, serve):
    db_url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    store = open_store(db_url)
    empty_id, empty_token = create_project(store, "Nothing yet", "us")
    small_id, small_token, _ = _seed(store, epsilon=1e6, days=2, users=5)
    server = serve(db_url)  # the default --min-group 10
    browser = _Browser(tmp_path)
    try:
        for project_id, token, name in ((empty_id, empty_token, "empty"), (small_id, small_token, "small")):
            browser.sign_in(f"{server.url}/projects/{project_id}", token)
            time.sleep(0.5)
            assert browser.console_errors() == []
            assert browser.script("return document.body.getAttribute('data-rendered')") == "0"
            text = browser.script("return document.body.innerText")
            if name == "empty":
                assert "Nothing published yet" in text and not browser.script("return document.querySelector('.chart')")
            else:
                # Small numbers are shown as "fewer than 10" with their band, not hidden.
                assert "fewer than 10 ±" in text and "hidden" not in text
            browser.screenshot(f"dashboard-{name}")
    finally:
        browser.close()


def test_negative_noisy_cells_are_summed_unbiased_and_shown_clamped(store):
    project_id, _ = create_project(store, "demo", "us")
    today = datetime.date(2026, 11, 10)
    for back, (dau, calls) in enumerate([(-3, -50), (8, 120)], start=1):
        day = today - datetime.timedelta(days=back)
        store.record_release(project_id, day, 1.0, True, [
            {"metric": "dau", "key": "", "value": dau, "scale": 5.0},
            {"metric": "calls", "key": "m.f", "value": calls, "scale": 1000.0},
            {"metric": "users", "key": "m.f", "value": 6, "scale": 66.0}])
    data = stats(store, store.project(project_id), today, 30, min_group=1, window_days=30)
    assert [d["value"] for d in data["dau"]] == [8, None]  # oldest first; -3 is 0, below min_group
    (feature,) = data["features"]["by_calls"]
    assert (feature["calls"], feature["users"]) == (70, 12)  # -50 + 120, not 0 + 120
    # Schema-1 releases were Laplace: a single day keeps its exact tail; sums use the variance.
    assert data["dau"][0]["band"] == 15 and feature["calls_band"] == 3920


def test_the_7_and_28_day_views_are_the_latest_complete_week_and_4_week_block():
    from telly_autoinst_collector.dashboard import period

    monday, sunday = datetime.date(2026, 11, 9), datetime.date(2026, 11, 15)
    assert period(monday, 7) == (datetime.date(2026, 11, 2), datetime.date(2026, 11, 8))
    assert period(sunday, 7) == (datetime.date(2026, 11, 2), datetime.date(2026, 11, 8))  # today is not complete
    # Blocks of four ISO weeks from Monday 2024-01-01.
    start = datetime.date(2024, 1, 1) + datetime.timedelta(days=28 * 36)
    assert start.isoweekday() == 1
    assert period(start, 28) == (start - datetime.timedelta(days=28), start - datetime.timedelta(days=1))
    assert period(start + datetime.timedelta(days=27), 28) == period(start, 28)
    assert period(monday, 30) == (monday - datetime.timedelta(days=29), monday)  # other values: unchanged


def test_stats_for_28_days_cover_exactly_the_block_with_its_average(store):
    from telly_autoinst_collector.dashboard import period

    project_id, _ = create_project(store, "demo", "us")
    today = datetime.date(2026, 11, 20)
    first, last = period(today, 28)
    for back in range(60):  # releases before, inside and after the block
        day = today - datetime.timedelta(days=back + 1)
        inside = first <= day <= last
        store.record_release(project_id, day, 1.0, True, [
            {"metric": "dau", "key": "", "value": 100 if inside else 900, "scale": 1.0},
            {"metric": "users", "key": "m.f", "value": 50 if inside else 0, "scale": 1.0},
            {"metric": "calls", "key": "m.f", "value": 70 if inside else 0, "scale": 1.0}])
    data = stats(store, store.project(project_id), today, 28, min_group=10, window_days=35)
    assert (data["first_day"], data["last_day"]) == (first.isoformat(), last.isoformat())
    card = data["cards"]["period"]
    assert card["value"] == 100 and card["days"] == 28
    assert (card["first_day"], card["last_day"]) == (first.isoformat(), last.isoformat())
    (feature,) = data["features"]["by_users"]
    assert (feature["key"], feature["users"], feature["calls"]) == ("m.f", 28 * 50, 28 * 70)
    assert len(data["dau"]) == 28


def test_the_4_week_view_combines_its_days_weeks_and_block_by_inverse_variance(store):
    project_id, _ = create_project(store, "demo", "us")
    today = datetime.date(2026, 11, 10)
    first, last = datetime.date(2026, 10, 5), datetime.date(2026, 11, 1)  # the latest complete block
    detail = {"noise": "gaussian", "level": "day"}
    for n in range(28):
        store.record_release(project_id, first + datetime.timedelta(days=n), 0.1, True, [
            {"metric": "dau", "key": "", "value": 10, "scale": 10.0},
            {"metric": "users", "key": "m.f", "value": 10, "scale": 10.0}], delta=1e-7, detail=detail)
    for week in range(4):
        start = first + datetime.timedelta(days=7 * week)
        store.record_period_release(project_id, "week", start, start + datetime.timedelta(days=6), 0.1, 1e-7,
                                    {"level": "week"}, [{"metric": "users", "key": "m.f", "value": 70, "scale": 10.0}])
    store.record_period_release(project_id, "block", first, last, 0.1, 1e-7, {"level": "block"}, [
        {"metric": "dau", "key": "", "value": 300, "scale": 10.0},
        {"metric": "users", "key": "m.f", "value": 300, "scale": 10.0},
        {"metric": "users", "key": "m.new", "value": 50, "scale": 10.0}])
    data = stats(store, store.project(project_id), today, 28, min_group=1, window_days=35)
    assert (data["first_day"], data["last_day"]) == (first.isoformat(), last.isoformat())
    users = {f["key"]: (f["users"], f["users_band"]) for f in data["features"]["by_users"]}
    # Sums 300 (variance 100), 4 x 70 (4 x 100) and 28 x 10 (28 x 100), weighted by 1 / variance.
    precision = 1 / 100 + 1 / 400 + 1 / 2800
    assert users["m.f"] == (round((300 / 100 + 280 / 400 + 280 / 2800) / precision),
                            math.ceil(1.959963984540054 * math.sqrt(1 / precision)))
    assert users["m.new"] == (50, 20)  # only the block published it: its number alone
    # Daily users: the block's and the days' user-days, over the block's 28 days.
    assert data["cards"]["period"]["value"] == round((300 / 100 + 280 / 2800) / (1 / 100 + 1 / 2800) / 28)
    # Any other view reads the days only, as before.
    other = stats(store, store.project(project_id), today, 60, min_group=1, window_days=35)
    assert {f["key"]: f["users"] for f in other["features"]["by_users"]} == {"m.f": 280}


def test_a_new_project_is_told_when_its_features_and_full_table_come(store):
    project_id, _ = create_project(store, "demo", "us")
    today = datetime.date(2026, 11, 12)  # a Thursday of the block that began on Monday 2026-11-02
    store.record_release(project_id, datetime.date(2026, 11, 11), 1.0, True,
                         [{"metric": "dau", "key": "", "value": 40, "scale": 1.0}], detail={"noise": "gaussian"})
    data = stats(store, store.project(project_id), today, 30, min_group=10, window_days=35)
    # Its first complete week is 2026-11-16..22, its first complete block 2026-11-30..2026-12-27.
    assert data["schedule"] == {"features_from": "2026-11-23", "full_table_from": "2026-12-28"}
    flat = _page(data)
    assert "feature users come with the first complete week's release, on 2026-11-23" in flat
    assert "the full table comes with the first complete 4-week block's release, on 2026-12-28" in flat
    later = stats(store, store.project(project_id), datetime.date(2026, 12, 28), 30, min_group=10, window_days=35)
    assert later["schedule"] == {"features_from": None, "full_table_from": None}


def _page(data):
    html = dashboard._TEMPLATES.get_template("dashboard.html").render(s=data, periods=dashboard._PERIODS,
                                                                      stats_json="{}")
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_a_small_project_shows_daily_users_then_feature_users_then_the_full_table_and_says_so(store):
    project_id, _ = create_project(store, "demo", "us", epsilon_per_day=1e6)  # small, chosen by the collector
    store.add_public_keys(project_id, "users", ["demo.f"])
    store.add_public_keys(project_id, "version", ["1.0"])
    first = datetime.date(2026, 10, 5)  # a Monday, the first day of a 4-week block
    for n in range(29):
        day = first + datetime.timedelta(days=n)
        store.insert_reports([{"project_id": project_id, "report_id": f"{n:04x}{u:028x}", "day": day, "uid": f"u{u}",
                               "version": "1.0", "python": "CPython 3.11", "os": "Linux", "arch": "x86_64",
                               "stats": json.dumps({"demo.f": 3})} for u in range(12)])

    def view(today, days=None):
        jobs.publish(store, [project_id], today)
        project = store.project(project_id)
        days = days or dashboard.default_days(store, project, today)
        return days, stats(store, project, today, days, min_group=10, window_days=35)

    # Day 1: daily users, and when the rest comes.
    days, data = view(first + datetime.timedelta(days=1))
    assert days == 30 and [d["value"] for d in data["dau"]] == [12] and data["features"]["by_users"] == []
    assert data["profile"] == {"name": "small", "declared": False, "large_daily_users": privacy.LARGE_DAILY_USERS}
    page = _page(data)
    assert "Small project (chosen by the collector): each day's release carries its daily users only" in page
    assert f"after a 4-week block of {privacy.LARGE_DAILY_USERS:,} daily users or more on average" in page
    assert "feature users come with the first complete week's release, on 2026-10-12" in page
    # After its first complete week: the page opens on that week, with feature users and no calls yet.
    days, data = view(datetime.date(2026, 10, 13))
    assert days == 7 and (data["first_day"], data["last_day"]) == ("2026-10-05", "2026-10-11")
    (feature,) = data["features"]["by_users"]
    assert (feature["key"], feature["users"], feature["calls"], feature["calls_released"]) == ("demo.f", 84, None,
                                                                                               False)
    assert data["features"]["by_calls"] == [] and data["versions"]["rows"] == []
    page = _page(data)
    assert "the full table comes with the first complete 4-week block's release, on 2026-11-02" in page
    # A 30-day view of a small project says where its features are.
    _, thirty = view(datetime.date(2026, 10, 13), 30)
    assert thirty["features"]["by_users"] == []
    assert "A small project's features are released per week and per 4-week block, not per day" in _page(thirty)
    # After its first complete 4-week block: the page opens on it, with the full table.
    days, data = view(datetime.date(2026, 11, 3))
    assert days == 28 and data["schedule"] == {"features_from": None, "full_table_from": None}
    (feature,) = data["features"]["by_calls"]
    assert (feature["users"], feature["calls"]) == (28 * 12, 3 * 28 * 12)
    assert [(r["key"], r["users"]) for r in data["versions"]["rows"]] == [("1.0", 28 * 12)]
    assert "calls come with 4-week releases" not in _page(data)
    # 12 users a day is far from large: the profile stays.
    assert store.project(project_id)["profile"] == "small"


def test_a_large_projects_page_opens_on_30_days_and_says_what_its_days_carry(store):
    project_id, _, today = _seed(store)
    project = store.project(project_id)
    assert dashboard.default_days(store, project, today) == 30
    data = stats(store, project, today, 30, min_group=3, window_days=35)
    assert data["schedule"] == {"features_from": None, "full_table_from": None}
    page = _page(data)
    assert "Large project (declared by the operator): each day's release carries its features" in page
    assert "never in a daily one" in page


def test_the_page_opens_a_small_project_on_its_latest_released_block_and_the_api_stays_30_days(db_url, serve):
    store = open_store(db_url)
    project_id, token = create_project(store, "demo", "us")
    today = datetime.datetime.now(datetime.timezone.utc).date()
    first, last = dashboard.period(today, 28)
    store.record_period_release(project_id, "block", first, last, 0.5, 5e-7, {"level": "block"},
                                [{"metric": "dau", "key": "", "value": 28 * 40, "scale": 10.0}])
    server = serve(db_url)
    headers = {"Authorization": f"Bearer {token}"}
    page = httpx.get(f"{server.url}/projects/{project_id}", headers=headers)
    assert page.status_code == 200 and '<a href="?days=28" aria-current="page">latest 4 weeks</a>' in page.text
    assert httpx.get(f"{server.url}/api/v1/projects/{project_id}/stats", headers=headers).json()["days"] == 30


def test_days_published_before_profiles_keep_their_features_on_a_small_projects_page(store):
    project_id, _ = create_project(store, "demo", "us")  # small now
    today = datetime.date(2026, 11, 10)
    for back in (1, 2):  # daily releases from before profiles: they carried features
        store.record_release(project_id, today - datetime.timedelta(days=back), 0.5, True, [
            {"metric": "dau", "key": "", "value": 100, "scale": 10.0},
            {"metric": "users", "key": "m.f", "value": 60, "scale": 10.0},
            {"metric": "calls", "key": "m.f", "value": 90, "scale": 10.0}], delta=2.5e-7,
            detail={"noise": "gaussian", "level": "day", "rho": 0.006})
    data = stats(store, store.project(project_id), today, 30, min_group=10, window_days=35)
    (feature,) = data["features"]["by_calls"]
    assert (feature["key"], feature["users"], feature["calls"]) == ("m.f", 120, 180)
    assert "not per day: see the latest week" not in _page(data)


@pytest.mark.browser
@_needs_chromium
def test_browser_a_small_project_opens_on_its_4_week_block_and_shows_the_api_numbers(tmp_path, serve):
    db_url = f"sqlite:///{tmp_path / 'small.sqlite3'}"
    store = open_store(db_url)
    project_id, token = create_project(store, "Small Package", "us", epsilon_per_day=1e6)
    store.add_public_keys(project_id, "users", ["demo.f", "demo.g"])
    today = datetime.datetime.now(datetime.timezone.utc).date()
    first, last = dashboard.period(today, 28)
    for n in range((today - first).days):
        day = first + datetime.timedelta(days=n)
        store.insert_reports([{"project_id": project_id, "report_id": f"{n:04x}{u:028x}", "day": day, "uid": f"u{u}",
                               "version": "1.0", "python": "CPython 3.12", "os": "Linux", "arch": "arm64",
                               "stats": json.dumps({"demo.f": 2, **({"demo.g": 1} if u % 2 else {})})}
                              for u in range(14)])
    jobs.publish(store, [project_id], today)
    server = serve(db_url)
    api = httpx.get(f"{server.url}/api/v1/projects/{project_id}/stats?days=28",
                    headers={"Authorization": f"Bearer {token}"}).json()
    assert api["profile"]["name"] == "small" and (api["first_day"], api["last_day"]) == (str(first), str(last))
    browser = _Browser(tmp_path)
    try:
        browser.sign_in(f"{server.url}/projects/{project_id}", token)
        assert browser.wait_rendered() == 1  # daily users; versions per day are not a small project's
        assert browser.script("return document.querySelector('nav [aria-current]').textContent") == "latest 4 weeks"
        assert browser.script(_SHOWN) == _expected(api)
        text = " ".join(browser.script("return document.body.innerText").split())
        assert "Small project (chosen by the collector)" in text and "released per 4-week block, not per day" in text
        browser.screenshot("dashboard-small-project")
        assert browser.console_errors() == []
    finally:
        browser.close()
