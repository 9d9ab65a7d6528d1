"""Who agreed to what: kill switches, per-project opt-in/opt-out lists, CI, and the first-run notice.

Order of the decision (the first that applies wins):

1. a kill switch (TELLY_DISABLE, DO_NOT_TRACK, ~/.telly_disable): off, silently;
2. the project is in ~/.telly_optout: off;
3. opt-in mode (TELLY_OPTIN, or the project's ``mode = "optin"``): on only if listed in ~/.telly_optin;
4. a CI run and the project's ``send_from_ci = false``: off;
5. opt-out mode on a TTY: on only once the first-run notice was shown (and recorded) for this
   user and project; a non-interactive run never shows it and is not held back by it.

The lists hold one project id per line (compared without regard to case, as the original did);
every edit takes an exclusive lock and replaces the file atomically, so concurrent edits from
several shells lose nothing and a crash never leaves a half-written list.
"""

from __future__ import annotations

import contextlib
import os
import sys

from . import __version__
from ._env import home_dir, kill_switch
from .facts import ci_vendor

__all__ = ["Decision", "NOTICE", "allows_counting", "cli_disable", "cli_enable", "cli_optin", "cli_optout",
           "cli_status", "decide", "known_projects"]

OPTIN_FILE = ".telly_optin"
OPTOUT_FILE = ".telly_optout"
NOTICES_FILE = ".telly_notices"
DISABLE_FILE = ".telly_disable"
_LOCK_FILE = ".telly_consent.lock"

NOTICE = (
    "telly_autoinst: {project_id} collects anonymous usage statistics (call counts, Python and OS\n"
    "versions; hashed ids). Nothing else, never argument values. To see what is sent: TELLY_SHOW_ME=1.\n"
    "Opt out: python -m telly_autoinst optout {project_id}  (or everything: python -m telly_autoinst disable)\n"
)


class Decision:
    """Whether a project may count and send, and the human-readable reason shown by `status`."""

    __slots__ = ("send", "reason")

    def __init__(self, send, reason):
        self.send = send
        self.reason = reason

    def __bool__(self):
        return self.send

    def __repr__(self):
        return f"Decision({self.send}, {self.reason!r})"


def _path(name):
    home = home_dir()
    return None if home is None else os.path.join(home, name)


def _read_ids(name):
    """The ids in one list file; a missing or unreadable file is an empty list."""
    path = _path(name)
    if path is None:
        return []
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as handle:
            return [line.strip() for line in handle if line.strip() and not line.startswith("#")]
    except OSError:
        return []


def _listed(name, project_id):
    wanted = project_id.casefold()
    return any(entry.casefold() == wanted for entry in _read_ids(name))


