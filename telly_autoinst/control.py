"""Decides what happens to a watched module as it is imported: its project, consent, and engine.

State is built lazily, on the first watched import, from the index that bootstrap already read:
importing a package that nobody watches never reaches this module.
"""

import os
import sys
import threading

from . import _debug, discovery
from .errors import TellyError

_lock = threading.RLock()
_state = None  # (process settings, projects by claimed module: a package root)
_activated = False


def _load_state():
    global _state
    with _lock:
        if _state is None:
            from .settings import process_settings, read_user_config

            user_config = read_user_config()
            process = process_settings(user_config=user_config)
            forced = set(process.force_packages)
            watched, payload = discovery.current_index()
            declarations = discovery.load_declarations(payload)
            by_module, errors = discovery.resolve(declarations, sorted(forced), user_config=user_config)
            for error in errors:  # at run time a malformed table is skipped; --dry-run shows the same
                _debug.note(f"ignoring a package's settings: {error}")
            _state = (process, by_module)
        return _state


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


def _allowed(project):
    from .consent import allows_counting

    return allows_counting(project, process())


def _activate_pipeline():
    global _activated
    with _lock:
        if _activated:
            return
        _activated = True
    from .pipeline import activate

    activate(process(), projects, by_distribution)


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
