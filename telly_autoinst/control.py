"""Decides what happens to a watched module as it is imported: its project, consent, and engine.

State is built lazily, on the first watched import, from the index that bootstrap already read:
importing a package that nobody watches never reaches this module. A warm run takes the
settings, projects and consent verdicts from the warm state (``warmstate``) instead of
parsing the config, layering settings and reading the consent lists; any change there, and
``TELLY_NO_CACHE``, takes the full path, which writes the warm state for the next run.
"""

import os
import sys
import threading

from . import _debug

_lock = threading.RLock()
_state = None  # (process settings, projects by claimed module: a package root)
_activated = False
# The warm state this process follows: (key, state). Its "verdicts" hold each project's
# counting verdict, decided once per process (flush asks again before sending).
_warm = None


def _load_state():
    global _state
    with _lock:
        if _state is None:
            _state = _warm_state() or _full_state()
        return _state


def _warm_state():
    """``(process, by_module)`` from a warm state that still holds, or None."""
    global _warm
    from . import warmstate

    found = warmstate.load()
    if found is None:
        return None
    current, state = found
    from ._record import types_for

    try:
        # The types settings makes from the contract (the state was written with this version).
        ProjectSettings, ProcessSettings = types_for(*state["fields"])
        process = ProcessSettings(*state["process"])
        projects = [ProjectSettings(*values) for values in state["projects"]]
        by_module = {module: projects[i] for module, i in state["modules"]}
        for error in state["errors"]:  # as the full path says it (TELLY_DEBUG)
            _debug.note(f"ignoring a package's settings: {error}")
    except Exception:  # a state of another shape: the full path decides
        _debug.swallowed("reading the warm state")
        return None
    _warm = (current, state)
    return process, by_module


def _full_state():
    """``(process, by_module)`` from the user config, the index and the environment; kept as the
    warm state (without verdicts yet) under a key taken before any of them was read."""
    global _warm
    from . import discovery, warmstate
    from .settings import process_settings, read_user_config

    early = warmstate.key()
    watched, payload = discovery.current_index()
    declarations = discovery.load_declarations(payload)
    settings_files = sorted({d.stamp for d in declarations if d.stamp})
    user_config = read_user_config()
    process = process_settings(user_config=user_config)
    forced = set(process.force_packages)
    by_module, errors = discovery.resolve(declarations, sorted(forced), user_config=user_config)
    for error in errors:  # at run time a malformed table is skipped; --dry-run shows the same
        _debug.note(f"ignoring a package's settings: {error}")
    current = warmstate.key_since(early, settings_files)
    if current is not None:
        projects = list({id(p): p for p in by_module.values()}.values())
        index = {id(p): i for i, p in enumerate(projects)}
        state = {"fields": (projects[0]._fields if projects else (), type(process)._fields),
                 "process": tuple(process), "projects": [tuple(p) for p in projects],
                 "modules": [(module, index[id(p)]) for module, p in by_module.items()],
                 "settings_files": settings_files, "errors": list(errors), "verdicts": {}}
        if projects:
            _warm = (current, state)
            warmstate.store(current, state)
    return process, by_module


def process():
    """This process's ProcessSettings."""
    return _load_state()[0]


def projects():
    """Active projects by project id (a project may own several top-level modules)."""
    return {p.project_id: p for p in _load_state()[1].values()}


def by_distribution(project_id, stats):
    """``[(project, stats)]``: one project id's counts, each attributed to the distribution whose
    modules the key names. Two distributions may share a project id; each is reported under its
    own name and version, never one under the other's."""
    owners = {id(p): p for p in _load_state()[1].values() if p.project_id == project_id}
    if len(owners) < 2:
        return [(next(iter(owners.values()), None), stats)]
    parts: dict = {}
    for key, count in stats.items():
        owner = project_for(key)  # a key starts with its module's name
        if owner is None or owner.project_id != project_id:
            owner = next(iter(owners.values()))
        parts.setdefault(id(owner), (owner, {}))[1][key] = count
    return list(parts.values())


def project_for(module_name):
    """The ProjectSettings that owns ``module_name``, or None: the project of its longest
    claimed prefix (a namespace package's parts belong to different distributions)."""
    by_module = _load_state()[1]
    name = module_name
    while True:
        project = by_module.get(name)
        if project is not None:
            return project
        name, dot, _ = name.rpartition(".")
        if not dot:
            return None


