"""Level I facts about this interpreter and machine: low-cardinality values, never a path, argument or env value.

Every fact here is cheap to compute (no subprocess, no ``importlib.metadata`` import) because a
report may be built on the exit path; the costly ones are cached once per process.
"""

import functools
import os
import sys

# Vendor table in the spirit of watson/ci-info: the variable that proves the vendor, and its name.
# Checked in order; the first match names the vendor.
_CI_VENDORS = (
    ("GITHUB_ACTIONS", "github_actions"),
    ("GITLAB_CI", "gitlab"),
    ("CIRCLECI", "circleci"),
    ("TRAVIS", "travis"),
    ("JENKINS_URL", "jenkins"),
    ("BUILDKITE", "buildkite"),
    ("TF_BUILD", "azure_pipelines"),
    ("APPVEYOR", "appveyor"),
    ("BITBUCKET_BUILD_NUMBER", "bitbucket"),
    ("TEAMCITY_VERSION", "teamcity"),
    ("DRONE", "drone"),
    ("CODEBUILD_BUILD_ARN", "aws_codebuild"),
    ("BUILDER_OUTPUT", "google_cloud_build"),
    ("SEMAPHORE", "semaphore"),
    ("NETLIFY", "netlify"),
    ("VERCEL", "vercel"),
    ("CF_PAGES", "cloudflare_pages"),
    ("HEROKU_TEST_RUN_ID", "heroku"),
    ("WOODPECKER_CI", "woodpecker"),
    ("CIRRUS_CI", "cirrus"),
    ("BITRISE_IO", "bitrise"),
    ("SCREWDRIVER", "screwdriver"),
    ("HUDSON_URL", "hudson"),
    ("GO_PIPELINE_LABEL", "gocd"),
)
# Generic variables that many CI systems set; ci-info's list.
_CI_GENERIC = ("CI", "CONTINUOUS_INTEGRATION", "BUILD_ID", "BUILD_NUMBER", "RUN_ID")
# The ceiling on reported distributions: a project has few direct dependencies, and a bound keeps
# a malformed METADATA from growing the report.
_MAX_DISTRIBUTIONS = 100


def ci_vendor(environ=None):
    """(is_ci, vendor_or_None) from the environment; ``CI=false`` (or 0/no/off) means not CI."""
    environ = os.environ if environ is None else environ
    ci = environ.get("CI")
    if ci is not None and ci.strip().lower() in ("false", "0", "no", "off"):
        return False, None
    for variable, vendor in _CI_VENDORS:
        if environ.get(variable):
            return True, vendor
    if any(environ.get(variable) for variable in _CI_GENERIC):
        return True, None
    return False, None


def interactive():
    """Whether stderr is a terminal: the first-run notice is shown (and waited for) only there."""
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def interpreter():
    """Implementation, version and how this interpreter was started (script, module, command, repl, jupyter)."""
    return {
        "implementation": sys.implementation.name,
        "version": _python_version(),
        "mode": _run_mode(),
    }


def _python_version():
    """What platform.python_version() returns, without importing platform (~2 ms on the exit path)."""
    info = sys.version_info
    version = f"{info.major}.{info.minor}.{info.micro}"
    if info.releaselevel != "final":
        version += {"alpha": "a", "beta": "b", "candidate": "rc"}.get(info.releaselevel, "") + str(info.serial)
    return version


def _uname():
    """(system, release, machine): os.uname() where it exists, platform.uname() on Windows."""
    if hasattr(os, "uname"):
        uname = os.uname()
        return uname.sysname, uname.release, uname.machine
    import platform

    info = platform.uname()
    return info.system, info.release, info.machine


def _run_mode():
    # Jupyter and IPython kernels import ipykernel; a plain IPython shell only defines get_ipython.
    if "ipykernel" in sys.modules:
        return "jupyter"
    mode = _ipython_mode() if "IPython.terminal.ipapp" in sys.modules else None
    if mode is not None:
        return mode
    if sys.flags.interactive or hasattr(sys, "ps1"):
        return "repl"
    argv0 = sys.argv[0] if getattr(sys, "argv", None) else ""
    if argv0 == "-c":
        return "command"
    main = sys.modules.get("__main__")
    if main is not None and getattr(main, "__spec__", None) is not None:
        return "module"
    if argv0 in ("", "-"):
        return "repl" if sys.stdin is not None and sys.stdin.isatty() else "unknown"
    if argv0:
        return "script"
    return "unknown"


