"""What a watched import costs in modules: the warm first import plus the report hand-off at exit.

The default engine must not load the heavy modules a wrapt-based or json-based path would
(issue 8): a program that imports a watched package which itself imports nothing ends with
none of these in ``sys.modules`` that were not there before its import.
"""

import ast

import pytest

from tests.support.venvs import find_python

pytestmark = pytest.mark.slow

FORBIDDEN = {"wrapt", "asyncio", "importlib.metadata", "inspect", "ast", "json", "re", "typing", "email",
             "socket", "requests"}

_PACKAGE = '''"""A watched package that imports nothing."""


def hello(name):
    return "hello " + name


class Greeter:
    def __init__(self, name):
        self.name = name

    def greet(self):
        return hello(self.name)
'''

# Our atexit handler is registered before the watched import, so it runs after the client's
# (atexit runs last-registered first): it sees what the hand-off loaded.
_PROGRAM = '''
import atexit, os, sys
before = set(sys.modules)

def after_exit():
    new = sorted(set(sys.modules) - before)
    sys.stdout.write(repr(new) + "\\n")

atexit.register(after_exit)
import quietpkg
quietpkg.Greeter("x").greet()
'''


def _versions():
    return [v for v in ("3.9", "3.11", "3.13") if find_python(v)]


@pytest.mark.parametrize("version", _versions())
def test_warm_first_import_and_hand_off_load_no_heavy_module(venvs, home, tmp_path, version):
    venv = venvs.get(python=find_python(version))
    work = tmp_path / "work"
    (work / "quietpkg").mkdir(parents=True)
    (work / "quietpkg" / "__init__.py").write_text(_PACKAGE)
    env = {"TELLY_AUTOINST_PACKAGES": "quietpkg", "TELLY_HTTP_SERVER": "http://127.0.0.1:9",
           "TELLY_SPOOL_DIR": str(tmp_path / "spool")}
    cold = venv.run(["-c", _PROGRAM], home, env=env, cwd=work)
    assert cold.returncode == 0, cold.stderr
    warm = venv.run(["-c", _PROGRAM], home, env=env, cwd=work)
    assert warm.returncode == 0 and not warm.stderr, warm.stderr
    added = set(ast.literal_eval(warm.stdout.strip().splitlines()[-1]))
    assert "quietpkg" in added and "telly_autoinst.engines.rewrite" in added
    assert not added & FORBIDDEN, sorted(added & FORBIDDEN)
    # The hand-off happened: the runs queued their reports for the detached sender (which
    # cannot deliver them to port 9, so they stay).
    assert len(list((tmp_path / "spool").glob("*.report"))) == 2
