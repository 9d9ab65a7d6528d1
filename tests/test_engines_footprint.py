"""What a watched import costs in modules: the warm first import plus the report hand-off at exit.

The default engine must not load the heavy modules a wrapt-based or json-based path would
(issue 8): a program that imports a watched package which itself imports nothing ends with
none of these in ``sys.modules`` that were not there before its import.
"""

import ast
import json

import pytest

from telly_autoinst import spool as spooling
from tests.support.spooled import age_last_sender, wait_sender_done
from tests.support.venvs import find_python

pytestmark = pytest.mark.slow

FORBIDDEN = {"wrapt", "asyncio", "importlib.metadata", "inspect", "ast", "json", "re", "typing", "email",
             "socket", "requests",
             # What a package that imports none of them must not pay for either (threading: +15M
             # instructions on 3.11 with what it imports); the client uses their C modules.
             "threading", "weakref", "functools", "collections", "operator", "types"}

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


# What the two runs of a test count together: one Greeter("x").greet() each.
TWO_RUNS = {"quietpkg.Greeter": 2, "quietpkg.Greeter.greet": 2, "quietpkg.hello": 2}


def _built_reports(directory):
    """The reports the sender built and could not deliver. Two runs' counts give two reports, or one
    when the sender found both queued (it merges a user's counts of a day into one report)."""
    names = [name for name in spooling.entries(str(directory)) if not spooling.is_counts(name)]
    assert names, f"no report was built in {directory}"
    return [json.loads(spooling.read(str(directory), name)[1]) for name in names]


def _counted(reports):
    """The counts of REPORTS summed."""
    total = {}
    for body in reports:
        for key, count in body["stats"].items():
            total[key] = total.get(key, 0) + count
    return total


def _versions():
    return [v for v in ("3.9", "3.11", "3.13") if find_python(v)]


def _quietpkg(tmp_path):
    """A work directory holding the watched package the footprint programs import."""
    work = tmp_path / "work"
    (work / "quietpkg").mkdir(parents=True)
    (work / "quietpkg" / "__init__.py").write_text(_PACKAGE)
    return work


@pytest.mark.cross_python
@pytest.mark.parametrize("version", _versions())
def test_warm_first_import_and_hand_off_load_no_heavy_module(venvs, home, tmp_path, version):
    venv = venvs.get(python=find_python(version))
    work = _quietpkg(tmp_path)
    env = {"TELLY_AUTOINST_PACKAGES": "quietpkg", "TELLY_HTTP_SERVER": "http://127.0.0.1:9",
           "TELLY_SPOOL_DIR": str(tmp_path / "spool")}
    cold = venv.run(["-c", _PROGRAM], home, env=env, cwd=work)
    assert cold.returncode == 0, cold.stderr
    warm = venv.run(["-c", _PROGRAM], home, env=env, cwd=work)
    assert warm.returncode == 0 and not warm.stderr, warm.stderr
    added = set(ast.literal_eval(warm.stdout.strip().splitlines()[-1]))
    assert "quietpkg" in added and "telly_autoinst.engines.rewrite" in added
    assert not added & FORBIDDEN, sorted(added & FORBIDDEN)
    # The hand-off happened: the runs queued their counts for the detached sender, which built
    # the reports and cannot deliver them to port 9, so they stay.
    wait_sender_done(tmp_path / "spool")
    assert _counted(_built_reports(tmp_path / "spool")) == TWO_RUNS


# What the default hand-off at exit must not load: building the report (report, facts, identity,
# _jsontext and what they import) and sending it (_http, gzip, sender, random, signal) are the
# detached sender's work; and no module of the client at all, since activation loaded the one
# that holds the exit side (pipeline), but for how to start a sender in an exit that starts one.
EXIT_FORBIDDEN = {"gzip", "zlib", "random", "signal", "getpass", "hashlib", "json", "subprocess", "uuid",
                  "platform"}

# The first handler registered runs last: it reports what was loaded since the second one, which
# is registered after the watched import (so after the client's own exit handler) and so runs
# just before the client's flush, with the time then and the spool's entries after the flush.
_EXIT_PROGRAM = '''
import atexit, os, sys, time
seen = {}
atexit.register(lambda: sys.stdout.write(repr((sorted(set(sys.modules) - seen["before_flush"]), seen["at"],
                                              sorted(os.listdir(os.environ["TELLY_SPOOL_DIR"])))) + "\\n"))
import quietpkg
quietpkg.Greeter("x").greet()
atexit.register(lambda: seen.update(before_flush=set(sys.modules), at=time.time_ns()))
'''


@pytest.mark.cross_python
@pytest.mark.parametrize("version", _versions())
def test_exit_hand_off_leaves_building_and_sending_to_the_sender(venvs, home, tmp_path, version):
    venv = venvs.get(python=find_python(version))
    work = _quietpkg(tmp_path)
    spool = tmp_path / "spool"
    # Level II off: a sender merges the queued counts of one user and day only with it on, and a
    # sender started by the second warm exit would otherwise fold that run's entry into the first
    # one's, under the older name, before the run lists the spool.
    env = {"TELLY_AUTOINST_PACKAGES": "quietpkg", "TELLY_HTTP_SERVER": "http://127.0.0.1:9",
           "TELLY_SPOOL_DIR": str(spool), "TELLY_INCLUDE_LEVEL2": "0"}
    cold = venv.run(["-c", _EXIT_PROGRAM], home, env=env, cwd=work)
    assert cold.returncode == 0 and not cold.stderr, cold.stderr
    wait_sender_done(spool)  # no sender may merge a later run's entry away meanwhile
    # Warm, a sender ran less than a minute ago: the exit queues its counts and starts none, then
    # warm again after a minute: that exit starts one, and only it loads how to (_launch).
    for sender_due, client_modules in ((False, []), (True, ["telly_autoinst._launch"])):
        if sender_due:
            age_last_sender(spool)
        proc = venv.run(["-c", _EXIT_PROGRAM], home, env=env, cwd=work)
        assert proc.returncode == 0 and not proc.stderr, proc.stderr
        loaded, before_flush, entries = ast.literal_eval(proc.stdout.strip().splitlines()[-1])
        # Measured across the flush, not after it: the run's entry was queued in between (its
        # counts, or the report its sender already built from them under the same name).
        assert [name for name in entries if name.endswith((".counts", ".report")) and int(name[:20]) >= before_flush]
        assert [name for name in loaded if name.startswith("telly_autoinst")] == client_modules, loaded
        assert not set(loaded) & EXIT_FORBIDDEN, sorted(set(loaded) & EXIT_FORBIDDEN)
    # The sender still built the reports of the three runs, with facts the host never computed.
    wait_sender_done(spool)
    reports = _built_reports(spool)
    assert _counted(reports) == {key: 3 for key in TWO_RUNS}
    assert all(body["interpreter"]["mode"] == "command" and body["platform"]["os"] for body in reports)
