"""Every setting, declared once as data, and the layering of its sources into frozen objects.

Sources, lowest to highest precedence:

1. the default in ``SETTINGS``;
2. the package's own table: ``[tool.telly]`` in ``pyproject.toml`` (source checkout or
   editable install) or ``telly.toml`` shipped inside the package (installed wheel);
3. the user's config file, ``$XDG_CONFIG_HOME/telly_autoinst/config.toml`` (top-level keys,
   then ``[project."<project_id>"]`` tables for one project);
4. environment variables.

Project settings (who gets the counts and how) come from all four; process settings (how this
user's process behaves) only from 1, 3 and 4, because a package must not be able to turn on
``show_me`` or move this user's spool.
"""

import os
from collections.abc import Mapping

from ._env import FALSY, TRUTHY, user_config_path
from ._record import record
from .errors import ConfigError

# Names for annotations only: never imported at run time (typing would cost an import).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _bool(value, where):
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in TRUTHY:
            return True
        if lowered in FALSY:
            return False
    raise ConfigError(f"{where}: expected true or false, got {value!r}")


def _str(value, where):
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise ConfigError(f"{where}: expected a non-empty string, got {value!r}")


def _opt_str(value, where):
    return None if value in (None, "") else _str(value, where)


_PROJECT_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-")
_PROJECT_ID_MAX = 128


def project_id_problem(value):
    """What is wrong with a project id, or None: 1 to 128 of ``A-Z a-z 0-9 . _ : -`` (config/telly.schema.json)."""
    if not isinstance(value, str):
        return f"expected a string, got {type(value).__name__}"
    if not value:
        return "it is empty"
    if len(value) > _PROJECT_ID_MAX:
        return f"it is longer than {_PROJECT_ID_MAX} characters"
    bad = sorted(set(value) - _PROJECT_ID_CHARS)
    if bad:
        return f"it contains {', '.join(repr(c) for c in bad[:5])}; only letters, digits and . _ : - are allowed"
    return None


def _project_id(value, where):
    problem = project_id_problem(value)
    if problem:
        raise ConfigError(f"{where}: {value!r} is not a valid project id: {problem}")
    return value


def _positive(value, where):
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if isinstance(value, bool) or not number > 0:
        raise ConfigError(f"{where}: expected a positive number of seconds, got {value!r}")
    return number


def _names(value, where):
    """A list of strings; a comma-separated string is accepted from the environment."""
    if isinstance(value, str):
        value = [part for part in value.split(",")]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
    return tuple(v.strip() for v in value if v.strip())


def _module_names(value, where):
    names = _names(value, where)
    for name in names:
        if not all(part.isidentifier() for part in name.split(".")):
            raise ConfigError(f"{where}: {name!r} is not an importable module name")
    return names


def _choice(*allowed):
    def parse(value, where):
        if isinstance(value, str) and value.strip().lower() in allowed:
            return value.strip().lower()
        raise ConfigError(f"{where}: expected one of {', '.join(allowed)}, got {value!r}")

    parse.allowed = allowed  # type: ignore[attr-defined]  # read by the schema test
    return parse


def _endpoints(value, where):
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(f"{where}: expected a table like {{us = \"https://...\", eu = \"https://...\"}}")
    unknown = sorted(set(value) - {"us", "eu"})
    if unknown:
        raise ConfigError(f"{where}: unknown region(s) {', '.join(unknown)}; use us and eu")
    return tuple(sorted((region, _str(url, f"{where}.{region}")) for region, url in value.items()))


_SettingFields: "Any" = record("Setting", "name scope parse default env doc")


class Setting(_SettingFields):
    """One setting: its name (also its key in every table), its scope ("project" or
    "process"), how a raw value is parsed, its default, its environment variable, and its doc."""

    __slots__ = ()


