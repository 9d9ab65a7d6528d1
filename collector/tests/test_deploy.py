"""The operator kit in collector/deploy: each file checked statically, each command it runs run here.

Docker cannot build or pull images here, so the container recipe and the compose file are checked
statically (their commands against the collector's own parser, the compose file against the
Compose specification); the systemd units are checked by systemd-analyze and their commands run.
"""

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys

import pytest

from telly_autoinst_collector.cli import _COMMANDS, _parser
from tests.support.venvs import ROOT, SOURCE_PATH

DEPLOY = ROOT / "collector" / "deploy"
PORT = "8470"


def _unit(name):
    """{key: [values]} of a systemd unit file (keys of every section; a key may repeat)."""
    found = {}
    for line in (DEPLOY / name).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def _collector_args(argv):
    """Parse a command line of the collector with its own parser (exits on an unknown option)."""
    return _parser().parse_args(argv)


def _instructions():
    lines = re.sub(r"\\\n\s*", " ", (DEPLOY / "Containerfile").read_text()).splitlines()
    return [line.split(None, 1) for line in lines if line.strip() and not line.startswith("#")]


def test_the_container_recipe():
    import json

    instructions = _instructions()
    by_name = {}
    for name, value in instructions:
        by_name.setdefault(name, []).append(value)
    assert re.fullmatch(r"python:3\.1[0-9]-slim", by_name["FROM"][0])
    assert by_name["USER"] == ["telly"]  # never root
    entry = json.loads(by_name["ENTRYPOINT"][0])
    assert entry == ["telly-autoinst-collector"]  # the collector distribution's console script
    args = _collector_args(json.loads(by_name["CMD"][0]))
    assert args.command == "serve" and args.host == "0.0.0.0" and str(args.port) == PORT
    assert by_name["EXPOSE"] == [PORT] and f"127.0.0.1:{PORT}/healthz" in by_name["HEALTHCHECK"][0]
    environment = dict(shlex.split(item)[0].split("=", 1) for item in shlex.split(by_name["ENV"][0]))
    assert environment["TELLY_COLLECTOR_DB"].startswith("sqlite:////data/") and environment["HOME"] == "/data"
    assert by_name["VOLUME"] == ['["/data"]']
    # What it installs exists in the build context (the repository's root).
    assert (ROOT / "pyproject.toml").exists() and (ROOT / "collector" / "pyproject.toml").exists()
    assert "postgres" in (ROOT / "collector" / "pyproject.toml").read_text()
    ignored = (DEPLOY / "Containerfile.dockerignore").read_text()
    assert "**/.git" in ignored and "**/*.sqlite3*" in ignored


