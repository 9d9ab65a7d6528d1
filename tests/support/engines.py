"""Fresh, instrumented imports of the edge-case fixture package for in-process engine tests."""

import importlib
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from telly_autoinst import counters, finder
from telly_autoinst.engines import instrumented_keys, make_engine
from telly_autoinst.selection import select
from telly_autoinst.settings import project_settings

EDGECASES = Path(__file__).resolve().parents[1] / "fixtures" / "pkg_edgecases"
MODULES = ("edgecases.core", "edgecases.meta", "edgecases.aio", "edgecases.exported", "edgecases")

# Every engine the running Python offers; the monitoring engine needs CPython 3.12+.
# "rewrite:import" is the rewrite engine on its usual path: the module is rewritten as the import
# hook finds it (the plain "rewrite" instruments modules that already ran, by swapping code).
ENGINES = [
    "rewrite:import",
    "rewrite",
    "wrapt",
    pytest.param("monitoring", marks=pytest.mark.skipif(sys.version_info < (3, 12),
                                                        reason="sys.monitoring needs Python 3.12+")),
]


def project(**table):
    """ProjectSettings for the fixture package with a unique project id (so counts never mix)."""
    table = {"project_id": f"edge-{uuid.uuid4().hex[:12]}", "packages": ["edgecases"], **table}
    return project_settings(table, "tests", environ={}, user_config={})


def forget_edgecases():
    for name in [n for n in sys.modules if n == "edgecases" or n.startswith("edgecases.")]:
        del sys.modules[name]


def import_edgecases(monkeypatch):
    """Fresh module objects (new functions, classes and code objects) of the fixture package."""
    monkeypatch.syspath_prepend(str(EDGECASES))
    forget_edgecases()
    return {name: importlib.import_module(name) for name in MODULES}


def _import_through_the_hook(monkeypatch, engine, settings):
    """Fresh modules of the fixture package, imported through a WatchFinder that asks ``engine``
    for a loader (and chains to ``engine.instrument`` when it has none), as the finder does."""
    def on_found(spec):
        return engine.loader_for(spec, settings) or finder.chain(spec.loader,
                                                                 lambda m: engine.instrument(m, settings))

    hook = finder.WatchFinder({"edgecases"}, on_found)
    monkeypatch.setattr(sys, "meta_path", [hook, *sys.meta_path])
    try:
        modules = import_edgecases(monkeypatch)
    finally:
        sys.meta_path.remove(hook)
    done = instrumented_keys(settings.project_id)
    return modules, {name: [t.key for t in select(m, settings) if t.key in done] for name, m in modules.items()}


def instrumented(monkeypatch, engine_name, **table):
    """The fixture package imported afresh and instrumented by ``engine_name``, submodules first
    (the order the import hook sees them in)."""
    settings = project(**table)
    engine, note = make_engine(engine_name.partition(":")[0])
    assert note is None, note
    if engine_name.endswith(":import"):
        modules, keys = _import_through_the_hook(monkeypatch, engine, settings)
    else:
        modules = import_edgecases(monkeypatch)
        keys = {name: engine.instrument(module, settings) for name, module in modules.items()}
    return SimpleNamespace(
        engine=engine,
        project=settings,
        keys=keys,
        pkg=modules["edgecases"],
        core=modules["edgecases.core"],
        meta=modules["edgecases.meta"],
        aio=modules["edgecases.aio"],
        exported=modules["edgecases.exported"],
        take=lambda: counters.take(settings.project_id),
    )