SETTINGS = (
    # Project scope: an author's table declares these; a user may override them.
    Setting("project_id", "project", _project_id, None, None,
            "Identifies the project at the collector. Required."),
    Setting("packages", "project", _module_names, (), None,
            "Top-level modules to instrument. Default: the entry point's module, else the distribution name."),
    Setting("include", "project", _names, ("*",), None,
            "Glob patterns on qualified names (pkg.mod.func); only matches are counted."),
    Setting("exclude", "project", _names, (), None,
            "Glob patterns on qualified names that are never counted; wins over include."),
    Setting("endpoint", "project", _opt_str, None, None,
            "Collector base URL. Default: the endpoint of `region` in `endpoints`."),
    Setting("endpoints", "project", _endpoints, (), None,
            "Per-region collector URLs: {us = ..., eu = ...}."),
    Setting("region", "project", _choice("us", "eu"), "us", "TELLY_REGION",
            "Which of `endpoints` receives this project's reports."),
    Setting("engine", "project", _choice("auto", "rewrite", "monitoring", "wrapt"), "auto", "TELLY_ENGINE",
            "Counting engine: auto (in-frame rewrite), rewrite, monitoring (CPython 3.12+) or wrapt proxies."),
    Setting("mode", "project", _choice("optout", "optin"), "optout", None,
            "optin: send only if the user ran `python -m telly_autoinst optin PROJECT_ID`."),
    Setting("level2", "project", _bool, True, "TELLY_INCLUDE_LEVEL2",
            "Send Level II data (salted HMAC hashes of user, home, machine id, hostname)."),
    Setting("send_from_ci", "project", _bool, True, "TELLY_SEND_FROM_CI",
            "Send reports from CI runs (they are flagged as CI either way)."),
    # One of three agreements (with accept_level2_plaintext and the collector project's flag);
    # only the author's table may set it, never a user override (see _AUTHOR_ONLY_KEYS).
    Setting("level2_plaintext", "project", _bool, False, None,
            "Internal corporate deployments only: the author agrees to send Level II values in plain text "
            "when the user also sets TELLY_LEVEL2_PLAINTEXT=1."),
    # Process scope: only the user (config file or environment) decides these.
    Setting("optin_only", "process", _bool, False, "TELLY_OPTIN",
            "Opt-in mode for every project: send only for projects listed in ~/.telly_optin."),
    Setting("force_packages", "process", _module_names, (), "TELLY_AUTOINST_PACKAGES",
            "Top-level modules to instrument even though they did not opt in."),
    Setting("storage_type", "process", _choice("http_async", "http", "file"), "http_async",
            "TELLY_STORAGE_TYPE", "How reports leave: detached sender, synchronous HTTP, or files."),
    Setting("local_storage_path", "process", _opt_str, None, "TELLY_LOCAL_STORAGE_PATH",
            "Directory for reports when storage_type is file."),
    Setting("http_server", "process", _opt_str, None, "TELLY_HTTP_SERVER",
            "Collector base URL for every project, overriding the packages' endpoints."),
    Setting("http_timeout", "process", _positive, 3.0, "TELLY_HTTP_TIMEOUT",
            "Seconds allowed for one HTTP request."),
    Setting("show_me", "process", _bool, False, "TELLY_SHOW_ME",
            "Print to stderr exactly the bytes that are sent."),
    Setting("exit_signal_only", "process", _bool, False, "TELLY_EXIT_SIGNAL_ONLY",
            "Report only at normal exit; trap no signal."),
    Setting("timer", "process", _bool, False, "TELLY_TIMER",
            "Also report periodically from a daemon thread, for long-running services."),
    Setting("timer_interval_sec", "process", _positive, 3600.0, "TELLY_TIMER_INTERVAL_SEC",
            "Seconds between periodic reports."),
    Setting("salt_type", "process", _choice("random_uuid4", "machine_id"), "random_uuid4",
            "TELLY_SALT_TYPE", "Salt for Level II hashes: a random UUID4 kept in ~/.telly_salt, or the machine id."),
    Setting("spool_dir", "process", _opt_str, None, "TELLY_SPOOL_DIR",
            "Where reports wait for the sender. Default: the user cache directory."),
    Setting("accept_level2_plaintext", "process", _bool, False, "TELLY_LEVEL2_PLAINTEXT",
            "The user's (or administrator's) side of Level II in plain text; needs the author's "
            "level2_plaintext = true and a collector project created with --level2-plaintext."),
    # TELLY_DEBUG is no setting: ``_debug`` reads it from the environment, so that a broken
    # config file cannot turn off the tool that diagnoses it.
)

_BY_NAME = {s.name: s for s in SETTINGS}
_PROJECT_KEYS = frozenset(s.name for s in SETTINGS if s.scope == "project")
_PROCESS_KEYS = frozenset(s.name for s in SETTINGS if s.scope == "process")
# Project keys a user may set for every project at the top of the config file; the others
# (which project, which modules, where to) only make sense per project.
_USER_WIDE_KEYS = frozenset(("region", "engine", "mode", "level2", "send_from_ci"))
# Project keys only the package's own table may set: who the project is, what it covers, and the
# author's agreement to plaintext Level II (a user cannot agree on the author's behalf).
_AUTHOR_ONLY_KEYS = frozenset(("project_id", "packages", "level2_plaintext"))


def _defaults(scope):
    return {s.name: s.default for s in SETTINGS if s.scope == scope}


