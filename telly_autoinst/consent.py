"""Who agreed to what: kill switches, per-project opt-in/opt-out lists, CI, and the first-run notice.

Order of the decision (the first that applies wins):

1. a kill switch (TELLY_DISABLE, DO_NOT_TRACK, ~/.telly_disable): off, silently;
2. the project is in ~/.telly_optout: off;
3. the package is installed editable from a checkout (an author's own test runs and development)
   and neither its ``send_from_editable`` nor TELLY_SEND_FROM_EDITABLE asks to send: off;
4. opt-in mode (TELLY_OPTIN, or the project's ``mode = "optin"``): on only if listed in ~/.telly_optin;
5. a CI run and the project's ``send_from_ci = false``: off;
6. opt-out mode on a TTY: on only once the first-run notice was shown (and recorded) for this
   user and project; a non-interactive run never shows it and is not held back by it.

The lists hold one project id per line (compared without regard to case, as the original did);
every edit takes the lists' lock (``_lockfile``: the protocol the Node client keeps too) and
replaces the file atomically, so concurrent edits from several shells and both clients lose
nothing and a crash never leaves a half-written list. The file names, the notice's text and the
lock's limits are the shared contract's.
"""

import contextlib
import functools
import os
import sys

from . import _env, _lockfile
from ._contract import (
    FILE_DISABLE,
    FILE_LEGACY,
    FILE_LISTS_LOCK,
    FILE_NOTICES,
    FILE_OPTIN,
    FILE_OPTOUT,
    LISTS_MAX_BYTES,
    LOCK_LISTS_STALE_AFTER_SEC,
    LOCK_LISTS_WAIT_HOST_SEC,
    LOCK_LISTS_WAIT_SEC,
    NOTICE_FIRST_RUN,
    RUNTIMES,
)
from ._env import ci_vendor, home_dir, kill_switch
from ._env import interactive as _interactive  # a name of its own here: tests replace it
from ._statefile import USER, NotRegular, read_text, write_atomic
from .warmstate import invalidate


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
    """The ids in one list file; a missing, unreadable or non-regular file (a FIFO) is an empty list."""
    path = _path(name)
    if path is None:
        return []
    try:
        # The user's file (a dotfile manager's symlink is fine) or root's, never another user's;
        # written by the client, so one left readable by others by an older version is tightened.
        text = read_text(path, LISTS_MAX_BYTES, errors="replace", owner=USER, tighten=True)
    except FileNotFoundError:
        return []
    except (NotRegular, OSError):
        _env.swallowed(f"reading {path} (treated as an empty list)")
        return []
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _listed(name, project_id):
    wanted = project_id.casefold()
    return any(entry.casefold() == wanted for entry in _read_ids(name))


@contextlib.contextmanager
def _locked(home, wait):
    path = os.path.join(home, FILE_LISTS_LOCK)
    line = _lockfile.hold(path, LOCK_LISTS_STALE_AFTER_SEC, wait)
    try:
        yield
    finally:
        _lockfile.release(path, line)


def _edit(name, add=(), remove=(), wait=LOCK_LISTS_WAIT_SEC):
    """Add and remove ids in one list file under the lock (waiting up to ``wait`` seconds for it);
    returns True if the file changed."""
    home = home_dir()
    if home is None:
        raise OSError("no home directory: cannot record the choice")
    path = os.path.join(home, name)
    with _locked(home, wait):
        current = _read_ids(name)
        removing = {r.casefold() for r in remove}
        updated = [entry for entry in current if entry.casefold() not in removing]
        for project_id in add:
            if all(entry.casefold() != project_id.casefold() for entry in updated):
                updated.append(project_id)
        if updated == current:
            return False
        # Through a dotfile manager's symlink to the file it points at, which _read_ids accepted
        # (or refused, leaving `current` empty: then the check below refuses to write it too).
        target = os.path.realpath(path)
        try:
            read_text(target, LISTS_MAX_BYTES, errors="replace", owner=USER)
        except FileNotFoundError:  # a new list, or a link to one not made yet
            pass
        write_atomic(target, "".join(f"{entry}\n" for entry in updated).encode("utf-8"), durable=True)
        return True


def display_name(project):
    """The name people know a project by: its distribution, else its first module, else its id."""
    return project.distribution or (project.packages[0] if project.packages else None) or project.project_id


def first_run_notice(project, runtime="python"):
    """The first-run notice for ``project``: it names the package and its project id."""
    return NOTICE_FIRST_RUN.format(name=display_name(project), project_id=project.project_id, **RUNTIMES[runtime])


def _notice(project):
    """Show the first-run notice once per user and project; True once it has been shown and recorded."""
    project_id = project.project_id
    if _listed(FILE_NOTICES, project_id):
        return True
    try:
        # Record first: if it cannot be recorded it would be shown on every run, so stay quiet and send nothing.
        _edit(FILE_NOTICES, add=(project_id,), wait=LOCK_LISTS_WAIT_HOST_SEC)
    except OSError:
        _env.swallowed(f"recording the first-run notice of {project_id}")
        return False
    try:
        sys.stderr.write(first_run_notice(project))
        sys.stderr.flush()
    except Exception:
        _env.swallowed("printing the first-run notice")
    return True


