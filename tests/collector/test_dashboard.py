"""The dashboard and the stats API: same numbers, small groups hidden, login, and a real browser."""

import datetime
import json
import random
import re
import shutil
import socket
import subprocess
import time

import httpx
import pytest

from telly_autoinst.collector import jobs
from telly_autoinst.collector.dashboard import stats
from telly_autoinst.collector.registry import create_project
from telly_autoinst.collector.store import open_store


def _seed(store, epsilon=1e6, days=5, users=12):
    """``days`` released days of ``users`` users each, ending yesterday; exact when epsilon is huge."""
    project_id, token = create_project(store, "Demo Package", "us", epsilon_per_day=epsilon)
    today = datetime.datetime.now(datetime.timezone.utc).date()
    rng = random.Random(7)
    for back in range(days, 0, -1):
        day = today - datetime.timedelta(days=back)
        rows = []
        for u in range(users - back):
            rows.append({"project_id": project_id, "report_id": f"{back:04x}{u:028x}", "day": day, "uid": f"u{u}",
                         "version": "1.0" if u % 3 else "2.0", "python": f"CPython 3.{10 + u % 3}",
                         "os": "Linux" if u % 4 else "Darwin", "arch": "x86_64",
                         "stats": json.dumps({"demo.f": rng.randint(1, 9), "demo.Rare.g" if u == 0 else "demo.h": 1})})
        store.insert_reports(rows)
    jobs.publish(store, [project_id], today)
    return project_id, token, today


def test_stats_are_exact_with_a_huge_epsilon_and_hide_small_groups(store):
    project_id, _, today = _seed(store)
    data = stats(store, store.project(project_id), today, 30, min_group=3, window_days=30)
    assert [d["value"] for d in data["dau"]] == [7, 8, 9, 10, 11]
    assert data["features"]["hidden"] == 0 or "demo.Rare.g" not in [f["key"] for f in data["features"]["by_users"]]
    rare = {f["key"] for f in data["features"]["by_calls"]}
    assert "demo.Rare.g" in rare  # used by user 0 on each of 5 days: 5 user-days >= 3
    high = stats(store, store.project(project_id), today, 30, min_group=6, window_days=30)
    assert "demo.Rare.g" not in {f["key"] for f in high["features"]["by_calls"]} and high["features"]["hidden"] == 1
    assert {r["key"] for r in data["os"]["rows"]} == {"Linux", "Darwin"}
    assert data["privacy"]["epsilon_spent_total"] > 0 and data["privacy"]["region"] == "us"
    assert set(data["versions"]["series"]) == {"1.0", "2.0"}


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
            "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'chrome'}"]}
        created = self._call("POST", "/session", {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": options}}})
        self.session = f"/session/{created['sessionId']}"

    def _call(self, method, path, body=None):
        response = httpx.request(method, self.base + path, json=body, timeout=60)
        value = response.json()["value"]
        if response.status_code != 200:
            raise RuntimeError(f"webdriver {path}: {value}")
        return value

    def go(self, url):
        self._call("POST", self.session + "/url", {"url": url})

    def element(self, css):
        found = self._call("POST", self.session + "/element", {"using": "css selector", "value": css})
        return next(iter(found.values()))  # the W3C web element reference is the only key

    def type(self, css, text):
        self._call("POST", f"{self.session}/element/{self.element(css)}/value", {"text": text})

    def click(self, css):
        self._call("POST", f"{self.session}/element/{self.element(css)}/click", {})

    def script(self, source):
        return self._call("POST", self.session + "/execute/sync", {"script": source, "args": []})

    def close(self):
        try:
            self._call("DELETE", self.session)
        finally:
            self.driver.terminate()
            self.driver.wait(10)


@pytest.mark.browser
@pytest.mark.skipif(not (shutil.which("chromium") and shutil.which("chromedriver")),
                    reason="needs Debian's chromium and chromium-driver (tests/run installs them)")
def test_browser_draws_the_charts_and_shows_the_api_numbers(tmp_path, serve):
    db_url = f"sqlite:///{tmp_path / 'browser.sqlite3'}"
    store = open_store(db_url)
    # Ordinary epsilon: real noise, so the page must show exactly the stored noisy numbers.
    project_id, token, _ = _seed(store, epsilon=1.0, days=6, users=40)
    server = serve(db_url, "--min-group", "1")
    api = httpx.get(f"{server.url}/api/v1/projects/{project_id}/stats",
                    headers={"Authorization": f"Bearer {token}"}).json()
    browser = _Browser(tmp_path)
    try:
        browser.go(f"{server.url}/projects/{project_id}")
        browser.type("#token", token)
        browser.click("#sign-in")
        deadline = time.monotonic() + 30
        while browser.script("return document.body && document.body.getAttribute('data-rendered')") in (None, "0"):
            assert time.monotonic() < deadline, "the page never drew its charts"
            time.sleep(0.1)
        assert browser.script("return document.body.getAttribute('data-rendered')") == "2"
        assert browser.script("return document.querySelectorAll('.uplot canvas').length") >= 2
        shown = browser.script("""return Array.from(document.querySelectorAll('[data-metric]')).map(
            e => [e.dataset.metric, e.dataset.key, e.textContent.trim()]);""")
    finally:
        browser.close()
    expected = [["dau", d["day"], str(d["value"]) if d["value"] is not None else "hidden"] for d in api["dau"]]
    expected += [["calls", f["key"], str(f["calls"])] for f in api["features"]["by_calls"]]
    expected += [["users", f["key"], str(f["users"])] for f in api["features"]["by_users"]]
    for name in ("python", "os", "arch"):
        expected += [[name, r["key"], str(r["users"])] for r in api[name]["rows"]]
    privacy = api["privacy"]
    expected += [["privacy", key, str(privacy[key])] for key in (
        "region", "window_days", "epsilon_spent_total", "epsilon_max_user_day", "epsilon_cap_per_user_day",
        "min_group")]
    assert shown == expected
    assert len(api["dau"]) == 6


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
    assert data["features"]["by_calls"] == [{"key": "m.f", "calls": 70, "users": 12}]  # -50 + 120, not 0 + 120
