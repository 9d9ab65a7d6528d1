"""telly_autoinst: privacy-friendly usage statistics for open-source Python packages, with no code changes.

This module is imported whenever the hook wakes (at the first import from outside the standard
library, in most programs), so it only declares names; each public name is loaded from its
private module on first use (PEP 562).
"""

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "TellyError",
    "TransportError",
    "flush",
    "instrument",
]

_LAZY = {
    "flush": "telly_autoinst.pipeline",
    "instrument": "telly_autoinst.finder",
    "TellyError": "telly_autoinst.errors",
    "ConfigError": "telly_autoinst.errors",
    "TransportError": "telly_autoinst.errors",
}


def __getattr__(name):
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'telly_autoinst' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
