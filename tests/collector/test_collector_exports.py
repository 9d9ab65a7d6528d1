"""Each collector module exports exactly its public names through ``__all__``."""

import importlib
import inspect

import pytest

MODULES = ["app", "cli", "connection", "dashboard", "decode", "ingest", "jobs", "privacy", "ratelimit", "receive",
           "registry", "store", "window", "workers", "writer"]


@pytest.mark.parametrize("name", MODULES)
def test_all_is_exactly_the_public_names(name):
    module = importlib.import_module(f"telly_autoinst.collector.{name}")
    own = {n for n, v in vars(module).items()
           if not n.startswith("_") and not inspect.ismodule(v)
           and getattr(v, "__module__", module.__name__) == module.__name__}
    # Tables and constants are module data, not API: only functions and classes are compared.
    own = {n for n in own if inspect.isfunction(vars(module)[n]) or inspect.isclass(vars(module)[n])}
    exported = {n for n in module.__all__ if inspect.isfunction(vars(module)[n]) or inspect.isclass(vars(module)[n])}
    assert own == exported
    for exported_name in module.__all__:
        assert hasattr(module, exported_name)
    assert (module.__doc__ or "").strip(), f"{name} needs a docstring stating its concern"
