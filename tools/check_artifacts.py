"""Build the release artifacts and try them as a stranger would: the wheels, not this checkout.

What CI and the release workflow run before anything is published:

1. ``python -m build`` for the client (repository root) and the collector (``collector/``), then
   ``twine check --strict`` and ``check-wheel-contents`` on what was built;
2. the client's wheel holds no collector file, and each wheel carries its licence files;
3. a fresh venv with the client's wheel only (on the oldest supported Python when given): the
   hook counts a watched package's calls, ``--dry-run`` lists it, and ``collector`` says how to
   install the collector instead of failing;
4. a fresh venv with ``telly_autoinst[collector]`` from the built wheels: the collector's
   five minutes (project create, serve, a hooked program reporting over HTTP, publish, the stats
   API and the dashboard);
5. ``npm pack`` of Telly.js (from a copy of node/), installed from the tarball into an empty project:
   ``--dry-run``.

Usage: python tools/check_artifacts.py [--out DIR] [--client-python PY] [--skip-npm]
Exit status: 0 when every check passed, 1 otherwise (each failure is printed).
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
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A program that uses the demo's sample package, which opted in with a [tool.telly] table only.
PROGRAM = "import wordstats\nprint(wordstats.count_words('a b a'))\n"


class _Failed(Exception):
    pass


def _run(cmd, **kwargs):
    print("+", " ".join(map(str, cmd)), flush=True)
    done = subprocess.run([str(c) for c in cmd], text=True, capture_output=True, **kwargs)
    if done.returncode != 0:
        raise _Failed(f"{cmd[0]} ... exited {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def _env(home, **extra):
    """A user's environment: a home of its own, nothing of ours or of a venv leaking in."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TELLY_", "PYTHON", "VIRTUAL_ENV", "XDG_", "PIP_")) and k != "DO_NOT_TRACK"}
    env.update(HOME=str(home), CI="false", **{k: str(v) for k, v in extra.items()})
    return env


def _venv(path, python):
    _run([python, "-m", "venv", path])
    return Path(path) / "bin" / "python"


def _pip(python, *args):
    return _run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *args])


def build(out):
    """Sdists and wheels of both distributions, checked by twine and check-wheel-contents."""
    for project in (ROOT, ROOT / "collector"):
        _run([sys.executable, "-m", "build", "--outdir", out, project])
    artifacts = sorted(Path(out).iterdir())
    _run([sys.executable, "-m", "twine", "check", "--strict", *artifacts])
    _run([sys.executable, "-m", "check_wheel_contents", *[a for a in artifacts if a.suffix == ".whl"]])
    client = _one(out, "telly_autoinst-*.whl")
    names = zipfile.ZipFile(client).namelist()
    stray = [n for n in names if "collector" in n.split("/")[0] or n.endswith((".html", ".css", ".js"))]
    if stray:
        raise _Failed(f"the client's wheel carries collector files: {stray}")
    for wheel in (client, _one(out, "telly_autoinst_collector-*.whl")):
        if not any(n.endswith(".dist-info/licenses/LICENSE") for n in zipfile.ZipFile(wheel).namelist()):
            raise _Failed(f"{wheel.name} carries no LICENSE")
    print(f"built and checked: {', '.join(a.name for a in artifacts)}")
    return artifacts


def _one(out, pattern):
    found = sorted(Path(out).glob(pattern))
    if len(found) != 1:
        raise _Failed(f"expected one {pattern} in {out}, found {[f.name for f in found]}")
    return found[0]


def _sample_package(work, project_id):
    """The demo's sample package with ``project_id`` in its [tool.telly] table, as an author ships it."""
    checkout = Path(work) / "wordstats"
    shutil.copytree(ROOT / "demo" / "sample_project", checkout,
                    ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"))
    pyproject = checkout / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("REPLACED-BY-DEMO", project_id))
    return checkout


def client_only(out, work, python):
    """The client's wheel alone: counting to files, --dry-run, and the collector's install hint."""
    venv = _venv(Path(work) / "client-venv", python)
    _pip(venv, _one(out, "telly_autoinst-*.whl"), _sample_package(work, "artifact-check"))
    home = Path(work) / "client-home"
    home.mkdir()
    reports = Path(work) / "client-reports"
    env = _env(home, TELLY_STORAGE_TYPE="file", TELLY_LOCAL_STORAGE_PATH=reports)
    _run([venv, "-c", PROGRAM], env=env, cwd=work)
    sent = [json.loads(p.read_text()) for p in reports.glob("*.json")]
    stats = [r.get("stats", {}) for r in sent if r.get("project_id") == "artifact-check"]
    # Counted under the name it is defined with (wordstats.analysis.count_words).
    if not any(s.get("wordstats.analysis.count_words") == 1 for s in stats):
        raise _Failed(f"no report counted wordstats.count_words once: {sent}")
    dry = _run([venv, "-m", "telly_autoinst", "--dry-run"], env=env, cwd=work).stdout
    if "wordstats" not in dry:
        raise _Failed(f"--dry-run does not list wordstats:\n{dry}")
    hint = subprocess.run([venv, "-m", "telly_autoinst", "collector", "serve"], env=env, cwd=work,
                          capture_output=True, text=True)
    if hint.returncode != 2 or "pip install 'telly_autoinst[collector]'" not in hint.stderr:
        raise _Failed(f"without the collector, 'collector serve' should say how to install it:\n{hint.stderr}")
    print("client wheel: counted, listed by --dry-run, collector install hint shown")


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url, token=None, timeout=30.0):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError:
            if time.monotonic() > deadline:
                raise _Failed(f"nothing answered at {url} within {timeout:.0f} s") from None
            time.sleep(0.2)


