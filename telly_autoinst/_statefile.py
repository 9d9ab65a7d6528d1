"""Reads the client's own small files (index, salt, consent lists, spool entries, TOML) so that it never blocks.

A FIFO at ``~/.telly_salt`` or at the cached index path would make a plain ``open()`` wait for
a writer forever, at every interpreter start; ``/dev/zero`` behind a symlink would be read
until memory runs out. So every such file is opened with ``O_NONBLOCK``, must be a regular file
(anything else counts as missing), and is never read beyond a cap. Standard library only:
bootstrap reads the index through this module.
"""

import os
import stat

_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)


class NotRegular(OSError):
    """The path exists but is no regular file (FIFO, device, directory, socket), or is larger than its cap."""


def read_bytes(path, cap):
    """The whole content of regular file ``path`` if it holds at most ``cap`` bytes.

    Raises FileNotFoundError when it is missing, NotRegular when it is not a regular file or
    is larger than ``cap``, and OSError for the rest, so callers keep their own "missing"
    handling and can tell a hostile file apart in TELLY_DEBUG output.
    """
    fd = os.open(path, _FLAGS)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegular(f"{path} is not a regular file")
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


def read_text(path, cap, errors="strict"):
    """:func:`read_bytes` decoded as UTF-8 (UnicodeDecodeError is a ValueError)."""
    return read_bytes(path, cap).decode("utf-8", errors)


def open_lock(path):
    """A descriptor for a lock file, created 0600; never blocks even if ``path`` is a FIFO."""
    return os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0), 0o600)
