"""Real packages from wheels on the default engine: nothing falls back to wrapt, nothing is counted twice.

The packages are those whose shapes the in-frame engine once handed to wrapt: generated
``__init__`` methods (attrs, rich, packaging's dataclasses, more-itertools), ``__init__(*args,
**kwargs)`` (jinja2), a private function published in another block (more-itertools), and
``__module__`` reassigned on a package's exports (httpx). Each is used trivially, counted, and
run twice so that the second run is a warm one (index and code cache filled).
"""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

# Distributions, and the top-level modules they count under.
PACKAGES = ("click", "jinja2", "requests", "rich", "attrs", "httpx", "packaging", "more-itertools")
MODULES = "click,jinja2,requests,rich,attr,attrs,httpx,packaging,more_itertools"
# What the client itself needs, so that the venv installs from the wheelhouse alone.
CLIENT_NEEDS = ("wrapt>=1.14,!=2.2.0,<3", "importlib-metadata>=4.6; python_version < '3.10'",
                "tomli>=1.1; python_version < '3.11'")
# Modules that only a fallback to wrapt (or a cold run's discovery) brings into a warm run.
HEAVY = ("wrapt", "asyncio", "importlib.metadata")

PROGRAM = """
import json, sys
import attr, attrs, click, httpx, jinja2, more_itertools, rich.console
from packaging.requirements import Requirement
from packaging.version import Version


@attrs.define
class Point:
    x: int


@click.command()
def hello():
    pass


hello.main([], standalone_mode=False)
jinja2.Template("{{ x }}").render(x=1)
jinja2.Environment().from_string("{% set ns = namespace(a=1) %}{{ ns.a }}").render()
rich.console.Console(file=open("/dev/null", "w")).print("x")
Point(1), attr.evolve(Point(2), x=3)
str(Requirement("demo>=1.0; python_version > '3'")), Version("1.2") < Version("1.10")
list(more_itertools.batched([1, 2, 3], 2)), more_itertools.first([1])
httpx.create_ssl_context()
if "requests" in sys.argv:  # it imports importlib.metadata itself
    import requests

    requests.Request("GET", "http://127.0.0.1/").prepare()
print(json.dumps({"loaded": [name for name in HEAVY_NAMES if name in sys.modules]}))
""".replace("HEAVY_NAMES", repr(HEAVY))


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory):
    """The packages' wheels and their dependencies, downloaded once per session for this Python."""
    out = tmp_path_factory.mktemp("wheelhouse")
    # This interpreter's own pip, or its base interpreter's (a venv that uv made has none): the
    # same Python either way, so the wheels fit it.
    python = sys.executable
    if importlib.util.find_spec("pip") is None:
        python = os.path.join(sys.base_prefix, "bin", f"python{sys.version_info[0]}.{sys.version_info[1]}")
    subprocess.run([python, "-m", "pip", "download", "-q", "--disable-pip-version-check",
                    "--only-binary=:all:", "-d", str(out), *PACKAGES, *CLIENT_NEEDS, "requests>=2.25"],
                   check=True, capture_output=True, text=True)
    return out


@pytest.fixture(scope="module")
def venv(venvs, wheelhouse):
    return venvs.get(extra=["--no-index", "--find-links", str(wheelhouse), *PACKAGES])


def _run(venv, home, work, reports=None, *args):
    env = {"TELLY_AUTOINST_PACKAGES": MODULES}
    if reports is None:
        env["TELLY_DISABLE"] = "1"
    else:
        env.update(TELLY_STORAGE_TYPE="file", TELLY_LOCAL_STORAGE_PATH=str(reports))
    proc = venv.run(["program.py", *args], home, env=env, cwd=work)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _stats(reports):
    found = {}
    for path in sorted(reports.glob("*.json")):
        report = json.loads(path.read_text())
        assert report["client"]["engine"] == "rewrite", report["client"]
        for key, count in report["stats"].items():
            found[key] = found.get(key, 0) + count
    return found


def test_default_engine_imports_no_wrapt_and_counts_each_call_once(venv, home, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "program.py").write_text(PROGRAM)
    assert _run(venv, home, work)["loaded"] == []
    cold = _run(venv, home, work, tmp_path / "cold")
    assert "wrapt" not in cold["loaded"]
    warm_reports = tmp_path / "warm"
    assert _run(venv, home, work, warm_reports)["loaded"] == []  # wrapt, asyncio, importlib.metadata
    # requests imports importlib.metadata itself; the hook adds nothing to what it loads.
    with_requests = _run(venv, home, work, None, "requests")["loaded"]
    assert _run(venv, home, work, tmp_path / "requests", "requests")["loaded"] == with_requests
    assert _stats(tmp_path / "requests")["requests.models.Request"] == 1

    stats = _stats(warm_reports)
    dry = venv.run(["-m", "telly_autoinst", "--dry-run", "--json"], home, cwd=work,
                   env={"TELLY_AUTOINST_PACKAGES": MODULES})
    plan = json.loads(dry.stdout)
    listed = {key for entry in plan["distributions"] for key in entry["keys"]}
    engines = {engine for entry in plan["distributions"] for engine in entry["engines"].values()}
    assert engines == {"rewrite"}
    # A call counted under a second key shows as a key --dry-run does not list (httpx's
    # create_ssl_context was once counted as httpx._config.create_ssl_context too).
    assert set(stats) <= listed, sorted(set(stats) - listed)
    assert stats["httpx.create_ssl_context"] == 1
    assert not [key for key in stats if key.endswith(".create_ssl_context") and key != "httpx.create_ssl_context"]
    assert stats["jinja2.utils.Namespace"] == 1  # __init__(*args, **kwargs), counted in frame
    # Before 3.13 ``batched`` is ``_batched``, published in the ``else`` block of an ``if``.
    assert stats["more_itertools.recipes." + ("batched" if sys.version_info >= (3, 13) else "_batched")] == 1
    not_counted = {item["key"] for entry in plan["distributions"] for item in entry["not_counted"]}
    assert "packaging._tokenizer.Token" in not_counted  # a dataclass: listed, not handed to wrapt
