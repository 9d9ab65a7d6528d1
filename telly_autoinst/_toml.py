"""Reads TOML files with tomllib or, before Python 3.11, tomli."""

import sys

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib as _toml
else:  # pragma: no cover - exercised on 3.9 and 3.10
    import tomli as _toml


def load_toml(path):
    """Parse a TOML file; a syntax or read error becomes a ConfigError that names the file."""
    try:
        with open(path, "rb") as handle:
            return _toml.load(handle)
    except _toml.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
