"""Reads TOML files with tomllib or, before Python 3.11, tomli."""

import sys

from ._statefile import read_text
from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib as _toml
else:  # pragma: no cover - exercised on 3.9 and 3.10
    import tomli as _toml


# A settings file is a few hundred bytes; a pyproject.toml rarely more than tens of kilobytes.
_MAX_BYTES = 1 << 20


def load_toml(path, owner=None):
    """Parse a TOML file; a syntax or read error becomes a ConfigError that names the file.

    Read without blocking and up to a cap (see ``_statefile``): a FIFO or a device at the path
    is an error, never a hang. ``owner``: ``_statefile.USER`` for the user's own config, which
    must be this user's or root's file.
    """
    try:
        text = read_text(path, _MAX_BYTES, owner=owner)
        return _toml.loads(text)
    except _toml.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
