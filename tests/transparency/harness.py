"""Runs a subject package's own test suite plainly and instrumented in a real venv, and compares.

A subject is a popular pure-Python package whose sdist ships its tests. Its sdist is built into a
wheel once (one wheelhouse for every interpreter, in the test cache) and installed (not editable)
into a venv that also holds the telly_autoinst wheel; its tests run from a copy of the unpacked
sdist from which the source tree was removed, so the tests can only import the installed copy (a
probe plugin records the file that was really imported, and the harness checks it). The plain run
sets TELLY_DISABLE=1 and happens once per subject and Python; each engine's instrumented run is
compared with it. The instrumented run forces the subject into instrumentation with
TELLY_AUTOINST_PACKAGES and writes its reports as files, which the harness reads back to show that
the subject's functions were really counted, and only under keys that
``python -m telly_autoinst --dry-run`` lists (the dry-run must tell the truth about the run).
"""

import concurrent.futures
import dataclasses
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, Optional, Tuple

from tests.support.venvs import build_wheel, clean_env, find_python, find_uv, uv_env

HERE = Path(__file__).resolve().parent

# Pinned so that a new upstream release cannot change the verdict; these versions support 3.9-3.13.
PYTEST = "pytest==8.3.5"


@dataclasses.dataclass(frozen=True)
class Subject:
    """A package whose own test suite is run against the hook."""

    name: str  # top-level module, also the TELLY_AUTOINST_PACKAGES entry
    requirement: str  # the pinned sdist
    test_requirements: Tuple[str, ...]
    min_counted: int  # distinct counted functions below which instrumentation evidently did not happen
    # Test ids (prefixes) whose outcome depends on timing, not on us: not compared (each is named
    # in the row when its outcomes differ).
    flaky: Tuple[str, ...] = ()


SUBJECTS = {
    s.name: s
    for s in (
        # Measured with the wrapt engine on 3.11: click 267 of 303 selectable keys counted,
        # packaging 57 of 59 (it is small; most of its API is properties and dunders),
        # more_itertools 162 of 162.
        Subject("click", "click==8.1.8", (PYTEST,), min_counted=150),
        Subject("packaging", "packaging==24.2", (PYTEST, "pretend==1.0.9"), min_counted=40),
        # Flat layout (the package sits next to tests/ in the sdist) and mostly generators.
        Subject("more_itertools", "more-itertools==10.5.0", (PYTEST,), min_counted=100),
        # Code that looks at its callers' frames: namedutils sets __module__ from sys._getframe(1)
        # (and its tests pickle the result), tbutils and excutils read frames and tracebacks,
        # deprutils warns with stacklevel=2. The library issue 8 was measured with. Its socket
        # tests give the peer 10 ms, which a loaded machine sometimes misses, hooked or not.
        Subject("boltons", "boltons==24.1.0", (PYTEST,), min_counted=100,
                flaky=("tests.test_socketutils::",)),
        # Warns with a stacklevel for the caller of a deprecated function, and its tests check
        # that the warning names the test file (warn.filename == __file__).
        Subject("deprecated", "Deprecated==1.2.15", (PYTEST, "setuptools==75.3.0"), min_counted=5),
    )
}

OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed")


@dataclasses.dataclass
class RunResult:
    """One pytest run of a subject's suite."""

    mode: str  # "plain" or "instrumented"
    returncode: int
    outcomes: Dict[str, str]  # test id -> one of OUTCOMES
    messages: Dict[str, str]  # test id -> failure/error text, for the report
    summary: Dict[str, int]  # pytest's own summary line: also counts xpassed and warnings
    module_file: Optional[str]
    sys_path: list  # the run's sys.path, to explain a wrong module_file
    stats: Dict[str, int]  # count key -> calls, summed over the run's reports
    report_files: int
    stderr_tail: str

    def counts(self):
        totals = dict.fromkeys(OUTCOMES, 0)
        for outcome in self.outcomes.values():
            totals[outcome] += 1
        return totals