def decide(project, process, environ=None, show_notice=True):
    """The Decision for one project in this process (see the module docstring for the order)."""
    decision = _decide(project, process, environ, show_notice)
    _env.note(f"consent for {project.project_id}: {'send' if decision.send else 'do not send'} ({decision.reason})")
    return decision


def _decide(project, process, environ, show_notice):
    switch = kill_switch(environ)
    if switch:
        return Decision(False, f"disabled by {switch}")
    project_id = project.project_id
    if _listed(FILE_OPTOUT, project_id):
        return Decision(False, "opted out (~/.telly_optout)")
    if project.editable and not project.send_from_editable:
        return Decision(False, "installed editable from a checkout (the author's own runs); "
                               "send_from_editable = true or TELLY_SEND_FROM_EDITABLE=1 counts and sends")
    if process.optin_only or project.mode == "optin":
        why = "TELLY_OPTIN" if process.optin_only else "the project's mode = \"optin\""
        if not _listed(FILE_OPTIN, project_id):
            return Decision(False, f"opt-in mode ({why}) and not opted in")
        return Decision(True, "opted in (~/.telly_optin)")
    is_ci, vendor = ci_vendor(environ)
    if is_ci and not project.send_from_ci:
        return Decision(False, f"CI run ({vendor or 'generic'}) and send_from_ci = false")
    if is_ci or not _interactive():
        return Decision(True, "opt-out mode, not opted out")
    if not show_notice:
        if _listed(FILE_NOTICES, project_id):
            return Decision(True, "opt-out mode, notice shown")
        return Decision(False, "opt-out mode, first-run notice not shown yet")
    if _notice(project):
        return Decision(True, "opt-out mode, notice shown")
    return Decision(False, "opt-out mode, first-run notice cannot be recorded (home not writable)")


_counting: "dict[str, bool]" = {}  # project_id -> bool, decided once per process (flush decides again before sending)


def allows_counting(project, process):
    """True when this project may be counted (and so reported) in this process; shows the notice if due.

    Cached per project: it is asked for every module of a watched package as it is imported,
    and the lists need not be read hundreds of times.
    """
    allowed = _counting.get(project.project_id)
    if allowed is None:
        allowed = _counting[project.project_id] = decide(project, process).send
    return allowed


def refusal_at_send(project_id, optin_required, process, environ=None):
    """Why a report queued earlier must not leave now, or None when it may.

    Asked by the sender for every queued report, because the user may have said no since it was
    queued: a kill switch, ~/.telly_optout, or (for opt-in projects and TELLY_OPTIN) a missing
    entry in ~/.telly_optin. CI and the first-run notice were settled when it was counted.
    """
    switch = kill_switch(environ)
    if switch:
        return f"disabled by {switch}"
    if project_id is None:
        return None
    if _listed(FILE_OPTOUT, project_id):
        return "opted out (~/.telly_optout)"
    if (optin_required or process.optin_only) and not _listed(FILE_OPTIN, project_id):
        return "opt-in mode and not opted in (~/.telly_optin)"
    return None


def _changes_consent(command):
    """Remove the warm state (``warmstate.invalidate``) before and after ``command``: the next run
    decides afresh whatever the stamps say, and a run that wrote one meanwhile is not trusted either."""

    @functools.wraps(command)
    def run(*args):
        invalidate()
        try:
            return command(*args)
        finally:
            invalidate()

    return run


@_changes_consent
def optin(project_id):
    """List ``project_id`` in ~/.telly_optin and remove it from ~/.telly_optout; OSError when home is not writable."""
    changed = _edit(FILE_OPTIN, add=(project_id,))
    return _edit(FILE_OPTOUT, remove=(project_id,)) or changed


@_changes_consent
def optout(project_id):
    """List ``project_id`` in ~/.telly_optout and remove it from ~/.telly_optin; OSError when home is not writable."""
    changed = _edit(FILE_OPTOUT, add=(project_id,))
    return _edit(FILE_OPTIN, remove=(project_id,)) or changed


@_changes_consent
def disable():
    """Create ~/.telly_disable, which turns everything off for this user; OSError when it cannot."""
    path = _path(FILE_DISABLE)
    if path is None:
        raise OSError("no home directory (HOME is unset or empty)")
    if os.path.lexists(path):  # whatever it is (a symlink, another user's file), the switch is on
        return path
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    os.close(fd)
    return path


@_changes_consent
def enable():
    """Remove ~/.telly_disable; returns whether there was one to remove (OSError when it cannot)."""
    path = _path(FILE_DISABLE)
    if path is None or not os.path.lexists(path):
        return False
    os.unlink(path)
    return True


def state_files():
    """The per-user consent files that exist (lists, notices record, kill-switch file, lock), for `purge`."""
    names = (FILE_OPTIN, FILE_OPTOUT, FILE_NOTICES, FILE_DISABLE, FILE_LISTS_LOCK, *FILE_LEGACY)
    return [path for path in (_path(name) for name in names) if path is not None and os.path.lexists(path)]


