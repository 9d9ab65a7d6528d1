"""Real venvs with the project installed, for fresh-interpreter tests, cached by their content.

A venv is built once per (interpreter, installed content) and reused: across a session, and
across the sessions of one ``tests/run`` (its 3.9 and 3.13 reruns reuse the venvs the main run
built for those interpreters) through ``TELLY_TEST_CACHE``. The key is the interpreter's real
path and the *content* of what is installed (wheel and source-tree digests, requirement strings
sorted), never the order or temporary path it came from. Venvs are made without pip and filled
with one ``uv pip install`` (one pip install when uv is missing). Each test gets its own HOME so
no test sees another's salt, opt-in file, cache or spool.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
# The collector is a distribution of its own beside the client (collector/): a PYTHONPATH that runs
# both from this checkout, for subprocesses that run `python -m telly_autoinst collector`.
SOURCE_PATH = os.pathsep.join([str(ROOT), str(ROOT / "collector")])
# Taken before any test replaces HOME (tests/support/fixtures.py isolates it for every test).
_PYENV_VERSIONS = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
# What the project wheel is built from (pyproject.toml's wheel target and its metadata): its
# digest keys the cached wheel, so editing a test does not rebuild every venv.
_PROJECT_SOURCES = ("pyproject.toml", "README.md", "LICENSE", "telly_autoinst", "_telly_autoinst_bootstrap.py",
                    "_telly_autoinst_stdlib.py", "telly_autoinst.pth", "config")
# Build by-products and caches that a source tree's digest must not see.
_NOT_SOURCE = {"__pycache__", "build", "dist", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis",
               "node_modules", ".git"}


def find_python(version):
    """The interpreter for "3.9" .. "3.13" from pyenv, or None when it is not installed."""
    if version == "%d.%d" % sys.version_info[:2]:
        return sys.executable
    # pyenv's own directories first: its shim on PATH fails unless that version is selected.
    for candidate in sorted(_PYENV_VERSIONS.glob(f"{version}.*"), reverse=True):
        exe = candidate / "bin" / "python3"
        if exe.exists():
            return str(exe)
    return shutil.which(f"python{version}")


def find_uv():
    """uv from this interpreter's bin directory or PATH, or None (then pip does the installs)."""
    return shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")


# The variables through which a program finds the user's home and caches.
_HOME_VARIABLES = ("HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME")


def point_home_at(root, setenv):
    """Point HOME and XDG_* into ROOT through SETENV (a monkeypatch's, or os.environ's): what runs
    there then, the hook of a hooked interpreter included, writes nothing into the real home."""
    for name, sub in zip(_HOME_VARIABLES, ("", ".cache", ".config", ".local/share", ".local/state")):
        setenv(name, str(Path(root) / sub))


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


def uv_env(cache):
    """The environment of a uv command: its cache in the test cache, never a download of Python.

    Files are copied, not hard-linked from uv's cache: a hard link shares the inode, so every other
    venv that installs the same wheel (a test or a CI stage running alongside) changes the link
    count, and with it the ``st_ctime_ns`` of this venv's files, which the index and the warm
    state stamp. A test would then see a stale index it did not cause."""
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env.update(UV_CACHE_DIR=str(Path(cache) / "uv"), UV_PYTHON_DOWNLOADS="never", UV_NO_PROGRESS="1",
               UV_LINK_MODE="copy")
    return env


def _run_quietly(cmd, env=None):
    """Run an install or build step; its output is shown only when it fails."""
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")


@contextlib.contextmanager
def _locked(path):
    """Hold an exclusive lock on PATH's lock file: concurrent sessions build each entry once."""
    lock = Path(str(path) + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _source_files(top):
    """The files of a source tree, in a stable order, without build by-products."""
    if top.is_file():
        yield top
        return
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if d not in _NOT_SOURCE and not d.endswith(".egg-info"))
        for name in sorted(filenames):
            if not name.endswith(".pyc"):
                yield Path(dirpath, name)


def tree_digest(root, parts=None):
    """sha256 of the files under ROOT (or only its PARTS), by relative path and content."""
    root = Path(root)
    digest = hashlib.sha256()
    for top in sorted(root / part for part in parts) if parts else [root]:
        for path in _source_files(top):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _content_key(item):
    """What a pip argument installs, independent of where it lies: a digest for files and trees."""
    path = Path(str(item))
    if not path.is_absolute():
        return "req:" + str(item)
    if path.is_file():
        return "file:" + hashlib.sha256(path.read_bytes()).hexdigest()
    return "tree:" + tree_digest(path)


def _interpreter_key(python):
    """The real interpreter behind PYTHON (a venv's python resolves to its base), and its build."""
    real = os.path.realpath(python)
    return f"{real}@{os.stat(real).st_mtime_ns}"


