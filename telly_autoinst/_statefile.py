"""Opens the client's own files and directories so that nobody else's can stand in for them, and no read blocks.

The client keeps an index, a code cache, a spool, a salt and consent lists under the user's home
and cache directories, and runs what it reads there (cached code) or sends it (queued counts).
So, like pip with its cache, it uses a directory only when this user owns it and nobody else can
write it (:func:`private_dir`, :func:`dir_refusal`): one ``stat`` per directory and process. It
creates every directory 0700 and every file 0600 whatever the umask, and tightens its own older,
too open ones in place. Its files are opened without following symlinks (``O_NOFOLLOW``) and
must belong to this user; temporary files get unpredictable names and ``O_EXCL``. The files a
user keeps (config, consent lists, salt) may be symlinks, as dotfile managers make them, but
must resolve to a regular file of this user or root.

Every read is non-blocking and capped: a FIFO at ``~/.telly_salt`` or at the index path would
make a plain ``open()`` wait for a writer forever, at every interpreter start; ``/dev/zero``
behind a symlink would be read until memory runs out. So a file must be a regular file (anything
else counts as missing) and is never read beyond a cap.

Standard library only, and nothing beyond ``os`` and ``stat`` on the start-up path: bootstrap
reads the index through this module.
"""

import os
import stat

from ._env import note

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | _CLOEXEC
# Who may own what: SELF for the files the client writes for itself (cache, index, spool), USER
# for those the user keeps (config, consent lists, salt: root's too, e.g. an administrator's
# config), None for files of the system or of packages (machine id, pyproject.toml).
SELF, USER = "self", "user"

_dirs: "dict[str, str | None]" = {}  # directory -> why it is refused, or None: checked once per process


class NotRegular(OSError):
    """The path exists but is no regular file (FIFO, device, directory, socket), or is larger than its cap."""


class Refused(OSError):
    """A directory or file of the client's that another user owns or can write: not used, nor followed."""


def _euid():
    return os.geteuid() if hasattr(os, "geteuid") else None  # no owners to compare on Windows


def _file_refusal(path, info, owner):
    """Why a file opened for ``owner`` (SELF, USER) must not be used, or None; tightens one of ours."""
    euid = _euid()
    if euid is None or owner is None:
        return None
    if info.st_uid != euid and not (owner == USER and info.st_uid == 0):
        return f"{path} belongs to uid {info.st_uid}, not to this user (uid {euid})"
    return None