# Records (see _record) rather than dataclasses: this module is imported on the first watched
# import, where the dataclasses module (with inspect and re) would cost more than all of the rest.
# Their fields come from SETTINGS, so a setting is declared in one place only.
if TYPE_CHECKING:  # a type checker cannot read fields computed from SETTINGS: Any to it
    _ProjectFields: Any
    _ProcessFields: Any
else:
    _ProjectFields = record("ProjectSettings",
                            [s.name for s in SETTINGS if s.scope == "project"] + ["source", "distribution"],
                            defaults=(None,))
    _ProcessFields = record("ProcessSettings", [s.name for s in SETTINGS if s.scope == "process"])


class ProjectSettings(_ProjectFields):
    """Settings of one watched project, after layering; ``source`` says where the table came from."""

    __slots__ = ()

    def collector_url(self, process):
        """The collector base URL: TELLY_HTTP_SERVER, else `endpoint`, else the region's endpoint."""
        if process.http_server:
            return process.http_server
        if self.endpoint:
            return self.endpoint
        return dict(self.endpoints).get(self.region)


class ProcessSettings(_ProcessFields):
    """How this user's process reports: never influenced by a package's own table."""

    __slots__ = ()


def parse_table(table, origin, allowed=_PROJECT_KEYS):
    """Validate one table (package or user config) and return only the keys it sets, parsed.

    Raises ConfigError naming the file and key, so ``--dry-run`` can show authors what to fix.
    """
    if not isinstance(table, Mapping):
        raise ConfigError(f"{origin}: expected a table, got {type(table).__name__}")
    parsed = {}
    for key, value in table.items():
        if key not in allowed:
            if key in _PROCESS_KEYS:
                hint = " (only the user's config file or environment may set it)"
            elif key in _AUTHOR_ONLY_KEYS:
                hint = " (only the package's own table may set it)"
            elif key in _PROJECT_KEYS:
                hint = " (set it in a [project.\"<project_id>\"] table)"
            else:
                hint = ""
            from ._schema import schema_path

            raise ConfigError(f"{origin}: unknown key {key!r}{hint}; see {schema_path()}")
        parsed[key] = _BY_NAME[key].parse(value, f"{origin}: {key}")
    return parsed


def _from_env(scope, environ):
    found = {}
    for s in SETTINGS:
        if s.scope == scope and s.env and environ.get(s.env) not in (None, ""):
            found[s.name] = s.parse(environ[s.env], f"environment variable {s.env}")
    return found


def read_user_config(environ=None):
    """The user's config file as a dict ({} when absent); ConfigError when it is malformed."""
    path = user_config_path(environ)
    if path is None or not os.path.isfile(path):
        return {}
    from ._toml import load_toml

    return load_toml(path)


def process_settings(environ=None, user_config=None):
    """Layer defaults, the user's config file and the environment into ProcessSettings."""
    environ = os.environ if environ is None else environ
    user_config = read_user_config(environ) if user_config is None else user_config
    values = _defaults("process")
    top = {k: v for k, v in user_config.items() if k != "project"}
    for key, value in parse_table(top, "user config", _PROCESS_KEYS | _USER_WIDE_KEYS).items():
        if key in _PROCESS_KEYS:
            values[key] = value
    values.update(_from_env("process", environ))
    return ProcessSettings(**values)


def project_settings(package_table, source, *, distribution=None, default_packages=(),
                     environ=None, user_config=None):
    """Layer defaults, the package's table, the user's config and the environment for one project."""
    environ = os.environ if environ is None else environ
    user_config = read_user_config(environ) if user_config is None else user_config
    values = _defaults("project")
    values.update(parse_table(package_table, source))
    top = {k: v for k, v in user_config.items() if k in _USER_WIDE_KEYS}
    values.update(parse_table(top, "user config"))
    per_project = user_config.get("project", {})
    if values.get("project_id") and isinstance(per_project, Mapping):
        override = per_project.get(values["project_id"])
        if override is not None:
            where = f"user config [project.{values['project_id']!r}]"
            values.update(parse_table(override, where, _PROJECT_KEYS - _AUTHOR_ONLY_KEYS))
    values.update(_from_env("project", environ))
    if not values.get("project_id"):
        raise ConfigError(f"{source}: project_id is missing; add project_id = \"...\" to the table")
    if not values["packages"]:
        values["packages"] = tuple(default_packages)
    if not values["packages"]:
        raise ConfigError(f"{source}: no module to instrument; add packages = [\"yourmodule\"]")
    return ProjectSettings(source=source, distribution=distribution, **values)

