"""Real venvs with the project installed by pip, for fresh-interpreter tests.

A venv is built once per (python, extra packages) and reused across the session; each test
gets its own HOME so no test sees another's salt, opt-in file, cache or spool.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
# The collector is a distribution of its own beside the client (collector/): a PYTHONPATH that runs
# both from this checkout, for subprocesses that run `python -m telly_autoinst collector`.
SOURCE_PATH = os.pathsep.join([str(ROOT), str(ROOT / "collector")])


def find_python(version):
    """The interpreter for "3.9" .. "3.13" from pyenv, or None when it is not installed."""
    if version == "%d.%d" % sys.version_info[:2]:
        return sys.executable
    # pyenv's own directories first: its shim on PATH fails unless that version is selected.
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for candidate in sorted(root.glob(f"{version}.*"), reverse=True):
        exe = candidate / "bin" / "python3"
        if exe.exists():
            return str(exe)
    return shutil.which(f"python{version}")


def clean_env(home, **extra):
    """An environment with no TELLY_*/DO_NOT_TRACK/CI leaking in from the outer shell."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TELLY_", "PYTHON", "VIRTUAL_ENV", "XDG_"))
        and k not in ("DO_NOT_TRACK", "CI", "GITHUB_ACTIONS", "GITLAB_CI", "BUILD_ID", "BUILD_NUMBER",
                      "RUN_ID", "CONTINUOUS_INTEGRATION", "JENKINS_URL", "TF_BUILD", "BUILDKITE")
    }
    env["HOME"] = str(home)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update({k: str(v) for k, v in extra.items() if v is not None})
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
    return env


class Venv:
    """A venv directory with helpers to run its interpreter."""

    def __init__(self, path):
        self.path = Path(path)
        self.python = str(self.path / "bin" / "python")

    @property
    def site_packages(self):
        out = subprocess.run([self.python, "-c", "import sysconfig;print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True)
        return Path(out.stdout.strip())

    def pip(self, *args):
        subprocess.run([self.python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *args],
                       check=True, capture_output=True, text=True)

    def pip_uninstall(self, *names):
        subprocess.run([self.python, "-m", "pip", "uninstall", "-q", "-y", *names],
                       check=True, capture_output=True, text=True)

    def run_on_tty(self, code, home, env=None):
        """Run ``python -c CODE`` with stdin and stderr on a pseudo-terminal; return (stdout, tty text)."""
        import pty

        master, slave = pty.openpty()
        proc = subprocess.Popen([self.python, "-c", code], stdin=slave, stdout=subprocess.PIPE, stderr=slave,
                                env=clean_env(home, **(env or {})), cwd=str(home))
        os.close(slave)
        stdout, _ = proc.communicate(timeout=60)
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO once the child has closed its side
                break
            if not data:
                break
            chunks.append(data)
        os.close(master)
        return stdout.decode(), b"".join(chunks).decode(errors="replace")

    def run(self, args, home, env=None, cwd=None, timeout=120, check=False, input=None):
        """Run ``python ARGS`` in this venv with a clean environment and the given HOME."""
        if isinstance(args, str):
            args = ["-c", args]
        proc = subprocess.run([self.python, *args], capture_output=True, text=True, timeout=timeout,
                              env=clean_env(home, **(env or {})), cwd=cwd or home, input=input)
        if check and proc.returncode != 0:
            raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc


def build_wheel(source, out_dir):
    """Build a wheel from a source tree with pip (PEP 517, the tree's own backend)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    before = set(out_dir.glob("*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--disable-pip-version-check",
                    "-w", str(out_dir), str(source)], check=True, capture_output=True, text=True)
    new = set(out_dir.glob("*.whl")) - before
    if not new:  # rebuilt the same file name
        name = Path(source).name.replace("-", "_")
        new = {p for p in out_dir.glob("*.whl") if p.name.lower().startswith(name.lower())}
    return max(new, key=lambda p: p.stat().st_mtime)


class VenvFactory:
    """Builds and caches venvs for one test session."""

    project_root = ROOT

    def __init__(self, base):
        self.base = Path(base)
        self._project_wheel = None
        self._cache = {}
        self._count = 0

    def project_wheel(self):
        if self._project_wheel is None:
            self._project_wheel = build_wheel(ROOT, self.base / "wheels")
        return self._project_wheel

    def get(self, python=None, extra=(), with_telly=True, system_site_packages=False):
        """A shared venv for ``python`` with telly_autoinst (a real wheel) and ``extra`` pip args.

        Shared across the session: tests must not install into it or uninstall from it.
        """
        key = json.dumps([python or sys.executable, list(map(str, extra)), with_telly, system_site_packages])
        if key not in self._cache:
            self._cache[key] = self.new(python, extra, with_telly, system_site_packages)
        return self._cache[key]

    def new(self, python=None, extra=(), with_telly=True, system_site_packages=False):
        """A venv of the test's own, which it may change."""
        python = python or sys.executable
        self._count += 1
        path = self.base / f"venv-{self._count}"
        cmd = [python, "-m", "venv", str(path)]
        if system_site_packages:
            cmd.insert(3, "--system-site-packages")
        subprocess.run(cmd, check=True)
        venv = Venv(path)
        args = [str(self.project_wheel())] if with_telly else []
        args += [str(e) for e in extra]
        if args:
            venv.pip(*args)
        return venv