def test_the_compose_file():
    import yaml

    check = shutil.which("check-jsonschema") or os.path.join(os.path.dirname(sys.executable), "check-jsonschema")
    if not os.path.exists(check):
        pytest.skip("check-jsonschema is not installed (dependency group lint)")
    done = subprocess.run([check, "--builtin-schema", "vendor.compose-spec", str(DEPLOY / "compose.yaml")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    build = services["collector"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Containerfile"
    sqlite, postgres = (_collector_args(services[name]["command"]) for name in ("collector", "collector-postgres"))
    assert sqlite.command == postgres.command == "serve" and postgres.workers > 1
    assert services["collector"]["environment"]["TELLY_COLLECTOR_DB"].startswith("sqlite:////data/")
    assert services["collector"]["volumes"] == ["collector-data:/data"]
    assert "postgresql://telly:" in services["collector-postgres"]["entrypoint"][2]
    assert services["postgres"]["profiles"] == services["collector-postgres"]["profiles"] == ["postgres"]
    for name in ("collector", "collector-postgres"):
        assert all(port.startswith("127.0.0.1:") and port.endswith(f":{PORT}") for port in services[name]["ports"])


@pytest.fixture
def installed(tmp_path):
    """A stand-in for /opt/telly-collector/bin/telly-autoinst-collector that runs this checkout."""
    binary = tmp_path / "opt" / "bin" / "telly-autoinst-collector"
    binary.parent.mkdir(parents=True)
    binary.write_text(f"#!/bin/sh\nPYTHONPATH={shlex.quote(SOURCE_PATH)} exec {shlex.quote(sys.executable)} "
                      "-m telly_autoinst collector \"$@\"\n")
    binary.chmod(0o755)
    return binary


def _localized(text, binary, state):
    return (text.replace("/opt/telly-collector/bin/telly-autoinst-collector", str(binary))
            .replace("/var/lib/telly-collector", str(state)))


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_the_systemd_units_verify(tmp_path, installed):
    for name in ("telly-collector.service", "telly-collector-backup.service", "telly-collector-backup.timer"):
        (tmp_path / name).write_text(_localized((DEPLOY / name).read_text(), installed, tmp_path / "state"))
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", *(str(tmp_path / n) for n in (
        "telly-collector.service", "telly-collector-backup.service", "telly-collector-backup.timer"))],
        capture_output=True, text=True, env=dict(os.environ, SYSTEMD_LOG_LEVEL="notice"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_units_commands_serve_and_back_up(tmp_path, installed):
    import httpx

    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    unit = _unit("telly-collector.service")
    environment = {"PATH": "/usr/bin:/bin"}
    for item in unit["Environment"]:
        key, _, value = _localized(item, installed, state).partition("=")
        environment[key] = value
    argv = shlex.split(_localized(unit["ExecStart"][0], installed, state))
    args = _collector_args(argv[1:])
    assert args.command == "serve" and args.host == "127.0.0.1" and str(args.port) == PORT
    assert unit["KillSignal"] == ["SIGTERM"] and unit["User"] == _unit("telly-collector-backup.service")["User"]
    argv[argv.index("--port") + 1] = "0"
    registered = subprocess.run([str(installed), "project", "create", "demo", "--json"], env=environment,
                                capture_output=True, text=True)
    assert registered.returncode == 0, registered.stderr
    server = subprocess.Popen(argv, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = re.search(r"listening on (http://\S+)", server.stdout.readline()).group(1)
        for _ in range(100):
            try:
                assert httpx.get(url + "/healthz", timeout=1).json()["ok"]
                break
            except httpx.HTTPError:
                import time

                time.sleep(0.1)
        # The backup unit's command, as systemd runs it (%% is a literal %), while the collector serves.
        backup = _unit("telly-collector-backup.service")
        command = shlex.split(_localized(backup["ExecStart"][0], installed, state).replace("%%", "%"))
        done = subprocess.run(command, env=dict(environment, STATE_DIRECTORY=str(state)), capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stderr
        (made,) = (state / "backups").glob("collector-*.backup")
        assert re.fullmatch(r"collector-\d{8}T\d{6}Z\.backup", made.name) and made.stat().st_mode & 0o077 == 0
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    log = server.stderr.read()
    assert server.returncode == 0 and f"database {state}/collector.sqlite3" in log and "stopped" in log, log


def test_the_proxies_forward_to_the_units_port_with_tls_and_no_access_log():
    unit = _collector_args(shlex.split(_unit("telly-collector.service")["ExecStart"][0])[1:])
    upstream = f"{unit.host}:{unit.port}"
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert f"proxy_pass http://{upstream};" in nginx and "listen 443 ssl;" in nginx
    assert "ssl_certificate " in nginx and "ssl_certificate_key " in nginx
    servers = nginx.count("server {")
    assert nginx.count("access_log off;") == servers  # no block logs client addresses
    assert "X-Forwarded-For" not in nginx.replace("# No X-Forwarded-For", "")
    size = re.search(r"client_max_body_size (\d+)m;", nginx)
    assert size and int(size.group(1)) >= 1  # the collector's own cap is 1 MiB on the wire
    caddy = (DEPLOY / "Caddyfile").read_text()
    assert f"reverse_proxy {upstream}" in caddy and "log" not in caddy.replace("access log", "")
    assert unit.public_url.startswith("https://") and unit.public_url.split("//")[1] in nginx
    assert unit.public_url.split("//")[1] + " {" in caddy


def test_the_operators_guide_covers_every_file_and_operations_command():
    guide = (ROOT / "docs" / "operators.md").read_text()
    for path in DEPLOY.iterdir():
        if path.suffix != ".dockerignore":
            assert f"(../collector/deploy/{path.name})" in guide, path.name
    for target in re.findall(r"\]\((\.\./[^)#]+)\)", guide):
        assert (ROOT / "docs" / target).resolve().exists(), target
    for command in ("project create", "project list", "project rotate-token", "project delete", "backup", "restore"):
        assert f"telly-autoinst-collector {command} " in guide, command
        assert tuple(command.split()) in {path for path, *_ in _COMMANDS}
    for reason in ("overloaded", "storage_unavailable", "internal_error", "/healthz", "--request-log"):
        assert reason in guide


def test_the_compose_postgres_entrypoint_passes_the_secret_and_the_command(tmp_path):
    import yaml

    service = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["collector-postgres"]
    # What Compose runs: "$$" is its escape for a literal "$".
    entrypoint = [part.replace("$$", "$").replace("/run/secrets/", f"{tmp_path}/") for part in service["entrypoint"]]
    (tmp_path / "postgres_password").write_text("s3cretPassw0rd")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stand_in = bin_dir / "telly-autoinst-collector"
    stand_in.write_text('#!/bin/sh\nprintf "%s\\n" "$TELLY_COLLECTOR_DB" "$@"\n')
    stand_in.chmod(0o755)
    done = subprocess.run(entrypoint + service["command"], capture_output=True, text=True,
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["postgresql://telly:s3cretPassw0rd@postgres:5432/telly", *service["command"]]