@contextlib.contextmanager
def _locked(home):
    fd = os.open(os.path.join(home, _LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            import fcntl
        except ImportError:  # Windows: no flock; the atomic replace still avoids torn files.
            fcntl = None
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _edit(name, add=(), remove=()):
    """Add and remove ids in one list file under the lock; returns True if the file changed."""
    home = home_dir()
    if home is None:
        raise OSError("no home directory: cannot record the choice")
    path = os.path.join(home, name)
    with _locked(home):
        current = _read_ids(name)
        removing = {r.casefold() for r in remove}
        updated = [entry for entry in current if entry.casefold() not in removing]
        for project_id in add:
            if all(entry.casefold() != project_id.casefold() for entry in updated):
                updated.append(project_id)
        if updated == current:
            return False
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write("".join(f"{entry}\n" for entry in updated))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        return True


def _interactive():
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _notice(project_id):
    """Show the first-run notice once per user and project; True once it has been shown and recorded."""
    if _listed(NOTICES_FILE, project_id):
        return True
    try:
        # Record first: if it cannot be recorded it would be shown on every run, so stay quiet and send nothing.
        _edit(NOTICES_FILE, add=(project_id,))
    except OSError:
        return False
    try:
        sys.stderr.write(NOTICE.format(project_id=project_id))
        sys.stderr.flush()
    except Exception:
        pass
    return True


def decide(project, process, environ=None, show_notice=True):
    """The Decision for one project in this process (see the module docstring for the order)."""
    switch = kill_switch(environ)
    if switch:
        return Decision(False, f"disabled by {switch}")
    project_id = project.project_id
    if _listed(OPTOUT_FILE, project_id):
        return Decision(False, "opted out (~/.telly_optout)")
    if process.optin_only or project.mode == "optin":
        why = "TELLY_OPTIN" if process.optin_only else "the project's mode = \"optin\""
        if not _listed(OPTIN_FILE, project_id):
            return Decision(False, f"opt-in mode ({why}) and not opted in")
        return Decision(True, "opted in (~/.telly_optin)")
    is_ci, vendor = ci_vendor(environ)
    if is_ci and not project.send_from_ci:
        return Decision(False, f"CI run ({vendor or 'generic'}) and send_from_ci = false")
    if is_ci or not _interactive():
        return Decision(True, "opt-out mode, not opted out")
    if not show_notice:
        if _listed(NOTICES_FILE, project_id):
            return Decision(True, "opt-out mode, notice shown")
        return Decision(False, "opt-out mode, first-run notice not shown yet")
    if _notice(project_id):
        return Decision(True, "opt-out mode, notice shown")
    return Decision(False, "opt-out mode, first-run notice cannot be recorded (home not writable)")


_counting: dict[str, bool] = {}  # project_id -> bool, decided once per process (flush decides again before sending)


def allows_counting(project, process):
    """True when this project may be counted (and so reported) in this process; shows the notice if due.

    Cached per project: it is asked for every module of a watched package as it is imported,
    and the lists need not be read hundreds of times.
    """
    allowed = _counting.get(project.project_id)
    if allowed is None:
        allowed = _counting[project.project_id] = decide(project, process).send
    return allowed


# Command handlers: each returns (text, exit_code); cli.main turns TellyError into exit 2.

def _result(message, as_json, **data):
    if as_json:
        import json  # CLI output only: the counting path never needs it

        return json.dumps({"message": message, **data}, sort_keys=True), 0
    return message, 0


def _cli_edit(add_to, remove_from, project_id, as_json, message):
    from .errors import ConfigError

    try:
        _edit(add_to, add=(project_id,))
        _edit(remove_from, remove=(project_id,))
    except OSError as exc:
        raise ConfigError(f"cannot write to your home directory ({exc}); set HOME to a writable directory") from exc
    return _result(message, as_json, project_id=project_id)


def cli_optin(project_id, as_json=False):
    """`optin PROJECT_ID`: list it in ~/.telly_optin and remove it from ~/.telly_optout."""
    return _cli_edit(OPTIN_FILE, OPTOUT_FILE, project_id, as_json, f"opted in: {project_id}")


def cli_optout(project_id, as_json=False):
    """`optout PROJECT_ID`: list it in ~/.telly_optout and remove it from ~/.telly_optin."""
    return _cli_edit(OPTOUT_FILE, OPTIN_FILE, project_id, as_json, f"opted out: {project_id}")


def cli_disable(as_json=False):
    """`disable`: create ~/.telly_disable, which turns everything off for this user."""
    from .errors import ConfigError

    path = _path(DISABLE_FILE)
    try:
        if path is None:
            raise OSError("no home directory")
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot create ~/.telly_disable ({exc}); set TELLY_DISABLE=1 instead") from exc
    return _result("telly_autoinst disabled for every project (~/.telly_disable)", as_json)


def cli_enable(as_json=False):
    """`enable`: remove ~/.telly_disable; environment switches still win and are named."""
    from .errors import ConfigError

    path = _path(DISABLE_FILE)
    try:
        if path is not None and os.path.lexists(path):
            os.unlink(path)
    except OSError as exc:
        raise ConfigError(f"cannot remove ~/.telly_disable ({exc})") from exc
    switch = kill_switch()
    message = "telly_autoinst enabled (~/.telly_disable removed)"
    if switch:
        message += f"; still disabled by {switch} in your environment"
    return _result(message, as_json, still_disabled_by=switch)


def known_projects():
    """Projects to list in `status`: watched packages found by discovery plus those named in the lists."""
    found = {}
    try:
        from . import discovery
        from .settings import process_settings, read_user_config

        user_config = read_user_config()
        forced = process_settings(user_config=user_config).force_packages
        by_module, _errors = discovery.resolve(discovery.scan(), forced, user_config=user_config)
        for project in by_module.values():
            found[project.project_id] = project
    except Exception:  # a malformed table is reported by --dry-run; status still lists the rest
        pass
    for name in (OPTIN_FILE, OPTOUT_FILE):
        for project_id in _read_ids(name):
            found.setdefault(project_id, None)
    return found


def cli_status(as_json=False):
    """`status`: a plain table of what is on, for which project, and why."""
    from .settings import SETTINGS, ProjectSettings, process_settings

    process = process_settings()
    switch = kill_switch()
    is_ci, vendor = ci_vendor()
    rows = []
    defaults = {s.name: s.default for s in SETTINGS if s.scope == "project"}
    for project_id, project in sorted(known_projects().items()):
        if project is None:  # only named in a list: judge it with default settings
            values = dict(defaults, project_id=project_id)
            project = ProjectSettings(source="~/.telly_optin/optout", **values)
        decision = decide(project, process, show_notice=False)
        rows.append({"project_id": project_id, "on": decision.send, "why": decision.reason,
                     "level2": project.level2, "mode": "optin" if process.optin_only else project.mode})
    data = {
        "version": __version__,
        "disabled_by": switch,
        "optin_only": process.optin_only,
        "ci": is_ci,
        "ci_vendor": vendor,
        "storage_type": process.storage_type,
        "projects": rows,
    }
    if as_json:
        import json

        return json.dumps(data, indent=2, sort_keys=True), 0
    lines = [
        f"telly_autoinst {__version__}",
        f"kill switch:  {switch or 'none (TELLY_DISABLE, DO_NOT_TRACK, ~/.telly_disable all unset)'}",
        f"mode:         {'opt-in for every project (TELLY_OPTIN)' if process.optin_only else 'per project'}",
        f"CI:           {('yes, ' + (vendor or 'generic')) if is_ci else 'no'}",
        f"storage:      {process.storage_type}",
    ]
    if rows:
        width = max(len("PROJECT"), *(len(r["project_id"]) for r in rows))
        lines.append("")
        lines.append(f"{'PROJECT'.ljust(width)}  STATE  LEVEL II  WHY")
        for r in rows:
            lines.append(f"{r['project_id'].ljust(width)}  {'on ' if r['on'] else 'off'}    "
                         f"{'yes' if r['level2'] else 'no '}       {r['why']}")
    else:
        lines.append("")
        lines.append("no watched project found")
    return "\n".join(lines), 0
