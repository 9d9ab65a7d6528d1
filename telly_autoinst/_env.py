"""Environment switches that must be readable at interpreter start, how this process runs (CI, a
terminal), and what TELLY_DEBUG prints.

TELLY_DEBUG is the one place that prints what the client swallowed or decided, on stderr. It is
read straight from the environment at every call, never from the settings: a broken config file
must not switch off the tool meant to diagnose it, and the start-up path must not pay for
settings. Every ``except`` that keeps the host program running calls :func:`swallowed`; every
consent decision calls :func:`note`. (It lives here, not in a module of its own: each module the
warm path imports costs about 0.3M instructions, whatever it holds.)

Standard library only. How the process runs is what consent and a report read from the process
itself rather than from files (the machine's facts are ``facts``', which only a report needs): a
warm run reads it at its first watched import, from this module, which the wake has loaded
already. How the interpreter was started is captured at activation by the pipeline
(``pipeline.describe_interpreter``).
"""

import os
import sys

# The start-up slice of the shared contract (config/contract.json), as literals: importing
# ``_contract`` here would cost every start that wakes the hook one more module (about 1% of
# ``python -c pass``). tests/test_contract.py checks that each equals the contract's.
TRUTHY = frozenset(("1", "true", "yes", "y", "on"))
FALSY = frozenset(("0", "false", "no", "n", "off", ""))
ENV_DISABLE = "TELLY_DISABLE"
ENV_DO_NOT_TRACK = "DO_NOT_TRACK"
ENV_DEBUG = "TELLY_DEBUG"
ENV_NO_CACHE = "TELLY_NO_CACHE"
ENV_FORCE_PACKAGES = "TELLY_AUTOINST_PACKAGES"  # the variable of the force_packages setting
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


# Reading os.environ costs Python code per variable: a name is encoded, and a missing one raises
# and catches a KeyError (about 5,000 instructions); iterating it decodes every name (2,500
# each). The client read the environment a few dozen times a run and iterated it four times,
# which cost 10,000 instructions per variable: 1.5 million on a CI machine that sets 150. On
# POSIX, os.environ keeps the process's variables in its own dict of bytes, which is read here
# as os.environ itself reads it (filesystem encoding, surrogateescape), live at every call.
_ENCODING = sys.getfilesystemencoding()


def _raw():
    """os.environ's own dict of bytes names and values, or None where it keeps none (Windows)."""
    data = getattr(os.environ, "_data", None)
    return data if os.name == "posix" and type(data) is dict else None


def variable(name):
    """``os.environ.get(name)``, read now."""
    data = _raw()
    if data is None:
        return os.environ.get(name)
    value = data.get(name.encode(_ENCODING, "surrogateescape"))
    return None if value is None else value.decode(_ENCODING, "surrogateescape")


def names_with(prefix):
    """The names of the environment variables that start with ``prefix``, read now (compared
    before decoding: most names are not decoded at all)."""
    data = _raw()
    if data is None:
        return [name for name in os.environ if name.startswith(prefix)]
    head = prefix.encode(_ENCODING, "surrogateescape")
    return [name.decode(_ENCODING, "surrogateescape") for name in data if name.startswith(head)]


def _lookup(environ):
    """``environ.get``; :func:`variable` for the process's own environment."""
    return variable if environ is None or environ is os.environ else environ.get


def no_cache():
    """Whether TELLY_NO_CACHE asks for the full path: no cache of the client's read or written this run.

    The index of watched packages and the rewritten code are then made afresh at every run (a
    scan of the installed distributions, a parse of each watched module): slower, and never stale.
    """
    return truthy(variable(ENV_NO_CACHE))


def home_dir():
    """The user's home directory, or None when HOME is missing or empty.

    No fallback to the passwd entry: a process started without HOME (a service, a sandbox) did
    not ask for per-user state, so the client leaves it untouched.
    """
    home = variable("USERPROFILE" if os.name == "nt" else "HOME")
    return home or None