def _engine(name):
    # make_engine keeps one engine per kind for the process: no second cache here.
    from .engines import make_engine

    engine, note = make_engine(name)
    if note:
        _debug.note(note)
    return engine


_counting: "dict[str, bool]" = {}  # project_id -> whether it is counted, decided once per process


def _allowed(project):
    """Whether ``project`` may be counted in this process (asked at each of its modules' imports)."""
    allowed = _counting.get(project.project_id)
    if allowed is None:
        allowed = _counting[project.project_id] = _verdict(project)
    return allowed


def _verdict(project):
    """The warm state's verdict, or the consent decision (which shows the first-run notice when
    due), then kept in the warm state for the next run."""
    project_id = project.project_id
    warm = _warm
    if warm is not None:
        verdict = warm[1]["verdicts"].get(project_id)
        if verdict is not None:
            _debug.note(f"consent for {project_id}: {'send' if verdict[0] else 'do not send'} ({verdict[1]}; "
                        "from the warm state)")
            return verdict[0]
    from .consent import allows_counting, decide

    if warm is None:  # TELLY_NO_CACHE, or no cache to keep it in
        return allows_counting(project, process())
    from . import warmstate

    decision = decide(project, process())
    with _lock:
        warm[1]["verdicts"][project_id] = (decision.send, decision.reason)
        warmstate.store(*warm)
    return decision.send


def _decide_at_send(project):
    """Whether ``project``'s report may leave now: the warm verdict while nothing it read changed
    since the run began (the kill switches are read again first), else the consent decision."""
    warm = _warm
    if warm is not None:
        verdict = warm[1]["verdicts"].get(project.project_id)
        if verdict is not None:
            from . import warmstate
            from ._env import kill_switch

            if kill_switch() is None and warmstate.key(warm[1]["settings_files"]) == warm[0]:
                _debug.note(f"consent for {project.project_id} at send: unchanged since the run began")
                return verdict[0]
    from .consent import decide

    return decide(project, process()).send


def _activate_pipeline():
    global _activated
    with _lock:
        if _activated:
            return
        _activated = True
    from .pipeline import activate

    activate(process(), projects, by_distribution, _decide_at_send)


def loader_for(spec):
    """The loader a watched module's spec should use: the in-frame engine's, which runs the
    module already instrumented, or the real one chained to :func:`on_module_loaded`; None
    (leave the spec alone) when the module's project is not counted."""
    project = project_for(spec.name)
    if project is None or not _allowed(project):
        return None
    engine = _engine(project.engine)
    loader = engine.loader_for(spec, project)
    if loader is not None:
        _activate_pipeline()
        return loader
    from .finder import chain

    return chain(spec.loader, on_module_loaded)


def on_module_loaded(module):
    """Instrument a module the finder saw executing, if its project and the user allow it."""
    project = project_for(module.__name__)
    if project is None or not _allowed(project):
        return
    _engine(project.engine).instrument(module, project)
    _activate_pipeline()


def instrument(module, project_id=None):
    """Instrument ``module`` by hand, for programs where the import hook does not run.

    Use it where the ``.pth`` file is not processed (``python -S``, embedded interpreters) or for
    modules imported before the hook was installed. Kill switches and consent still apply.
    Returns the count keys that were instrumented.
    """
    from ._env import kill_switch
    from .settings import project_settings

    if isinstance(module, str):
        module = sys.modules[module]
    if kill_switch() is not None:
        return []
    project = project_for(module.__name__)
    if project is None or (project_id is not None and project.project_id != project_id):
        if project_id is None:
            from .errors import TellyError  # only a hand-made call can get here: not on the import path

            raise TellyError(f"module {module.__name__!r} belongs to no watched project; pass project_id=")
        top = module.__name__.partition(".")[0]
        project = project_settings({"project_id": project_id}, "telly_autoinst.instrument()",
                                   default_packages=(top,))
        with _lock:
            _load_state()[1].setdefault(top, project)
    if not _allowed(project):
        return []
    keys = _engine(project.engine).instrument(module, project)
    _activate_pipeline()
    return keys


def _reset_after_fork_in_child():
    # The lock may have been held by another thread at fork time.
    global _lock
    _lock = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork_in_child)
