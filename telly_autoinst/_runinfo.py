"""How this process runs: in CI or not, on a terminal or not, and how the interpreter was started.

What consent and a report read from the process itself rather than from files, kept apart from
``facts`` (the machine's facts, which only a report needs): a warm run reads these at its first
watched import and at exit, and must not pay for the rest.
"""

import os
import sys

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
    environ = os.environ if environ is None else environ
    ci = environ.get("CI")
    if ci is not None and ci.strip().lower() in ("false", "0", "no", "off"):
        return False, None
    for variable, vendor in _CI_VENDORS:
        if environ.get(variable):
            return True, vendor
    if any(environ.get(variable) for variable in _CI_GENERIC):
        return True, None
    return False, None


def interactive():
    """Whether stderr is a terminal: the first-run notice is shown (and waited for) only there."""
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def interpreter():
    """Implementation, version and how this interpreter was started (script, module, command, repl, jupyter)."""
    return {
        "implementation": sys.implementation.name,
        "version": python_version(),
        "mode": _run_mode(),
    }


def python_version():
    """What platform.python_version() returns, without importing platform (~2 ms on the exit path)."""
    info = sys.version_info
    version = f"{info.major}.{info.minor}.{info.micro}"
    if info.releaselevel != "final":
        version += {"alpha": "a", "beta": "b", "candidate": "rc"}.get(info.releaselevel, "") + str(info.serial)
    return version


def _run_mode():
    # Jupyter and IPython kernels import ipykernel; a plain IPython shell only defines get_ipython.
    if "ipykernel" in sys.modules:
        return "jupyter"
    mode = _ipython_mode() if "IPython.terminal.ipapp" in sys.modules else None
    if mode is not None:
        return mode
    if sys.flags.interactive or hasattr(sys, "ps1"):
        return "repl"
    argv0 = sys.argv[0] if getattr(sys, "argv", None) else ""
    if argv0 == "-c":
        return "command"
    main = sys.modules.get("__main__")
    if main is not None and getattr(main, "__spec__", None) is not None:
        return "module"
    if argv0 in ("", "-"):
        return "repl" if sys.stdin is not None and sys.stdin.isatty() else "unknown"
    if argv0:
        return "script"
    return "unknown"


def _ipython_mode():
    """The mode of the ``ipython`` command, from its application's settings; None when it is not
    running (IPython imported by a program).

    ``ipython FILE``, ``ipython -c CODE`` and ``ipython -m MOD`` run like python's script, command
    and module, although IPython sets ``sys.ps1`` for them too; the shell, or ``-i``, is a repl.
    """
    app_class = getattr(sys.modules.get("IPython.terminal.ipapp"), "TerminalIPythonApp", None)
    try:
        if app_class is None or not app_class.initialized():
            return None
        app = app_class.instance()
        if getattr(app, "force_interact", False):
            return "repl"
        for attribute, mode in (("file_to_run", "script"), ("code_to_run", "command"), ("module_to_run", "module")):
            if getattr(app, attribute, None):
                return mode
    except Exception:  # another IPython's internals: it is IPython's shell all the same
        pass
    return "repl"
