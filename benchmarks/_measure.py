"""Timing child processes and interleaving variants, so drift on a shared machine hits all alike."""

import ctypes
import os
import re
import resource
import shutil
import statistics
import subprocess
import tempfile
import time


class Child:
    """What one child process did: wall time, CPU time (user + system), exit status and stdout."""

    __slots__ = ("seconds", "cpu", "status", "stdout")

    def __init__(self, seconds, status, stdout, cpu=None):
        self.seconds, self.status, self.stdout, self.cpu = seconds, status, stdout, cpu


def spawn(argv, env):
    """Run ARGV to completion and time it from spawn to reap.

    posix_spawn rather than subprocess keeps the parent's own overhead small and equal between
    variants. Stdout goes to a file so no pipe can block; stderr is discarded.
    """
    with tempfile.TemporaryFile() as out:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            actions = [(os.POSIX_SPAWN_DUP2, out.fileno(), 1), (os.POSIX_SPAWN_DUP2, devnull, 2)]
            start = time.perf_counter()
            pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
            # wait4: the child's own CPU time too, which a loaded machine inflates far less than
            # wall time (time spent waiting for a core is not in it).
            _, status, usage = os.wait4(pid, 0)
            seconds = time.perf_counter() - start
        finally:
            os.close(devnull)
        out.seek(0)
        stdout = out.read().decode("utf-8", "replace")
    return Child(seconds, os.waitstatus_to_exitcode(status), stdout, usage.ru_utime + usage.ru_stime)


_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper():
    """Make this process the subreaper of its descendants (Linux): a detached process that a child
    leaves behind is re-parented here, so its CPU ends up in :func:`children_cpu` once reaped.
    Call it in a process of its own, never in the suite's."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def reap_all():
    """Wait for every descendant re-parented to this subreaper (the senders the hosts left)."""
    while True:
        try:
            os.wait4(-1, 0)
        except ChildProcessError:
            return


def children_cpu():
    """CPU seconds (user + system) of every child reaped so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_hosts(argv, env, runs, stale_stamp=None):
    """Run ARGV RUNS times, one after the other, stdout discarded; ``(the hosts' own CPU seconds,
    from wait4, wall seconds of all runs)``. ``stale_stamp``: ``(path, seconds)``, a sender's start
    stamp made older than ``seconds`` before each run, so that every exit starts a sender."""
    hosts = 0.0
    start = time.perf_counter()
    for _ in range(runs):
        if stale_stamp is not None and os.path.exists(stale_stamp[0]):
            then = time.time() - stale_stamp[1] - 1
            os.utime(stale_stamp[0], (then, then))
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            pid = os.posix_spawn(argv[0], argv, env, file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1)])
        finally:
            os.close(devnull)
        _, status, usage = os.wait4(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{argv} exited with {status}")
        hosts += usage.ru_utime + usage.ru_stime
    return hosts, time.perf_counter() - start


def interleave(variants, rounds, warmup=1):
    """Call each variant once per round, in turn (A B A B ...), after WARMUP untimed rounds.

    VARIANTS maps a label to a zero-argument callable returning one sample (any value);
    returns {label: [samples...]}.
    """
    for _ in range(warmup):
        for fn in variants.values():
            fn()
    samples = {label: [] for label in variants}
    for _ in range(rounds):
        for label, fn in variants.items():
            samples[label].append(fn())
    return samples


def median(values):
    return statistics.median(values)


def spread(values):
    """The interquartile range relative to the median, as a rough noise figure for the notes."""
    if len(values) < 4:
        return 0.0
    q = statistics.quantiles(values, n=4)
    mid = statistics.median(values)
    return (q[2] - q[0]) / mid if mid else 0.0


def checked(child, what):
    """CHILD, or an error naming WHAT when it failed: a crashed child must not be timed."""
    if child.status != 0:
        raise RuntimeError(f"{what} exited with {child.status}; stdout: {child.stdout[-500:]!r}")
    return child


def instructions(argv, env):
    """Instructions the process ARGV executes (valgrind's callgrind; children are not traced), or
    None without valgrind.

    Unlike time, the count hardly moves with the machine's load, so a ratio of counts can be
    trusted where timings cannot. It leaves out what the kernel does (file system calls), so it
    complements the CPU-time rows rather than replacing them. Run the same variant twice first:
    the caches a first run fills would otherwise be counted.
    """
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    env = dict(env, PYTHONHASHSEED="0")  # string hashing decides dict layouts: same count every run
    proc = subprocess.run([valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if proc.returncode != 0 or found is None:
        raise RuntimeError(f"callgrind of {argv!r} failed ({proc.returncode}): {proc.stderr[-500:]!r}")
    return int(found.group(1))
