"""Serving in several processes: forked workers sharing one listening socket, kept alive and stopped together.

Each worker is a whole collector (its own event loop, database connections and group-commit
writer); the kernel hands each new connection to one of them. The parent only supervises: it
restarts a worker that dies and passes SIGTERM/SIGINT on to all of them.
"""

import os
import signal
import sys
import time
import traceback

# A worker that dies sooner than this after its start is restarted only after this long, so a
# worker that cannot start does not make the parent spin.
_RESTART_DELAY = 1.0


def _spawn(target, number):
    pid = os.fork()
    if pid:
        return pid
    # The child: default signal dispositions until the server installs its own.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    code = 1
    try:
        target(number)
        code = 0
    except BaseException:  # the parent decides what happens next; say why this worker stopped
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def run_workers(count, target):
    """Run ``target(worker_number)`` in ``count`` forked processes until SIGTERM or SIGINT.

    Call it before opening any database connection or event loop: a forked child must not
    share its parent's sockets to the database.
    """
    children = {}  # pid -> (worker number, start time)
    stopping = False

    def stop(_signum, _frame):
        nonlocal stopping
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def start(number):
        pid = _spawn(target, number)
        children[pid] = (number, time.monotonic())
        if stopping:  # the signal came while this one was being forked
            os.kill(pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for number in range(count):
            start(number)
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            number, started = children.pop(pid, (None, 0.0))
            if stopping or number is None:
                continue
            print(f"telly_autoinst collector: worker {number} (pid {pid}) exited with status "
                  f"{os.waitstatus_to_exitcode(status)}; starting it again", file=sys.stderr, flush=True)
            if time.monotonic() - started < _RESTART_DELAY:
                time.sleep(_RESTART_DELAY)
            if not stopping:
                start(number)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