class Venv:
    """A venv directory with helpers to run its interpreter."""

    def __init__(self, path, cache):
        self.path = Path(path)
        self.python = str(self.path / "bin" / "python")
        self._cache = Path(cache)

    @property
    def site_packages(self):
        out = subprocess.run([self.python, "-c", "import sysconfig;print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True)
        return Path(out.stdout.strip())

    def pip(self, *args):
        """Install ARGS into this venv (pip's arguments; uv does the work when it is available)."""
        uv = find_uv()
        if uv:
            # Compiled like pip does: the tests' children never write bytecode (clean_env), so
            # without it every start would compile the installed modules again.
            _run_quietly([uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", self.python, *args],
                         env=uv_env(self._cache))
        else:
            _run_quietly([self.python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *args])

    def pip_uninstall(self, *names):
        uv = find_uv()
        if uv:
            _run_quietly([uv, "pip", "uninstall", "--quiet", "--python", self.python, *names],
                         env=uv_env(self._cache))
        else:
            _run_quietly([self.python, "-m", "pip", "uninstall", "-q", "-y", *names])

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


def build_wheel(source, cache, parts=None):
    """A wheel of the source tree (its own PEP 517 backend), cached under CACHE by the tree's digest.

    The same tree gives the same file in every session and interpreter run, so the venvs keyed
    on it are shared too. PARTS limits the digest to what the wheel is built from.
    """
    source, cache = Path(source), Path(cache)
    out = cache / "wheels" / f"{Path(source).name}-{tree_digest(source, parts)[:16]}"
    with _locked(out):
        found = sorted(out.glob("*.whl"))
        if found:
            return found[0]
        scratch = Path(tempfile.mkdtemp(prefix="build-", dir=cache))
        try:
            uv = find_uv()
            if uv:
                _run_quietly([uv, "build", "--quiet", "--wheel", "--out-dir", scratch, source], env=uv_env(cache))
            else:
                _run_quietly([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--disable-pip-version-check",
                              "-w", scratch, source])
            (wheel,) = scratch.glob("*.whl")
            out.mkdir(parents=True, exist_ok=True)
            return Path(shutil.move(str(wheel), str(out / wheel.name)))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


class VenvFactory:
    """Builds venvs, and caches the shared ones under CACHE by their content (see the module docstring)."""

    project_root = ROOT

    def __init__(self, cache, scratch):
        self.cache = Path(cache)
        self.scratch = Path(scratch)
        self._project_wheel = None
        self._count = 0

    def project_wheel(self):
        if self._project_wheel is None:
            self._project_wheel = build_wheel(ROOT, self.cache, parts=_PROJECT_SOURCES)
        return self._project_wheel

    def get(self, python=None, extra=(), with_telly=True, system_site_packages=False):
        """A shared venv for ``python`` with telly_autoinst (a real wheel) and ``extra`` pip args.

        Shared across sessions: tests must not install into it or uninstall from it.
        """
        python = python or sys.executable
        args = self._install_args(extra, with_telly)
        key = json.dumps([_interpreter_key(python), sorted(_content_key(a) for a in args), system_site_packages])
        path = self.cache / "venvs" / hashlib.sha256(key.encode()).hexdigest()[:16]
        ready = path / ".telly-test-venv"
        with _locked(path):
            if not ready.exists():
                shutil.rmtree(path, ignore_errors=True)  # a build that was interrupted
                self._build(path, python, args, system_site_packages)
                ready.write_text(key + "\n")
        return Venv(path, self.cache)

    def new(self, python=None, extra=(), with_telly=True, system_site_packages=False, with_pip=False):
        """A venv of the test's own, which it may change (WITH_PIP: for a program that runs pip in it)."""
        self._count += 1
        path = self.scratch / f"venv-{self._count}"
        return self._build(path, python or sys.executable, self._install_args(extra, with_telly),
                           system_site_packages, with_pip)

    def _install_args(self, extra, with_telly):
        return ([str(self.project_wheel())] if with_telly else []) + [str(e) for e in extra]

    def _build(self, path, python, args, system_site_packages, with_pip=False):
        """Make the venv (without pip unless asked), then install ARGS in one command."""
        uv = find_uv()
        if uv:
            _run_quietly([uv, "venv", "--quiet", "--python", os.path.realpath(python),
                          *(["--seed"] if with_pip else []),
                          *(["--system-site-packages"] if system_site_packages else []), path],
                         env=uv_env(self.cache))
        else:
            _run_quietly([python, "-m", "venv", *(["--system-site-packages"] if system_site_packages else []),
                          path])
        venv = Venv(path, self.cache)
        if args:
            venv.pip(*args)
        return venv
