"""The settings the Python client applies, as the shared contract declares them, layered into frozen objects.

Each setting is declared once, as data, in ``config/contract.json`` (generated into
``_contract``); this module adds how the Python client parses each type. Sources, lowest to highest precedence:

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

from ._contract import FALSY, TRUTHY
from ._contract import SETTINGS as CONTRACT_SETTINGS
from ._env import user_config_path
from ._record import PROJECT_EXTRA, record, types_for
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


def _package_names(value, where):
    """force_packages: names the Python or the Node client can count; this client keeps its own kind.

    The user config is shared: ``@scope/pkg`` or ``my-pkg`` is an npm package the Node client
    counts, and no Python module, so it is skipped here rather than refused.
    """
    names = _names(value, where)
    for name in names:
        if not _python_name(name) and not _npm_name(name):
            raise ConfigError(f"{where}: {name!r} is neither an importable module name nor an npm package name")
    return tuple(name for name in names if _python_name(name))


def _python_name(name):
    return all(part.isidentifier() for part in name.split("."))


_NPM_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._~-")


def _npm_name(name):
    """``name`` or ``@scope/name``, each part starting with a letter or digit (case-insensitive, as Node checks)."""
    scope, slash, rest = name.lower().rpartition("/")
    parts = [scope[1:], rest] if slash else [rest]
    if slash and not scope.startswith("@"):
        return False
    return all(p and p[0] not in "._~-" and set(p) <= _NPM_CHARS for p in parts)


_SettingFields: "Any" = record("Setting", "name scope parse default env doc")


class Setting(_SettingFields):
    """One setting the Python client applies: its name (also its key in every table), its scope
    ("project" or "process"), how a raw value is parsed, its default, its environment variable,
    and its doc. The rows come from the shared contract (``_contract.SETTINGS``)."""

    __slots__ = ()


_PARSERS = {"bool": _bool, "project_id": _project_id, "module_names": _module_names, "patterns": _names,
            "optional_string": _opt_str, "endpoints": _endpoints, "seconds": _positive,
            "package_names": _package_names}

SETTINGS = tuple(
    Setting(name, scope, _choice(*choices) if choices else _PARSERS[kind], default, env, doc)
    for name, scope, kind, choices, default, env, clients, _wide, _author, doc in CONTRACT_SETTINGS
    if "python" in clients
)
# TELLY_DEBUG is no setting here: ``_debug`` reads it from the environment, so that a broken
# config file cannot turn off the tool that diagnoses it (the contract's ``debug`` is Node's).

_BY_NAME = {s.name: s for s in SETTINGS}
# Key sets over the whole contract: a key only the Node client applies is valid where Node
# accepts it, and skipped there (see parse_table), so the shared user config serves both.
_PROJECT_KEYS = frozenset(row[0] for row in CONTRACT_SETTINGS if row[1] == "project")
_PROCESS_KEYS = frozenset(row[0] for row in CONTRACT_SETTINGS if row[1] == "process")
# Project keys a user may set for every project at the top of the config file; the others
# (which project, which modules, where to) only make sense per project.
_USER_WIDE_KEYS = frozenset(row[0] for row in CONTRACT_SETTINGS if row[7])
# Project keys only the package's own table may set: who the project is, what it covers, and the
# author's agreement to plaintext Level II (a user cannot agree on the author's behalf).
_AUTHOR_ONLY_KEYS = frozenset(row[0] for row in CONTRACT_SETTINGS if row[8])


def _defaults(scope):
    return {s.name: s.default for s in SETTINGS if s.scope == scope}


# Records (see _record) rather than dataclasses: this module is imported on the first watched
# import, where the dataclasses module (with inspect and re) would cost more than all of the rest.
# Their fields come from SETTINGS, so a setting is declared in one place only; the types
# themselves are _record's (a warm run makes the same ones without this module).
if TYPE_CHECKING:  # a type checker cannot read fields computed from SETTINGS: Any to it
    ProjectSettings: Any
    ProcessSettings: Any
else:
    ProjectSettings, ProcessSettings = types_for(
        [s.name for s in SETTINGS if s.scope == "project"] + list(PROJECT_EXTRA),
        [s.name for s in SETTINGS if s.scope == "process"])


_PACKAGE_SCHEMA = "telly.schema.json"
_USER_SCHEMA = "user-config.schema.json"


def parse_table(table, origin, allowed=_PROJECT_KEYS, schema=_PACKAGE_SCHEMA):
    """Validate one table (package or user config) and return only the keys it sets, parsed.

    Raises ConfigError naming the file and key, and the schema that lists the valid keys
    (``schema``: the package table's or the user config's), so ``--dry-run`` and ``status`` can
    show what to fix. A key of the contract that only the Node client applies is skipped.
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

            raise ConfigError(f"{origin}: unknown key {key!r}{hint}; see {schema_path(schema)}")
        setting = _BY_NAME.get(key)
        if setting is not None:  # else a key only the Node client applies
            parsed[key] = setting.parse(value, f"{origin}: {key}")
    return parsed


