"""How the host starts the detached sender: in a new session, with no inherited descriptor and a trusted import path.

Loaded only by an exit that starts a sender (``pipeline.spawn``: at most one a minute), not by
every watched run's activation.
"""

import os
import sys

from . import _env


def start(directory, timeout):
    """Start the sender for the spool ``directory`` (requests clipped to ``timeout``); returns a pid, or a Popen."""
    env = dict(os.environ)
    for name in ("PYTHONPATH", "PYTHONSTARTUP"):
        env.pop(name, None)  # -I ignores them already; nothing the sender starts inherits them either
    return _start(sender_argv(directory, repr(float(timeout))), env)


def _inheritable_fds():
    """Descriptors above stdio that a child would inherit (the host may have marked some so)."""
    for listing in ("/proc/self/fd", "/dev/fd"):
        try:
            names = os.listdir(listing)
        except OSError:
            continue
        fds = []
        for name in names:
            try:
                fd = int(name)
                if fd > 2 and os.get_inheritable(fd):
                    fds.append(fd)
            except (ValueError, OSError):  # the listing's own descriptor, closed by now
                continue
        return fds
    return None


def _start(argv, env):
    """Start a detached child: new session, stdio on /dev/null, no inherited descriptor.

    ``os.posix_spawn`` where it can: ``subprocess`` imports ``locale`` and ``re`` (several ms
    on the host's exit path) and its Popen warns at exit (ResourceWarning) for a child that
    outlives it, which a detached sender does on purpose. Returns a pid, or a Popen.
    """
    fds = _inheritable_fds()
    if hasattr(os, "posix_spawn") and fds is not None:
        actions: list[tuple] = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, flags, 0)
                                for fd, flags in ((0, os.O_RDONLY), (1, os.O_WRONLY), (2, os.O_WRONLY))]
        actions += [(os.POSIX_SPAWN_CLOSE, fd) for fd in fds]
        try:
            return os.posix_spawn(argv[0], argv, env, file_actions=actions, setsid=True)
        except (OSError, NotImplementedError, TypeError):  # e.g. no POSIX_SPAWN_SETSID in this libc
            _env.swallowed("starting the sender with posix_spawn")
    import subprocess

    class _DetachedPopen(subprocess.Popen):
        def __del__(self):  # the child outlives this object on purpose: no ResourceWarning
            pass

    return _DetachedPopen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          close_fds=True, start_new_session=True, cwd="/", env=env)


def _forwarded_path():
    """The host's import path as far as the sender may trust it: absolute directories only, without
    the host's working directory, its script's directory or ``PYTHONPATH``.

    The sender needs the site directories (the distributions whose versions it reports), not the
    places a host program happens to run from: a ``random.py`` or a ``telly_autoinst/`` there
    must never run in the background as this user.
    """
    untrusted = {os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p}
    try:
        untrusted.add(os.getcwd())
    except OSError:  # the host's directory was removed under it
        pass
    if sys.path and not (sys.flags.isolated or getattr(sys.flags, "safe_path", False)):
        untrusted.add(os.path.abspath(sys.path[0] or os.curdir))  # the script's directory, or '' for -c/-m
    return [p for p in sys.path if p and os.path.isabs(p) and p not in untrusted and os.path.isdir(p)]


# The code ``python -I -S -c`` runs: -I ignores every PYTHON* variable and puts neither the working
# directory nor a script's on sys.path, -S skips site (no .pth, no hook in the sender itself). The
# working directory is set before anything is imported, and the package's directories are
# appended after the standard library's, so nothing found there can shadow a standard module.
_LAUNCH = ("import os,sys;os.chdir('/');sys.path+={path!r};"
           "from telly_autoinst.sender import main;sys.exit(main(detached=True))")


def sender_argv(directory, *args):
    """The detached sender's command line for the spool ``directory`` (``args``: timeout, run deadline)."""
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = list(dict.fromkeys([package_root] + _forwarded_path()))
    return [sys.executable, "-I", "-S", "-c", _LAUNCH.format(path=path), os.path.abspath(directory), *args]
