"""Fresh, instrumented imports of the edge-case fixture package for in-process engine tests."""

import importlib
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from telly_autoinst import counters
from telly_autoinst.engines import make_engine
from telly_autoinst.settings import project_settings

EDGECASES = Path(__file__).resolve().parents[1] / "fixtures" / "pkg_edgecases"
MODULES = ("edgecases.core", "edgecases.meta", "edgecases.aio", "edgecases.exported", "edgecases")

# Every engine the running Python offers; the monitoring engine needs CPython 3.12+.
ENGINES = [
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


def instrumented(monkeypatch, engine_name, **table):
    """The fixture package imported afresh and instrumented by ``engine_name``, submodules first
    (the order the import hook sees them in)."""
    modules = import_edgecases(monkeypatch)
    settings = project(**table)
    engine, note = make_engine(engine_name)
    assert note is None, note
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