def watched_projects():
    """Projects of the watched packages that discovery finds now (forced ones included), by project id
    (of distributions that share one, the first found)."""
    found: dict = {}
    for project in watched_packages():
        found.setdefault(project.project_id, project)
    return found


def watched_packages():
    """The settings of each watched package that discovery finds now (forced ones included): one per
    distribution, so two that share a project id are both here.

    A user config that is malformed at the top still lets the packages be listed (with their
    own settings): `status` shows the error and that nothing is counted meanwhile.
    """
    found = []
    try:
        from . import discovery
        from .errors import ConfigError
        from .settings import process_settings, read_user_config

        user_config = read_user_config()
        try:
            forced = process_settings(user_config=user_config).force_packages
        except ConfigError:
            forced = ()
        by_module, _errors = discovery.resolve(discovery.scan(), forced, user_config=user_config)
        found = list({id(project): project for project in by_module.values()}.values())
    except Exception:  # a malformed table is reported by --dry-run; status still lists the rest
        _env.swallowed("finding the watched projects")
    return found


def resolve(name):
    """The project id that ``name`` stands for, or None: a watched project's id, the name of its
    distribution (in any spelling pip accepts) or one of its top-level modules, or an id already
    in ~/.telly_optin or ~/.telly_optout (a package uninstalled since)."""
    from .discovery import normalize

    wanted = name.casefold()
    watched = watched_projects()
    for project_id in watched:
        if project_id.casefold() == wanted:
            return project_id
    for project_id, project in sorted(watched.items()):
        names = [getattr(project, "distribution", None), *getattr(project, "packages", ())]
        if any(n and normalize(n) == normalize(name) for n in names):
            return project_id
    for project in watched_packages():  # a distribution that shares its project id with another
        if any(n and normalize(n) == normalize(name) for n in (project.distribution, *project.packages)):
            return project.project_id
    for list_name in (FILE_OPTIN, FILE_OPTOUT):
        for entry in _read_ids(list_name):
            if entry.casefold() == wanted:
                return entry
    return None


def known_projects():
    """Projects to list in `status`: watched packages found by discovery plus those named in the lists."""
    found = watched_projects()
    for name in (FILE_OPTIN, FILE_OPTOUT):
        for project_id in _read_ids(name):
            found.setdefault(project_id, None)
    return found


def status(environ=None):
    """What `status` shows, as data: kill switch, modes, CI, and each known project's decision."""
    from . import __version__
    from ._env import user_config_path
    from .settings import SETTINGS, ProjectSettings

    process, config_error = _process_for_status(environ)
    table_errors = _project_table_errors(environ)
    is_ci, vendor = ci_vendor(environ)
    rows = []
    defaults = {s.name: s.default for s in SETTINGS if s.scope == "project"}
    known = known_projects()
    for project_id in table_errors:  # discovery skipped these projects: list them, and why
        known.setdefault(project_id, None)
    for project_id, project in sorted(known.items()):
        package = None
        if project is None:  # only named in a list: judge it with default settings
            values = dict(defaults, project_id=project_id)
            project = ProjectSettings(source="~/.telly_optin/optout", **values)
        else:
            package = display_name(project)
        decision = decide(project, process, environ, show_notice=False)
        if config_error and decision.send:  # the hook fails closed on a malformed config
            decision = Decision(False, "the user config is malformed (see above): nothing is counted")
        elif project_id in table_errors:
            decision = Decision(False, f"not counted: {table_errors[project_id]}")
        rows.append({"project_id": project_id, "package": package, "on": decision.send, "why": decision.reason,
                     "level2": project.level2, "mode": "optin" if process.optin_only else project.mode,
                     # Both client-side agreements hold: plain values go out (the collector may still drop them).
                     "level2_plaintext": bool(project.level2 and project.level2_plaintext
                                              and process.accept_level2_plaintext)})
    return {
        "version": __version__,
        "disabled_by": kill_switch(environ),
        "optin_only": process.optin_only,
        "ci": is_ci,
        "ci_vendor": vendor,
        "storage_type": process.storage_type,
        "user_config": user_config_path(environ),
        "config_error": config_error,
        "projects": rows,
    }


def _project_table_errors(environ):
    from .errors import ConfigError
    from .settings import project_table_errors, read_user_config

    try:
        return project_table_errors(read_user_config(environ), environ)
    except ConfigError:  # an unreadable file: _process_for_status reports it
        return {}


def _process_for_status(environ):
    """(ProcessSettings, the user config's error or None): with a malformed config file, the
    environment's settings, and the error naming the file, the key and the schema to check."""
    from .errors import ConfigError
    from .settings import process_settings

    try:
        return process_settings(environ=environ), None
    except ConfigError as exc:
        error = str(exc)
    try:
        return process_settings(environ=environ, user_config={}), error
    except ConfigError:  # a malformed environment variable as well: the defaults, for display only
        return process_settings(environ={}, user_config={}), error