@dataclasses.dataclass
class Comparison:
    """A subject's plain and instrumented runs, and everything that differs between them."""

    subject: Subject
    python: str
    engine: str
    plain: RunResult
    instrumented: RunResult
    site_packages: str
    selectable: Optional[set]  # the keys --dry-run lists for the subject, None when it failed
    not_counted: Optional[set]  # the keys it lists as not counted (with a reason), None when it failed
    dry_run_error: str

    def problems(self):
        """Human-readable reasons why the runs are not transparent; empty when they are."""
        found = []
        for run in (self.plain, self.instrumented):
            if not run.module_file or not run.module_file.startswith(self.site_packages):
                found.append(f"{run.mode}: {self.subject.name} was imported from {run.module_file!r}, "
                             f"not from the venv's {self.site_packages}; sys.path: {run.sys_path}")
            if not run.outcomes:
                found.append(f"{run.mode}: no test results (exit {run.returncode}); stderr:\n{run.stderr_tail}")
        if self.plain.stats:
            found.append(f"plain: reports were written although TELLY_DISABLE=1 ({len(self.plain.stats)} keys)")
        changed = self.changed()
        flaky_only = not changed and self.flaky_changes()
        if self.plain.counts() != self.instrumented.counts() and not flaky_only:
            found.append(f"outcome counts differ: plain {_fmt(self.plain.counts())}, "
                         f"instrumented {_fmt(self.instrumented.counts())}")
        if self.plain.summary != self.instrumented.summary and not flaky_only:
            found.append(f"pytest summary differs: plain {self.plain.summary}, "
                         f"instrumented {self.instrumented.summary}")
        if self.plain.returncode != self.instrumented.returncode and not flaky_only:
            found.append(f"pytest exit code differs: plain {self.plain.returncode}, "
                         f"instrumented {self.instrumented.returncode}")
        for test in changed[:20]:
            detail = self.instrumented.messages.get(test, "")
            found.append(f"  {test}: plain {self.plain.outcomes.get(test)}, instrumented "
                         f"{self.instrumented.outcomes.get(test)}" + (f"\n    {detail[:800]}" if detail else ""))
        if len(changed) > 20:
            found.append(f"  ... and {len(changed) - 20} more tests changed outcome")
        foreign = sorted(k for k in self.instrumented.stats if not k.startswith(self.subject.name + "."))
        if foreign:
            found.append(f"instrumented: counted keys outside {self.subject.name}: {foreign[:5]}")
        if self.selectable is None:
            found.append(f"--dry-run failed: {self.dry_run_error}")
        else:
            unlisted = sorted(set(self.instrumented.stats) - self.selectable)
            if unlisted:
                found.append(f"instrumented: {len(unlisted)} counted keys that --dry-run does not list: {unlisted[:5]}")
        bad = sorted(k for k, v in self.instrumented.stats.items() if not (isinstance(v, int) and v > 0))
        if bad:
            found.append(f"instrumented: non-positive or non-integer counts for {bad[:5]}")
        if self.counted_functions() < self.subject.min_counted:
            found.append(f"instrumented: only {self.counted_functions()} distinct {self.subject.name} functions "
                         f"counted in {self.instrumented.report_files} report file(s) "
                         f"(expected at least {self.subject.min_counted})")
        return found

    def changed(self):
        """The tests whose outcome differs between the runs, the timing-dependent ones left out."""
        return sorted(t for t in set(self.plain.outcomes) | set(self.instrumented.outcomes)
                      if self.plain.outcomes.get(t) != self.instrumented.outcomes.get(t)
                      and not t.startswith(self.subject.flaky or ("\0",)))

    def flaky_changes(self):
        """The timing-dependent tests (``Subject.flaky``) whose outcome differs between the runs."""
        if not self.subject.flaky:
            return []
        return sorted(t for t in set(self.plain.outcomes) | set(self.instrumented.outcomes)
                      if t.startswith(self.subject.flaky)
                      and self.plain.outcomes.get(t) != self.instrumented.outcomes.get(t))

    def counted_functions(self):
        return sum(1 for k, v in self.instrumented.stats.items() if k.startswith(self.subject.name + ".") and v)

    def total_calls(self):
        return sum(v for k, v in self.instrumented.stats.items() if k.startswith(self.subject.name + "."))

    def row(self):
        return {
            "package": self.subject.requirement,
            "python": self.python,
            "engine": self.engine,
            "plain": _fmt(self.plain.counts()),
            "instrumented": _fmt(self.instrumented.counts()),
            "counted/listed": f"{self.counted_functions()}/"
                              f"{len(self.selectable) if self.selectable is not None else '?'}",
            "calls": self.total_calls(),
            "verdict": ("DIFFERENT" if self.problems() else
                        "same" + (f" (timing-dependent, not compared: {', '.join(self.flaky_changes())})"
                                  if self.flaky_changes() else "")),
        }