def read_bytes(path, cap, owner=None, tighten=False):
    """The whole content of regular file ``path`` if it holds at most ``cap`` bytes.

    Raises FileNotFoundError when it is missing, NotRegular when it is not a regular file or
    is larger than ``cap``, Refused when ``owner`` (SELF or USER) does not own it (SELF also
    refuses a symlink), and OSError for the rest, so callers keep their own "missing" handling
    and can tell a hostile file apart in TELLY_DEBUG output. ``tighten``: a file of this user's
    that group or others may read is made 0600 (the client's own files, from older versions).
    """
    fd = os.open(path, _FLAGS | (_NOFOLLOW if owner == SELF else 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegular(f"{path} is not a regular file")
        refusal = _file_refusal(path, info, owner)
        if refusal is not None:
            raise Refused(refusal)
        if (tighten or owner == SELF) and info.st_mode & 0o077 and info.st_uid == _euid():
            try:
                os.fchmod(fd, stat.S_IMODE(info.st_mode) & 0o700)
            except OSError:
                note(f"{path} could not be made private")
        if info.st_size > cap:
            raise NotRegular(f"{path} is larger than {cap} bytes")
        chunks = []
        size = 0
        while size <= cap:  # the size may grow after fstat: stop one byte past the cap
            chunk = os.read(fd, min(cap + 1 - size, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > cap:
            raise NotRegular(f"{path} is larger than {cap} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_text(path, cap, errors="strict", owner=None, tighten=False):
    """:func:`read_bytes` decoded as UTF-8 (UnicodeDecodeError is a ValueError)."""
    return read_bytes(path, cap, owner, tighten).decode("utf-8", errors)


def dir_refusal(path):
    """Why the directory ``path`` must not be used, or None (also None when it does not exist yet).

    Usable: a directory owned by this user that neither group nor others can write. One of ours
    that is too open (0755 from an older version) is tightened to 0700 here, not given up.
    Remembered for the process, so a directory costs one ``stat`` however often it is asked about.
    """
    if path in _dirs:
        return _dirs[path]
    return _check_dir(path)


def _check_dir(path):
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None  # not remembered: it may be created next
    except OSError as exc:
        return f"{path}: cannot be examined ({exc.strerror or exc})"
    reason = _dir_refusal(path, info)
    _dirs[path] = reason
    if reason is not None:
        note(f"not using {reason}")
    return reason


def use_refusal(path):
    """:func:`dir_refusal`, and for a directory not made yet, why it could not be made (None if it
    can): an ``XDG_CACHE_HOME`` another user owns is refused before anything is created in it."""
    if os.path.lexists(path):
        return dir_refusal(path)
    reason = _parent_refusal(_missing(path)[1])
    if reason is not None and _dirs.get(path) != reason:
        _dirs[path] = reason
        note(f"not using {reason}")
    return reason


def _missing(path):
    """``(missing directories, deepest first; the nearest existing ancestor)`` of ``path``."""
    missing = []
    parent = path
    while parent and not os.path.isdir(parent):
        missing.append(parent)
        up = os.path.dirname(parent)
        if up == parent:
            break
        parent = up
    return missing, parent


def _parent_refusal(path):
    """Why no directory of ours may be created in ``path``, or None. It must be this user's or
    root's, and others may write it only with the sticky bit (``/tmp``): in another user's
    directory (a cache root they own, an ``XDG_CACHE_HOME`` they chose) they could swap ours."""
    euid = _euid()
    if euid is None:
        return None
    try:
        info = os.stat(path)
    except OSError as exc:
        return f"{path}: cannot be examined ({exc.strerror or exc})"
    if info.st_uid not in (euid, 0):
        return f"{path}: belongs to uid {info.st_uid}, not to this user (uid {euid}): nothing is created in it"
    if stat.S_IMODE(info.st_mode) & 0o022 and not info.st_mode & stat.S_ISVTX:
        return f"{path}: group or others can write it: nothing is created in it"
    return None


def _dir_refusal(path, info):
    euid = _euid()
    if not stat.S_ISDIR(info.st_mode):
        return f"{path}: not a directory"
    if euid is None:
        return None
    if info.st_uid != euid:
        return f"{path}: belongs to uid {info.st_uid}, not to this user (uid {euid})"
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        try:
            os.chmod(path, mode & 0o700)
        except OSError as exc:
            if mode & 0o022:
                return f"{path}: group or others can write it, and it cannot be made private ({exc.strerror})"
    return None


def private_dir(path):
    """Make sure ``path`` is a directory only this user can write, creating it (and its missing
    parents) 0700; raises Refused (an OSError) when it is someone else's or open to others."""
    reason = _check_dir(path)  # stat'ed again: a writer must not trust a directory removed since
    if reason is not None:
        raise Refused(reason)
    if path in _dirs:
        return
    missing, parent = _missing(path)
    if missing:
        reason = _parent_refusal(parent)
        if reason is not None:
            raise Refused(reason)
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            continue
        if stat.S_IMODE(os.stat(directory).st_mode) != 0o700:  # a umask that took the owner's bits too
            os.chmod(directory, 0o700)
    reason = _check_dir(path)
    if reason is not None:
        raise Refused(reason)


def tmp_name(path):
    """A temporary name beside ``path`` that nobody can guess (and so prepare a trap at)."""
    return f"{path}.{os.urandom(8).hex()}.tmp"


def write_atomic(path, data, durable=False):
    """Replace ``path`` with ``data`` (bytes), mode 0600: written to a fresh temporary file
    (``O_EXCL | O_NOFOLLOW``, unpredictable name), then renamed over it, so readers see the old
    file or the new one, and a symlink at ``path`` is replaced, never followed. ``durable``:
    synced before the rename, for what a crash must not take back (a consent list)."""
    tmp = tmp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def append(path, text, limit):
    """Append ``text`` to the client's log file ``path`` (0600, no symlink followed, never a FIFO
    wait); a file past ``limit`` bytes starts over, since the log is a diagnostic, not an archive."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | _NOFOLLOW | _CLOEXEC | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags, 0o600)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegular(f"{path} is not a regular file")
        refusal = _file_refusal(path, info, SELF)
        if refusal is not None:
            raise Refused(refusal)
        if stat.S_IMODE(info.st_mode) != 0o600:
            os.fchmod(fd, 0o600)
        if info.st_size > limit:
            os.ftruncate(fd, 0)
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def open_lock(path):
    """A descriptor for a lock file, created 0600; never blocks even if ``path`` is a FIFO, never follows a symlink."""
    return os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NONBLOCK", 0) | _CLOEXEC | _NOFOLLOW, 0o600)


def try_lock(path):
    """An exclusive, non-blocking lock on the lock file ``path`` (see :func:`open_lock`): its
    descriptor, or None when another process holds it."""
    fd = open_lock(path)
    try:
        import fcntl
    except ImportError:  # Windows: no flock; the spool's atomic renames keep concurrent senders safe.
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd
