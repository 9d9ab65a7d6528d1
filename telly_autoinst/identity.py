"""Level II identity: the user's salt and per-project HMAC-SHA-256 hashes of user, home, machine and host.

Why HMAC with a per-project key: the original hashed ``value + salt`` with one salt shared by
every project, so two authors could join their data on the same hash. Here the key is
``HMAC(salt, "telly-autoinst/level2/" + project_id)``, so each project sees unrelated values
for the same user, and nobody without the salt can test guesses (the salt never leaves the
machine).
"""

import functools
import getpass
import os

from . import _env
from ._contract import FILE_SALT
from ._env import home_dir
from ._statefile import USER, read_text, tmp_name

_KEY_LABEL = b"telly-autoinst/level2/"
_MACHINE_ID_FILES = ("/etc/machine-id", "/var/lib/dbus/machine-id")


def _machine_id():
    """The OS machine id (systemd/dbus), else the MAC address from uuid.getnode() as a last resort."""
    for path in _MACHINE_ID_FILES:
        try:
            value = read_text(path, 256, errors="replace").strip()
        except OSError:
            continue
        if value:
            return value
    import uuid  # only here: importing it costs a millisecond on the exit path

    return str(uuid.getnode())


def salt_path():
    """``~/.telly_salt``, or None without a home."""
    home = home_dir()
    return None if home is None else os.path.join(home, FILE_SALT)


def _read_salt(path):
    # Never blocks (a FIFO there is "not a regular file"), never reads past 256 bytes, and only
    # this user's (or root's) file: a salt someone else chose lets them test guesses of the hashes.
    value = read_text(path, 256, owner=USER, tighten=True).strip()
    if not value:
        raise OSError("empty salt file")
    return value


def _create_salt(path):
    """Write a fresh UUID4 salt with mode 0600; if another process won the race, use its salt."""
    import uuid

    tmp = tmp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(fd, 0o600)  # whatever the umask
            handle.write(str(uuid.uuid4()))
            handle.flush()
            os.fsync(handle.fileno())
        # link() fails if the salt exists, so two first runs never end with different salts
        # (replace() would let the second overwrite a salt the first already used).
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        except OSError:
            # File systems without hard links: replace only when still missing.
            if not os.path.exists(path):
                os.replace(tmp, path)
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    return _read_salt(path)


@functools.lru_cache(maxsize=4)
def salt(salt_type="random_uuid4"):
    """(salt, source): the UUID4 in ~/.telly_salt, or the machine id when asked or when the file is unusable."""
    if salt_type == "random_uuid4":
        path = salt_path()
        if path is not None:
            try:
                return _read_salt(path), "random_uuid4"
            except FileNotFoundError:
                try:
                    return _create_salt(path), "random_uuid4"
                except (OSError, UnicodeDecodeError):
                    _env.swallowed(f"creating {path}; the machine id is the salt instead")
            except (OSError, UnicodeDecodeError):
                _env.swallowed(f"reading {path}; the machine id is the salt instead")
    return _machine_id(), "machine_id"


def _sha256():
    # The interpreter's built-in SHA-256, because importing hashlib (which hmac does) initialises
    # OpenSSL, ~3 ms on the exit path of a program that never needed it.
    try:
        from _sha2 import sha256  # 3.12+
    except ImportError:
        try:
            from _sha256 import sha256  # 3.9 - 3.11
        except ImportError:
            from hashlib import sha256
    return sha256


def _hmac_sha256(key, message):
    """RFC 2104 HMAC with SHA-256 (equal to hmac.new(key, message, "sha256"); tested against it)."""
    sha256 = _sha256()
    block = 64
    if len(key) > block:
        key = sha256(key).digest()
    key = key.ljust(block, b"\0")
    inner = sha256(bytes(b ^ 0x36 for b in key) + message).digest()
    return sha256(bytes(b ^ 0x5C for b in key) + inner)


def _project_key(salt_value, project_id):
    return _hmac_sha256(salt_value.encode("utf-8"), _KEY_LABEL + project_id.encode("utf-8")).digest()


def _hostname():
    # os.uname().nodename is what socket.gethostname() returns on POSIX, without importing socket.
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket

    return socket.gethostname()


def _safe(getter):
    try:
        value = getter()
    except Exception:  # getpass raises KeyError/OSError without a passwd entry, e.g. in containers
        return None
    return value or None


def _values():
    return {
        "user": _safe(getpass.getuser),
        "home": _safe(home_dir),
        "machine": _safe(_machine_id),
        "host": _safe(_hostname),
    }


def level2_hashes(project_id, salt_type="random_uuid4"):
    """Hex HMAC-SHA-256 of user name, home path, machine id and host name under this project's key."""
    key = _project_key(salt(salt_type)[0], project_id)
    return {
        name: (_hmac_sha256(key, value.encode("utf-8", "surrogatepass")).hexdigest()
               if value is not None else None)
        for name, value in _values().items()
    }


# The report schema's limits (config/report.schema.json, level2_plaintext).
_PLAINTEXT_LIMITS = {"user": 256, "home": 1024, "machine": 256, "host": 256}


def level2_plaintext():
    """The same four values in plain text, cut to the schema's limits.

    Only for the corporate mode that the author, the user and the collector project all agreed
    to (report.assemble checks the two client-side agreements; the collector checks its own).
    """
    return {
        name: (value.encode("utf-8", "replace").decode("utf-8")[:_PLAINTEXT_LIMITS[name]]
               if value is not None else None)
        for name, value in _values().items()
    }