def _from_env(scope, environ):
    found = {}
    for s in SETTINGS:
        if s.scope == scope and s.env and environ.get(s.env) not in (None, ""):
            found[s.name] = s.parse(environ[s.env], f"environment variable {s.env}")
    return found


def _user_origin(environ):
    """How messages name the user's config file: its path when there is one."""
    path = user_config_path(environ)
    return f"user config {path}" if path else "user config"


def read_user_config(environ=None):
    """The user's config file as a dict ({} when absent); ConfigError when it is malformed."""
    path = user_config_path(environ)
    if path is None or not os.path.isfile(path):
        return {}
    from ._statefile import USER
    from ._toml import load_toml

    # A symlink (a dotfile manager's) is fine; a file another user owns is an error, not a config.
    return load_toml(path, owner=USER)


def process_settings(environ=None, user_config=None):
    """Layer defaults, the user's config file and the environment into ProcessSettings."""
    environ = os.environ if environ is None else environ
    user_config = read_user_config(environ) if user_config is None else user_config
    values = _defaults("process")
    top = {k: v for k, v in user_config.items() if k != "project"}
    for key, value in parse_table(top, _user_origin(environ), _PROCESS_KEYS | _USER_WIDE_KEYS, _USER_SCHEMA).items():
        if key in _PROCESS_KEYS:
            values[key] = value
    values.update(_from_env("process", environ))
    return ProcessSettings(**values)


def project_settings(package_table, source, *, distribution=None, default_packages=(),
                     environ=None, user_config=None, editable=False):
    """Layer defaults, the package's table, the user's config and the environment for one project."""
    environ = os.environ if environ is None else environ
    user_config = read_user_config(environ) if user_config is None else user_config
    values = _defaults("project")
    values.update(parse_table(package_table, source))
    top = {k: v for k, v in user_config.items() if k in _USER_WIDE_KEYS}
    origin = _user_origin(environ)
    values.update(parse_table(top, origin, _PROJECT_KEYS, _USER_SCHEMA))
    per_project = user_config.get("project", {})
    if values.get("project_id") and isinstance(per_project, Mapping):
        override = per_project.get(values["project_id"])
        if override is not None:
            where = f"{origin} [project.{values['project_id']!r}]"
            values.update(parse_table(override, where, _PROJECT_KEYS - _AUTHOR_ONLY_KEYS, _USER_SCHEMA))
    values.update(_from_env("project", environ))
    if not values.get("project_id"):
        raise ConfigError(f"{source}: project_id is missing; add project_id = \"...\" to the table")
    if not values["packages"]:
        values["packages"] = tuple(default_packages)
    if not values["packages"]:
        raise ConfigError(f"{source}: no module to instrument; add packages = [\"yourmodule\"]")
    return ProjectSettings(source=source, distribution=distribution, editable=editable, **values)


def project_table_errors(user_config, environ=None):
    """{project id: error} for the user config's ``[project."<project_id>"]`` tables that are malformed.

    Such a project is not counted (discovery skips it) while the others are: `status` lists it,
    with the file, the key and the schema to check.
    """
    per_project = user_config.get("project", {})
    if not isinstance(per_project, Mapping):
        return {}
    errors = {}
    for project_id, table in per_project.items():
        where = f"{_user_origin(environ)} [project.{project_id!r}]"
        try:
            parse_table(table, where, _PROJECT_KEYS - _AUTHOR_ONLY_KEYS, _USER_SCHEMA)
        except ConfigError as exc:
            errors[str(project_id)] = str(exc)
    return errors
