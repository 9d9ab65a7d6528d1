"""The tests' venv cache (tests/support/venvs.py) is shared by test runs that go side by side."""

import subprocess
import sys

from tests.support.venvs import ROOT, clean_env

# One test run's request for a venv: its builds are logged, and each takes a second, so that a
# second run asking for the same venv meanwhile would build it too if nothing made it wait.
_GET_ONE = """
import sys, time
from tests.support import venvs

cache, log, scratch = sys.argv[1:]
build = venvs.VenvFactory._build

def logged_build(self, path, *args, **kwargs):
    with open(log, "a") as fh:
        fh.write(str(path) + "\\n")
    time.sleep(1)
    return build(self, path, *args, **kwargs)

venvs.VenvFactory._build = logged_build
venv = venvs.VenvFactory(cache, scratch).get(with_telly=False)
venv.run("import sys; assert sys.prefix != sys.base_prefix", scratch, check=True)
print(venv.path)
"""


def test_two_runs_that_need_the_same_venv_at_once_build_it_once(tmp_path, home):
    cache, log = tmp_path / "cache", tmp_path / "builds.log"
    for n in range(2):
        (tmp_path / f"run{n}").mkdir()
    runs = [subprocess.Popen([sys.executable, "-c", _GET_ONE, str(cache), str(log), str(tmp_path / f"run{n}")],
                             cwd=ROOT, env=clean_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for n in range(2)]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    prefixes = {stdout.strip() for stdout, _ in outputs}
    assert len(prefixes) == 1  # both use the one venv, and it works
    assert log.read_text().splitlines() == [prefixes.pop()]  # built once