def _fmt(counts):
    return " ".join(f"{counts[o]} {o}" for o in OUTCOMES if counts[o]) or "nothing"


def fetch_sdist(subject, cache):
    """The subject's pinned sdist (the release's own tests come with it), downloaded once into CACHE."""
    dest = Path(cache) / "sdists"
    dest.mkdir(parents=True, exist_ok=True)
    name, _, version = subject.requirement.partition("==")
    # Older sdists keep the distribution's spelling (more-itertools-...), newer ones normalize it.
    wanted = f"{name}-{version}.tar.gz".replace("-", "_").lower()

    def found():
        return [p for p in dest.glob("*.tar.gz") if p.name.replace("-", "_").lower() == wanted]

    if not found():
        # A directory of its own (for this thread of this process): a concurrent download of the
        # same file, here or in another test run sharing the cache, never shows a partial one.
        scratch = Path(tempfile.mkdtemp(prefix=f".{subject.name}-", dir=dest))
        # pip downloads it; uv runs pip when this interpreter has none (a venv that uv made).
        uv = find_uv()
        pip = [uv, "tool", "run", "pip"] if uv else [sys.executable, "-m", "pip"]
        subprocess.run([*pip, "download", "-q", "--disable-pip-version-check", "--no-binary", ":all:", "--no-deps",
                        "-d", str(scratch), subject.requirement],
                       check=True, capture_output=True, text=True, env=uv_env(cache) if uv else None)
        for path in scratch.glob("*.tar.gz"):
            path.replace(dest / path.name)
        shutil.rmtree(scratch, ignore_errors=True)
    return found()[0]


def unpack_tests(subject, sdist, dest):
    """Unpack the sdist without its source tree: only tests, docs and config remain.

    Even with a src/ layout, a tests directory with an ``__init__.py`` puts the
    sdist root on sys.path (pytest's rootdir insertion), and ``python -m pytest`` puts the
    working directory there; removing ``src/`` and any top-level copy of the package makes
    the installed copy the only one importable.
    """
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    with tarfile.open(sdist) as tar:
        members = tar.getmembers()
        root = members[0].name.split("/")[0]
        # The "data" filter (where this Python has it) refuses links and paths leaving DEST.
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(dest, members=[m for m in members if m.name.startswith(root + "/")], **safe)
    tree = dest / root
    for stale in (tree / "src", tree / subject.name, tree / "tests" / ".pytest_cache"):
        if stale.exists():
            shutil.rmtree(stale)
    return tree


def venv_extras(subjects, wheels):
    """Pip arguments that install every subject (its wheel, built from its sdist) and its test requirements."""
    extras = [str(wheels[s.name]) for s in subjects]
    for s in subjects:
        extras += [r for r in s.test_requirements if r not in extras]
    return extras


