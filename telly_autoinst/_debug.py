"""TELLY_DEBUG: the one place that prints what the client swallowed or decided, on stderr.

Read straight from the environment at every call, never from the settings: a broken config file
must not switch off the tool meant to diagnose it, and the start-up path must not pay for
settings. Standard library only (bootstrap and the finder use it). Every ``except`` that keeps
the host program running calls :func:`swallowed`; every consent decision calls :func:`note`.
"""

import sys

from ._env import ENV_DEBUG, truthy, variable


def enabled():
    """Whether TELLY_DEBUG is truthy in the environment right now."""
    return truthy(variable(ENV_DEBUG))


def note(message):
    """Print one line when TELLY_DEBUG is on; never raises."""
    if enabled():
        try:
            sys.stderr.write(f"telly_autoinst: {message}\n")
            sys.stderr.flush()
        except Exception:  # a closed or broken stderr: nowhere left to say it
            pass


def swallowed(where):
    """Call from an ``except`` block that swallows an error: with TELLY_DEBUG, print where and the traceback."""
    if enabled():
        try:
            import traceback

            sys.stderr.write(f"telly_autoinst: {where}, error swallowed:\n{traceback.format_exc()}")
            sys.stderr.flush()
        except Exception:
            pass