def _ipython_mode():
    """The mode of the ``ipython`` command, from its application's settings; None when it is not
    running (IPython imported by a program).

    ``ipython FILE``, ``ipython -c CODE`` and ``ipython -m MOD`` run like python's script, command
    and module, although IPython sets ``sys.ps1`` for them too; the shell, or ``-i``, is a repl.
    """
    app_class = getattr(sys.modules.get("IPython.terminal.ipapp"), "TerminalIPythonApp", None)
    try:
        if app_class is None or not app_class.initialized():
            return None
        app = app_class.instance()
        if getattr(app, "force_interact", False):
            return "repl"
        for attribute, mode in (("file_to_run", "script"), ("code_to_run", "command"), ("module_to_run", "module")):
            if getattr(app, attribute, None):
                return mode
    except Exception:  # another IPython's internals: it is IPython's shell all the same
        pass
    return "repl"


@functools.lru_cache(maxsize=None)
def platform_facts():
    """OS, release, machine, CPU model and count, total RAM in MiB, and container/CI/WSL flags."""
    system, release, machine = _uname()
    is_ci, vendor = ci_vendor()
    release = release or ""
    return {
        "os": (system or "unknown")[:64],
        "release": release[:128],
        "machine": (machine or "unknown")[:64],
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_mib": _memory_mib(),
        "container": _in_container(),
        "ci": is_ci,
        "ci_vendor": vendor,
        "wsl": "microsoft" in release.lower() or os.path.exists("/proc/sys/fs/binfmt_misc/WSLInterop"),
    }


def _read(path, limit=1 << 20):
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as handle:
            return handle.read(limit)
    except OSError:
        return ""


def _cpu_model():
    # platform.processor() runs `uname -p` in a subprocess on Linux and is empty there anyway.
    for line in _read("/proc/cpuinfo").splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Hardware", "cpu model") and value.strip():
            return " ".join(value.split())[:128]
    if sys.platform == "win32":
        import platform

        return platform.processor()[:128] or None
    return None


def _memory_mib():
    for line in _read("/proc/meminfo", 4096).splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return max(1, int(parts[1]) // 1024)
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return max(1, pages * page_size // (1 << 20)) if pages > 0 and page_size > 0 else None


def _in_container():
    if os.path.exists("/.dockerenv") or os.path.exists("/run/.containerenv"):
        return True
    cgroup = _read("/proc/1/cgroup", 65536)
    return any(marker in cgroup for marker in ("docker", "kubepods", "containerd", "libpod", "lxc"))


def _normalize(name):
    """PEP 503 normalization, so `Foo_Bar` and `foo-bar` are one distribution."""
    out = []
    for ch in name.lower():
        out.append("-" if ch in "-_." else ch)
    normalized = "".join(out)
    while "--" in normalized:
        normalized = normalized.replace("--", "-")
    return normalized


@functools.lru_cache(maxsize=1)
def _installed():
    """Normalized name -> metadata directory of each distribution on sys.path, first one wins.

    Read from the ``*.dist-info`` / ``*.egg-info`` directory listing instead of importing
    ``importlib.metadata`` (~28 ms) because this can run on the exit path.
    """
    found: dict[str, str] = {}
    for entry in list(sys.path):
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info"):
                dist = name[: -len(".dist-info")].partition("-")[0]
            elif name.endswith(".egg-info"):
                dist = name[: -len(".egg-info")].partition("-")[0]
            else:
                continue
            found.setdefault(_normalize(dist), os.path.join(entry or ".", name))
    return found


def _metadata_headers(path):
    """(Version, [Requires-Dist names]) from a METADATA or PKG-INFO file."""
    text = _read(os.path.join(path, "METADATA")) or _read(os.path.join(path, "PKG-INFO"))
    version, requires = None, []
    for line in text.split("\n\n", 1)[0].splitlines():
        key, _, value = line.partition(":")
        if key == "Version" and version is None:
            version = value.strip()
        elif key == "Requires-Dist":
            name = value.strip()
            for stop in " ;[(<>=!~":
                name = name.split(stop, 1)[0]
            if name:
                requires.append(_normalize(name))
    return version, requires


def distribution_versions(distribution):
    """(own_version, {dependency: version}) for a distribution and its installed direct requirements.

    Bounded on purpose: only the watched distribution's declared requirements (what its author
    needs to know to support users) and never the rest of the environment, whose names can be
    private (in-house packages) and would make a user identifiable.
    """
    if not distribution:
        return None, {}
    installed = _installed()
    path = installed.get(_normalize(distribution))
    if path is None:
        return None, {}
    own, requires = _metadata_headers(path)
    versions: dict[str, str] = {}
    for name in sorted(set(requires)):
        if len(versions) >= _MAX_DISTRIBUTIONS:
            break
        dep_path = installed.get(name)
        if dep_path is None:
            continue
        version, _ = _metadata_headers(dep_path)
        if version:
            versions[name] = version[:64]
    return (own[:64] if own else None), versions