def run_suite(venv, subject, tree, work, mode, engine="auto"):
    """Run the subject's tests once, ``plain`` or ``instrumented``, and collect everything."""
    work = Path(work) / f"{subject.name}-{mode}"
    if work.exists():
        shutil.rmtree(work)
    home, reports, probe_dir = work / "home", work / "reports", work / "probe"
    for d in (home, reports, probe_dir):
        d.mkdir(parents=True)
    shutil.copy(HERE / "_probe.py", probe_dir / "transparency_probe.py")
    junit, probe_out = work / "junit.xml", work / "probe.json"
    env = {
        "PYTHONPATH": str(probe_dir),
        "TRANSPARENCY_PROBE_OUT": str(probe_out),
        "TRANSPARENCY_SUBJECT": subject.name,
    }
    if mode == "plain":
        env["TELLY_DISABLE"] = "1"
    else:
        env.update(TELLY_AUTOINST_PACKAGES=subject.name, TELLY_ENGINE=engine,
                   TELLY_STORAGE_TYPE="file", TELLY_LOCAL_STORAGE_PATH=str(reports))
    proc = subprocess.run(
        # A private --basetemp: the two runs of a comparison go side by side.
        [venv.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "transparency_probe",
         f"--junitxml={junit}", f"--basetemp={work / 'tmp'}", "tests"],
        cwd=tree, env=clean_env(home, **env), capture_output=True, text=True, timeout=900)
    outcomes, messages = parse_junit(junit) if junit.exists() else ({}, {})
    probe = json.loads(probe_out.read_text()) if probe_out.exists() else {}
    stats, files = read_reports(reports)
    return RunResult(mode=mode, returncode=proc.returncode, outcomes=outcomes, messages=messages,
                     summary=parse_summary(proc.stdout),
                     module_file=probe.get("module_file"), sys_path=probe.get("sys_path", []), stats=stats,
                     report_files=files,
                     stderr_tail=(proc.stdout[-1500:] + proc.stderr[-1500:]))


def parse_junit(path):
    """Map each test id to passed/failed/error/skipped/xfailed, with the failure text."""
    outcomes, messages = {}, {}
    for case in ET.parse(path).getroot().iter("testcase"):
        test = f"{case.get('classname')}::{case.get('name')}"
        tags = {child.tag: child for child in case}
        if "failure" in tags or "error" in tags:
            # A call failure and a teardown error on one test: the failure is the headline.
            outcome = "failed" if "failure" in tags else "error"
            child = tags.get("failure", tags.get("error"))
            messages[test] = (child.get("message") or "") + "\n" + (child.text or "")[-600:]
        elif "skipped" in tags:
            outcome = "xfailed" if tags["skipped"].get("type") == "pytest.xfail" else "skipped"
        else:
            outcome = "passed"
        while test in outcomes:  # a repeated id must not hide the first one's outcome
            test += "+"
        outcomes[test] = outcome
    return outcomes, messages


def parse_summary(stdout):
    """The counts of pytest's last summary line, e.g. ``1 failed, 627 passed, 3 warnings in 2.2s``."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip("= ")
        if " in " not in line:
            continue
        counts = {}
        for part in line.rsplit(" in ", 1)[0].split(", "):
            number, _, word = part.partition(" ")
            if not number.isdigit():
                counts = None
                break
            counts[word.rstrip("s") if word in ("warnings", "errors") else word] = int(number)
        if counts:
            return counts
    return {}


def read_reports(directory):
    """Sum the ``stats`` of every ``*.json`` report in DIRECTORY (one file per project per flush)."""
    stats, files = {}, 0
    for path in sorted(Path(directory).rglob("*.json")):
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        files += 1
        for key, value in (report.get("stats") or {}).items():
            stats[key] = stats.get(key, 0) + value if isinstance(value, int) else value
    return stats, files


def dry_run_keys(venv, subject, work, engine):
    """``(keys, not counted, error)``: what ``--dry-run --json`` says would be counted for the
    subject, and what it lists as not counted."""
    home = Path(work) / f"{subject.name}-dry-run-home"
    home.mkdir(parents=True, exist_ok=True)
    proc = venv.run(["-m", "telly_autoinst", "--dry-run", "--json"], home,
                    env={"TELLY_AUTOINST_PACKAGES": subject.name, "TELLY_ENGINE": engine})
    try:
        listed = [p for p in json.loads(proc.stdout)["distributions"] if subject.name in p["packages"]]
        return set(listed[0]["keys"]), {item["key"] for item in listed[0]["not_counted"]}, ""
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        return None, None, (f"exit {proc.returncode}, {exc!r}; stdout {proc.stdout[-300:]!r} "
                            f"stderr {proc.stderr[-300:]!r}")


def compare(venv, subject, python, engine, plain, instrumented, work):
    """The comparison of a subject's PLAIN and INSTRUMENTED runs, with what --dry-run lists for ENGINE."""
    selectable, not_counted, error = dry_run_keys(venv, subject, Path(work) / engine, engine)
    return Comparison(subject=subject, python=python, engine=engine, plain=plain, instrumented=instrumented,
                      site_packages=str(venv.site_packages), selectable=selectable, not_counted=not_counted,
                      dry_run_error=error)