def collector_five_minutes(out, work):
    """``telly_autoinst[collector]`` from the built wheels, then the five minutes of docs/collector.md."""
    venv = _venv(Path(work) / "collector-venv", sys.executable)
    _pip(venv, "--find-links", out, f"telly_autoinst[collector]=={_version(out)}")
    home = Path(work) / "operator-home"
    home.mkdir()
    db = f"sqlite:///{Path(work) / 'collector.sqlite3'}"
    operator = _env(home, TELLY_COLLECTOR_DB=db, TELLY_DISABLE=1)
    created = json.loads(_run([venv, "-m", "telly_autoinst", "collector", "project", "create", "wordstats",
                               "--json"], env=operator).stdout)
    project_id, token = created["project_id"], created["read_token"]
    _pip(venv, _sample_package(Path(work) / "author", project_id))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(Path(work) / "collector.log", "w")
    server = subprocess.Popen([venv, "-m", "telly_autoinst", "collector", "serve", "--port", str(port),
                               "--min-group", "1"], env=operator, stdout=log, stderr=subprocess.STDOUT)
    try:
        _get(f"{base}/healthz")
        user = Path(work) / "user-home"
        user.mkdir()
        _run([venv, "-c", PROGRAM], env=_env(user, TELLY_HTTP_SERVER=base), cwd=work)
        count = ("import sys; from telly_autoinst_collector.store import open_store; "
                 "print(len(open_store(sys.argv[1]).report_ids(sys.argv[2])))")
        deadline = time.monotonic() + 60
        while _run([venv, "-c", count, db, project_id], env=operator).stdout.strip() == "0":
            if time.monotonic() > deadline:
                raise _Failed("the hooked program's report never reached the collector")
            time.sleep(0.5)
        _run([venv, "-m", "telly_autoinst", "collector", "publish", "--through-now", "--project", project_id],
             env=operator)
        status, body = _get(f"{base}/api/v1/projects/{project_id}/stats", token)
        if status != 200 or json.loads(body).get("project_id", project_id) != project_id:
            raise _Failed(f"stats API answered {status}: {body[:300]!r}")
        status, body = _get(f"{base}/projects/{project_id}", token)
        if status != 200 or b"<html" not in body.lower():
            raise _Failed(f"dashboard answered {status}")
    finally:
        server.terminate()
        server.wait(20)
        log.close()
    print("collector wheels: project created, report received, published, stats API and dashboard answer")


def _version(out):
    return _one(out, "telly_autoinst-*.whl").name.split("-")[1]


def npm_package(work):
    """``npm pack`` of Telly.js, installed from its tarball into an empty project.

    It packs a copy of node/ (with config/ beside it, where its prepack script copies the schemas
    from): prepack and postpack write and remove node/schemas/, which the Node client run from the
    checkout reads when it exists, as the Node tests may be doing at the same time.
    """
    source = Path(work) / "npm-source"
    shutil.copytree(ROOT / "node", source / "node",
                    ignore=shutil.ignore_patterns("node_modules", "schemas", "test", "benchmarks"))
    shutil.copytree(ROOT / "config", source / "config")
    packed = _run(["npm", "pack", "--silent", "--pack-destination", work], cwd=source / "node").stdout.split()[-1]
    tarball = Path(work) / packed
    app = Path(work) / "npm-app"
    app.mkdir()
    (app / "package.json").write_text('{"name": "artifact-check-app", "version": "1.0.0", "private": true}\n')
    home = Path(work) / "npm-home"
    home.mkdir()
    env = _env(home)
    _run(["npm", "install", "--silent", "--no-audit", "--no-fund", tarball], cwd=app, env=env)
    version = json.loads((app / "node_modules" / "telly-autoinst" / "package.json").read_text())["version"]
    if version != _version(Path(work) / "dist"):
        raise _Failed(f"the npm package is {version}, the Python client {_version(Path(work) / 'dist')}")
    _run(["npx", "--no-install", "telly-autoinst", "--dry-run"], cwd=app, env=env)
    print(f"npm package: {tarball.name} installs and runs --dry-run")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="where to build and try the artifacts (default: a temporary directory)")
    parser.add_argument("--client-python", default=sys.executable,
                        help="the interpreter of the client-only venv (CI passes the oldest supported one)")
    parser.add_argument("--skip-npm", action="store_true", help="leave Telly.js out (no Node.js here)")
    args = parser.parse_args(argv)
    work = Path(args.out or tempfile.mkdtemp(prefix="telly-artifacts-"))
    work.mkdir(parents=True, exist_ok=True)
    out = work / "dist"
    steps = [lambda: build(out), lambda: client_only(out, work, args.client_python),
             lambda: collector_five_minutes(out, work)]
    if not args.skip_npm:
        steps.append(lambda: npm_package(work))
    try:
        for step in steps:
            step()
    except _Failed as exc:
        print(f"check_artifacts: FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"check_artifacts: every check passed (artifacts in {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
