"""Environment switches that must be readable at interpreter start, with the standard library only."""

import os

# The start-up slice of the shared contract (config/contract.json), as literals: importing
# ``_contract`` here would cost every start that wakes the hook one more module (about 1% of
# ``python -c pass``). tests/test_contract.py checks that each equals the contract's.
TRUTHY = frozenset(("1", "true", "yes", "y", "on"))
FALSY = frozenset(("0", "false", "no", "n", "off", ""))
ENV_DISABLE = "TELLY_DISABLE"
ENV_DO_NOT_TRACK = "DO_NOT_TRACK"
ENV_DEBUG = "TELLY_DEBUG"
FILE_DISABLE = ".telly_disable"
FILE_OPTIN = ".telly_optin"
FILE_OPTOUT = ".telly_optout"
FILE_NOTICES = ".telly_notices"
FILE_CONFIG_DIR = "telly_autoinst"
FILE_CONFIG_FILE = "config.toml"
FILE_CACHE_DIR = "telly_autoinst"

_DNT_NO = FALSY - {""}


def truthy(value):
    """Return True for 1/true/yes/y/on in any case; anything else (unset included) is False."""
    return value is not None and value.strip().lower() in TRUTHY


def no_cache():
    """Whether TELLY_NO_CACHE asks for the full path: no cache of the client's read or written this run.

    The index of watched packages and the rewritten code are then made afresh at every run (a
    scan of the installed distributions, a parse of each watched module): slower, and never stale.
    """
    return truthy(os.environ.get("TELLY_NO_CACHE"))


def home_dir():
    """The user's home directory, or None when HOME is missing or empty.

    No fallback to the passwd entry: a process started without HOME (a service, a sandbox) did
    not ask for per-user state, so the client leaves it untouched.
    """
    home = os.environ.get("USERPROFILE" if os.name == "nt" else "HOME")
    return home or None


def kill_switch(environ=None):
    """Name the kill switch that is on, or return None.

    Checked before anything else at start-up: any of these turns the whole client off,
    so nothing is counted, written or sent, and no "opted out" event exists.
    """
    environ = os.environ if environ is None else environ
    if truthy(environ.get(ENV_DISABLE)):
        return ENV_DISABLE
    # Console Do Not Track (consoledonottrack.com): `export DO_NOT_TRACK=1` says no. A variable
    # that is set at all states a wish not to be tracked, so any value but an explicit "no"
    # (0/false/no/n/off) counts, the empty string included: `DO_NOT_TRACK=` is not consent.
    dnt = environ.get(ENV_DO_NOT_TRACK)
    if dnt is not None and dnt.strip().lower() not in _DNT_NO:
        return ENV_DO_NOT_TRACK
    home = home_dir()
    if home is not None:
        try:
            if os.path.lexists(os.path.join(home, FILE_DISABLE)):
                return f"~/{FILE_DISABLE}"
        except Exception:
            return f"~/{FILE_DISABLE} (unreadable home)"
    return None


def user_config_path(environ=None):
    """``$XDG_CONFIG_HOME/telly_autoinst/config.toml``, or None without a usable home."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CONFIG_HOME")
    if not base:
        home = home_dir()
        if home is None:
            return None
        base = os.path.join(home, ".config")
    return os.path.join(base, FILE_CONFIG_DIR, FILE_CONFIG_FILE)

