"""The whole system on one machine: collector, an opted-in package, its users, and the dashboard.

Steps, each printed as it runs:

1. a venv with telly_autoinst[collector] installed from this checkout (a real wheel, .pth included);
2. a collector on 127.0.0.1 with its embedded SQLite store, and a registered project;
3. the sample package ``wordstats`` (no telemetry code, only ``[tool.telly]``) installed from
   a checkout whose ``project_id`` is the one just registered;
4. ``--dry-run``, then the sample program run by several simulated users (one HOME each), the
   first with TELLY_SHOW_ME=1 so you can see exactly what leaves the process;
5. ``collector publish --through-now`` and the published numbers from the JSON API;
6. the dashboard URL; the collector keeps running until Ctrl-C (``--no-wait`` stops at once).
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = Path(__file__).resolve().parent


def _step(text):
    print(f"\n==> {text}", flush=True)


def _run(cmd, **kwargs):
    return subprocess.run(cmd, check=True, text=True, **kwargs)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # the server answers
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the collector did not answer at {url} within {timeout:.0f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=os.environ.get("TELLY_DEMO_DIR"),
                        help="working directory (default: a temp dir)")
    parser.add_argument("--users", type=int, default=12, help="simulated users (default 12)")
    parser.add_argument("--no-wait", action="store_true", help="stop the collector at the end instead of serving")
    args = parser.parse_args()

    work = Path(args.dir or tempfile.mkdtemp(prefix="telly-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    venv = work / "venv"
    python = str(venv / "bin" / "python")

    _step(f"venv with telly_autoinst[collector] from this checkout, in {venv}")
    if not (venv / "bin" / "python").exists():
        _run([sys.executable, "-m", "venv", str(venv)])
    _run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", f"{ROOT}[collector]"])

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    collector_env = {**os.environ, "TELLY_COLLECTOR_DB": f"sqlite:///{work / 'collector.db'}", "TELLY_DISABLE": "1"}
    _step(f"collector on {base} (SQLite store {work / 'collector.db'})")
    log = open(work / "collector.log", "w")
    server = subprocess.Popen([python, "-m", "telly_autoinst", "collector", "serve", "--host", "127.0.0.1",
                               "--port", str(port), "--min-group", "1"], env=collector_env, stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        _wait_for(f"{base}/healthz")
        created = json.loads(_run([python, "-m", "telly_autoinst", "collector", "project", "create", "wordstats",
                                   "--json"], env=collector_env, capture_output=True).stdout)
        project_id, token = created["project_id"], created["read_token"]
        print(f"registered project {project_id}")

        _step("the author's checkout of wordstats: [tool.telly] gets the project id; no code changes")
        checkout = work / "wordstats-checkout"
        shutil.rmtree(checkout, ignore_errors=True)
        shutil.copytree(DEMO / "sample_project", checkout, ignore=shutil.ignore_patterns("*.egg-info", "build"))
        pyproject = checkout / "pyproject.toml"
        pyproject.write_text(pyproject.read_text().replace("REPLACED-BY-DEMO", project_id))
        print(pyproject.read_text().split("[tool.telly]")[1].strip().join(["[tool.telly]\n", ""]))
        _run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(checkout)])

        client_env = {k: v for k, v in os.environ.items() if not k.startswith("TELLY_") and k != "DO_NOT_TRACK"}
        client_env.update({"TELLY_HTTP_SERVER": base, "TELLY_STORAGE_TYPE": "http", "CI": "false"})
        _step("python -m telly_autoinst --dry-run")
        _run([python, "-m", "telly_autoinst", "--dry-run"], env={**client_env, "HOME": str(work / "users" / "u0")})

        _step(f"{args.users} users run a program that uses wordstats; user 0 has TELLY_SHOW_ME=1")
        for user in range(args.users):
            home = work / "users" / f"u{user}"
            home.mkdir(parents=True, exist_ok=True)
            env = {**client_env, "HOME": str(home)}
            if user == 0:
                env["TELLY_SHOW_ME"] = "1"
            proc = subprocess.run([python, str(DEMO / "use_wordstats.py"), str(user)], env=env, text=True,
                                  capture_output=True)
            if user == 0:
                print(proc.stdout + proc.stderr)
            if proc.returncode != 0:
                raise SystemExit(f"user {user}'s program failed:\n{proc.stderr}")
        print(f"{args.users} runs done")

        _step("collector publish --through-now (differentially private release, spends budget)")
        _run([python, "-m", "telly_autoinst", "collector", "publish", "--through-now", "--project", project_id],
             env=collector_env)

        _step("published numbers from the JSON API")
        request = urllib.request.Request(f"{base}/api/v1/projects/{project_id}/stats",
                                         headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            stats = json.load(response)
        print(json.dumps(stats, indent=2)[:3000])

        _step("dashboard")
        print(f"open {base}/projects/{project_id}")
        print(f"read token: {token}")
        if args.no_wait:
            return
        print("the collector keeps serving; Ctrl-C stops it")
        try:
            server.wait()
        except KeyboardInterrupt:
            pass
    finally:
        server.terminate()
        server.wait(10)
        log.close()


if __name__ == "__main__":
    main()