def prepare(factory, work, python=None, names=None):
    """A venv for PYTHON with telly_autoinst and the subjects installed, and their unpacked tests."""
    subjects = [SUBJECTS[n] for n in (names or SUBJECTS)]
    work = Path(work)
    sdists = {s.name: fetch_sdist(s, factory.cache) for s in subjects}
    # Pure-Python sdists build to one py3 wheel each, which every interpreter installs.
    wheels = {name: build_wheel(sdist, factory.cache) for name, sdist in sdists.items()}
    trees = {s.name: unpack_tests(s, sdists[s.name], work / "trees" / s.name) for s in subjects}
    venv = factory.get(python=python, extra=venv_extras(subjects, wheels))
    return venv, subjects, trees


class Runs:
    """Every suite run of a session, on a pool of two threads, each needed run done once.

    A subject's plain run happens once per Python, whatever the number of engines compared with
    it. Runs share nothing but the read-only venv and test tree (each has its own HOME, work
    directory and report directory), so two at once only halve the wall time. Queue what will be
    needed first (``submit``), then ``comparison`` waits for the runs it compares.
    """

    def __init__(self, factory, work, names=None, workers=2):
        self._factory = factory
        self._names = names  # the subjects every venv holds (default: all)
        self._work = Path(work)
        self._pool = concurrent.futures.ThreadPoolExecutor(workers)
        self._lock = threading.Lock()
        self._prepared = {}  # version -> (lock, [prepare's result]); built by the first run that needs it
        self._runs = {}  # (name, version, "plain" or engine) -> future RunResult

    def _prepare(self, version):
        with self._lock:
            lock, slot = self._prepared.setdefault(version, (threading.Lock(), []))
        with lock:
            if not slot:
                slot.append(prepare(self._factory, self._work / version, python=find_python(version),
                                    names=self._names))
        return slot[0]

    def _run(self, name, version, engine):
        venv, _, trees = self._prepare(version)
        mode = "plain" if engine == "plain" else "instrumented"
        return run_suite(venv, SUBJECTS[name], trees[name], self._work / version / engine, mode, engine=engine)

    def _future(self, name, version, engine):
        with self._lock:
            key = (name, version, engine)
            if key not in self._runs:
                self._runs[key] = self._pool.submit(self._run, name, version, engine)
            return self._runs[key]

    def submit(self, name, version, engine):
        """Queue the plain run and the ENGINE run of subject NAME on Python VERSION (each once)."""
        self._future(name, version, "plain")
        self._future(name, version, engine)

    def comparison(self, name, version, engine):
        """The comparison of the ENGINE run with the plain run (queued now unless ``submit`` did)."""
        self.submit(name, version, engine)
        plain = self._future(name, version, "plain").result()
        instrumented = self._future(name, version, engine).result()
        venv, _, _ = self._prepare(version)
        return compare(venv, SUBJECTS[name], version, engine, plain, instrumented, self._work / version)

    def close(self):
        self._pool.shutdown(wait=True, cancel_futures=True)


COLUMNS = ("package", "python", "engine", "plain", "instrumented", "counted/listed", "calls", "verdict")


def format_table(rows):
    """A plain-text table of comparison rows."""
    cells = [COLUMNS] + [tuple(str(r[c]) for c in COLUMNS) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