def kill_switch(environ=None):
    """Name the kill switch that is on, or return None.

    Checked before anything else at start-up: any of these turns the whole client off,
    so nothing is counted, written or sent, and no "opted out" event exists.
    """
    get = _lookup(environ)
    if truthy(get(ENV_DISABLE)):
        return ENV_DISABLE
    # Console Do Not Track (consoledonottrack.com): `export DO_NOT_TRACK=1` says no. A variable
    # that is set at all states a wish not to be tracked, so any value but an explicit "no"
    # (0/false/no/n/off) counts, the empty string included: `DO_NOT_TRACK=` is not consent.
    dnt = get(ENV_DO_NOT_TRACK)
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
    base = _lookup(environ)("XDG_CONFIG_HOME")
    if not base:
        home = home_dir()
        if home is None:
            return None
        base = os.path.join(home, ".config")
    return os.path.join(base, FILE_CONFIG_DIR, FILE_CONFIG_FILE)


# -- how this process runs -------------------------------------------------------------------------

# Vendor table in the spirit of watson/ci-info: the variable that proves the vendor, and its name.
# Checked in order; the first match names the vendor.
_CI_VENDORS = (
    ("GITHUB_ACTIONS", "github_actions"),
    ("GITLAB_CI", "gitlab"),
    ("CIRCLECI", "circleci"),
    ("TRAVIS", "travis"),
    ("JENKINS_URL", "jenkins"),
    ("BUILDKITE", "buildkite"),
    ("TF_BUILD", "azure_pipelines"),
    ("APPVEYOR", "appveyor"),
    ("BITBUCKET_BUILD_NUMBER", "bitbucket"),
    ("TEAMCITY_VERSION", "teamcity"),
    ("DRONE", "drone"),
    ("CODEBUILD_BUILD_ARN", "aws_codebuild"),
    ("BUILDER_OUTPUT", "google_cloud_build"),
    ("SEMAPHORE", "semaphore"),
    ("NETLIFY", "netlify"),
    ("VERCEL", "vercel"),
    ("CF_PAGES", "cloudflare_pages"),
    ("HEROKU_TEST_RUN_ID", "heroku"),
    ("WOODPECKER_CI", "woodpecker"),
    ("CIRRUS_CI", "cirrus"),
    ("BITRISE_IO", "bitrise"),
    ("SCREWDRIVER", "screwdriver"),
    ("HUDSON_URL", "hudson"),
    ("GO_PIPELINE_LABEL", "gocd"),
)
# Generic variables that many CI systems set; ci-info's list.
_CI_GENERIC = ("CI", "CONTINUOUS_INTEGRATION", "BUILD_ID", "BUILD_NUMBER", "RUN_ID")


def ci_vendor(environ=None):
    """(is_ci, vendor_or_None) from the environment; ``CI=false`` (or 0/no/off) means not CI."""
    get = _lookup(environ)
    ci = get("CI")
    if ci is not None and ci.strip().lower() in ("false", "0", "no", "off"):
        return False, None
    for name, vendor in _CI_VENDORS:
        if get(name):
            return True, vendor
    if any(get(name) for name in _CI_GENERIC):
        return True, None
    return False, None


def interactive():
    """Whether stderr is a terminal: the first-run notice is shown (and waited for) only there."""
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


# -- TELLY_DEBUG ------------------------------------------------------------------------------------


def debugging():
    """Whether TELLY_DEBUG is truthy in the environment right now."""
    return truthy(variable(ENV_DEBUG))


def note(message):
    """Print one line when TELLY_DEBUG is on; never raises."""
    if debugging():
        try:
            sys.stderr.write(f"telly_autoinst: {message}\n")
            sys.stderr.flush()
        except Exception:  # a closed or broken stderr: nowhere left to say it
            pass


def swallowed(where):
    """Call from an ``except`` block that swallows an error: with TELLY_DEBUG, print where and the traceback."""
    if debugging():
        try:
            import traceback

            sys.stderr.write(f"telly_autoinst: {where}, error swallowed:\n{traceback.format_exc()}")
            sys.stderr.flush()
        except Exception:
            pass
