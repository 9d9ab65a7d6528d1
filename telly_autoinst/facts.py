"""Level I facts about this interpreter and machine: low-cardinality values, never a path, argument or env value.

Every fact here is cheap to compute (no subprocess, no ``importlib.metadata`` import) because a
report may be built on the exit path; the costly ones are cached once per process.
"""

import functools
import os
import sys

from ._env import ci_vendor

# The ceiling on reported distributions: a project has few direct dependencies, and a bound keeps
# a malformed METADATA from growing the report.
_MAX_DISTRIBUTIONS = 100


def _uname():
    """(system, release, machine): os.uname() where it exists, platform.uname() on Windows."""
    if hasattr(os, "uname"):
        uname = os.uname()
        return uname.sysname, uname.release, uname.machine
    import platform

    info = platform.uname()
    return info.system, info.release, info.machine


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
