"""The real collector application, served by uvicorn, whose clock is read from a file.

``python benchmarks/_clocked_collector.py DB_URL CLOCK_FILE [--min-group N]`` prints
``listening on http://127.0.0.1:PORT`` like ``collector serve``; CLOCK_FILE holds an ISO UTC
datetime that the caller rewrites to replay past days (ingestion re-keys and files each report
under the day the clock says, and the stats API reads "today" from it too). Everything else is the
code `collector serve` runs: ingest, window, store, writer, publish and the dashboard views.
Used by the accuracy benchmark and by demo/run to lay down a history of simulated days, through
``ClockedCollector`` (standard library only, so the demo can import it from any Python).
"""

import argparse
import datetime
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ClockedCollector:
    """This script run by ``python`` (one with telly_autoinst[collector]) on ``db_url``, and its clock."""

    def __init__(self, python, db_url, workdir, env=None):
        self.clock = os.path.join(workdir, "clock")
        self.set(datetime.datetime.now(datetime.timezone.utc))
        self.proc = subprocess.Popen([python, os.path.abspath(__file__), db_url, self.clock], cwd=ROOT,
                                     env=dict(env or os.environ, HOME=str(workdir)), stdout=subprocess.PIPE,
                                     text=True)
        self.url = re.search(r"listening on (http://\S+)", self.proc.stdout.readline()).group(1)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def set(self, moment):
        """What the collector's clock says from now on (atomically: a reader never sees half a date)."""
        with open(self.clock + ".tmp", "w") as out:
            out.write(moment.isoformat())
        os.replace(self.clock + ".tmp", self.clock)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(20)


def main():
    # The client and the collector (a distribution of its own in collector/), from this checkout.
    sys.path[:0] = [ROOT, os.path.join(ROOT, "collector")]
    import uvicorn

    from telly_autoinst_collector.app import Config, build_app
    from telly_autoinst_collector.store import open_store

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db_url")
    parser.add_argument("clock_file")
    parser.add_argument("--min-group", type=int, default=1)
    args = parser.parse_args()

    def now():
        with open(args.clock_file) as clock:
            return datetime.datetime.fromisoformat(clock.read().strip())

    config = Config(min_group=args.min_group, rate=0.0, publish_interval=0.0)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    server = uvicorn.Server(uvicorn.Config(build_app(open_store(args.db_url), config, now=now), access_log=False,
                                           log_level="warning", limit_concurrency=4096, backlog=4096))
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
