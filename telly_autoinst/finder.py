"""The import hook: the ``sys.meta_path`` finder, its chained loader, and what becomes of each watched module.

For every module under a watched top-level name, the finder finds the real spec (walking the
rest of ``sys.meta_path``) and asks its callback for a loader to put in its place: the in-frame
engine answers with a loader that runs rewritten code; the others with :func:`chain`, which
runs the real loader and then reports the module.

Modeled on ddtrace's ModuleWatchdog rather than wrapt's importer: the finder walks the rest of
``sys.meta_path`` itself, because calling ``importlib.util.find_spec`` from inside a finder
deadlocks when a thread started by a module's ``__init__`` imports something (ddtrace PR #17742).

What happens to a watched module is decided from state built lazily, on the first watched
import, from the index that the wake already read: importing a package that nobody watches
never reaches this module. A warm run takes the settings, projects and consent verdicts from
the warm state (``warmstate``) instead of parsing the config, layering settings and reading the
consent lists; any change there, and ``TELLY_NO_CACHE``, takes the full path, which writes the
warm state for the next run.

Finder and decisions share one module because a warm run imports both at its first watched
import, and each module imported costs about half a million instructions whatever it holds.
Standard library only at import time.
"""

import os
import sys

# The frozen modules behind importlib.machinery are always loaded; importlib.machinery itself
# (with importlib and warnings) would add half a millisecond to every interpreter start.
from _frozen_importlib import BuiltinImporter, FrozenImporter
from _frozen_importlib_external import ExtensionFileLoader
from _thread import RLock, get_ident  # not threading: see counters

from . import _env
from .engines._base import restore_loader


def _skip_loader(loader):
    """Loaders whose modules carry no Python code of their own: nothing to instrument."""
    if loader is None or isinstance(loader, (ExtensionFileLoader, _Chained)):
        return True
    if loader is BuiltinImporter or loader is FrozenImporter or isinstance(loader, type):
        return True
    # Namespace packages: NamespaceLoader is private and moved between versions; match by name.
    return type(loader).__name__ in ("NamespaceLoader", "_NamespaceLoader")


class _Chained:
    """Holds the real loader and forwards every attribute it does not define to it
    (get_code, get_source, is_package, resource readers...)."""

    def __init__(self, loader, on_loaded):
        self._telly_loader = loader
        self._telly_on_loaded = on_loaded

    def __getattr__(self, name):
        return getattr(self._telly_loader, name)


class _ChainedLoader(_Chained):
    """Runs the real loader, then hands the executed module to the callback."""

    def create_module(self, spec):
        create = getattr(self._telly_loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module):
        loader = self._telly_loader
        restore_loader(module, loader)
        loader.exec_module(module)
        self._telly_on_loaded(module)


class _LegacyChainedLoader(_Chained):
    """The same, for loaders with only ``load_module`` (zipimport before Python 3.10)."""

    def load_module(self, fullname):
        module = self._telly_loader.load_module(fullname)
        restore_loader(module, self._telly_loader)
        self._telly_on_loaded(module)
        return module


def chain(loader, on_loaded):
    """A loader that runs ``loader`` and then calls ``on_loaded(module)`` (errors swallowed);
    None when ``loader`` can do neither."""

    def guarded(module):
        # The host's import must succeed whatever happens to instrumentation.
        try:
            on_loaded(module)
        except Exception:
            _env.swallowed(f"instrumenting {getattr(module, '__name__', '?')}")

    if hasattr(loader, "exec_module"):
        return _ChainedLoader(loader, guarded)
    if hasattr(loader, "load_module"):
        return _LegacyChainedLoader(loader, guarded)
    return None


class WatchFinder:
    """Offers the spec of every module under a watched top-level name to ``on_found``; ignores the rest.

    ``on_found(spec)`` returns the loader to use instead of ``spec.loader``, or None to keep it.
    """

    def __init__(self, watched, on_found):
        self.watched = frozenset(watched)
        self._on_found = on_found
        # (thread id, module name) pairs being looked up: another finder further down may call
        # importlib.util.find_spec for the same name, which comes back here.
        self._finding = set()

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] not in self.watched:
            return None
        key = (get_ident(), fullname)
        if key in self._finding:
            return None
        self._finding.add(key)
        try:
            spec = self._find_with_the_rest(fullname, path, target)
        finally:
            self._finding.discard(key)
        if spec is None or _skip_loader(spec.loader):
            return spec
        try:
            loader = self._on_found(spec)
        except Exception:  # the host's import goes on with the real loader
            _env.swallowed(f"finding {fullname}")
            loader = None
        if loader is not None:
            spec.loader = loader
        return spec

    def _find_with_the_rest(self, fullname, path, target):
        meta_path = sys.meta_path
        try:
            start = meta_path.index(self) + 1
        except ValueError:
            start = 0
        for finder in meta_path[start:]:
            if finder is self:
                continue
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is not None:
                spec = find_spec(fullname, path, target)
            else:  # pragma: no cover - finders with only find_module (gone in 3.12)
                spec = self._legacy_find(finder, fullname, path)
            if spec is not None:
                return spec
        return None

    @staticmethod
    def _legacy_find(finder, fullname, path):
        find_module = getattr(finder, "find_module", None)
        loader = find_module(fullname, path) if find_module is not None else None
        if loader is None:
            return None
        import importlib.util

        return importlib.util.spec_from_loader(fullname, loader)



def install(watched, on_found, replacing=None):
    """Put a WatchFinder first on ``sys.meta_path`` (once), or in the place of ``replacing``
    (bootstrap's stand-in, which is then gone), and return it."""
    meta_path = sys.meta_path
    for finder in meta_path:
        if isinstance(finder, WatchFinder):
            break
    else:
        finder = WatchFinder(watched, on_found)
        meta_path.insert(0, finder)
    if replacing is not None:
        try:  # another thread may have removed the same stand-in already
            meta_path.remove(replacing)
        except ValueError:
            pass
    return finder


def uninstall():
    """Remove every WatchFinder and bootstrap's stand-in: ``--dry-run`` imports packages without
    instrumenting them."""
    sys.meta_path[:] = [f for f in sys.meta_path
                        if not isinstance(f, WatchFinder) and not getattr(f, "telly_autoinst_gate", False)]


# -- what happens to a watched module --------------------------------------------------------------



_lock = RLock()
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
            _env.note(f"ignoring a package's settings: {error}")
    except Exception:  # a state of another shape: the full path decides
        _env.swallowed("reading the warm state")
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
        _env.note(f"ignoring a package's settings: {error}")
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
        _env.note(note)
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
            _env.note(f"consent for {project_id}: {'send' if verdict[0] else 'do not send'} ({verdict[1]}; "
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

            if _env.kill_switch() is None and warmstate.key(warm[1]["settings_files"]) == warm[0]:
                _env.note(f"consent for {project.project_id} at send: unchanged since the run began")
                return verdict[0]
    from .consent import decide

    return decide(project, process()).send


def _activate_pipeline():
    global _activated
    with _lock:
        if _activated:
            return
        _activated = True
    from .engines import engine_name
    from .pipeline import activate

    activate(process(), projects, by_distribution, _decide_at_send, engine_name=lambda p: engine_name(p.engine))


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
    from .settings import project_settings

    if isinstance(module, str):
        module = sys.modules[module]
    if _env.kill_switch() is not None:
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
    _lock = RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork_in_child)
