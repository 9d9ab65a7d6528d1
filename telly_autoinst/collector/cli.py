"""``python -m telly_autoinst collector ...``: tables of commands and options that call the collector.

``main`` is the only place where exceptions become exit codes: 0 success, 1 a publish was
refused by the privacy budget, 2 a usage or configuration error.
"""

import argparse
import json
import os
import socket
import sys

from ..errors import TellyError
from .registry import REGIONS

__all__ = ["main"]

_DB_HELP = ("database URL (sqlite:///PATH or postgresql://...); "
            "default $TELLY_COLLECTOR_DB, else a SQLite file per region")
_REGION = dict(choices=REGIONS, default=os.environ.get("TELLY_COLLECTOR_REGION", "us"),
               help="region label (default $TELLY_COLLECTOR_REGION or us)")

# command path, help, [(flags, argparse keywords)], handler name in this module.
_COMMANDS = (
    (("serve",), "run the collector", [
        (("--host",), dict(default="127.0.0.1", help="address to listen on (default 127.0.0.1)")),
        (("--port",), dict(type=int, default=8470, help="0 picks a free port (printed on start)")),
        (("--db",), dict(help=_DB_HELP)),
        (("--region",), _REGION),
        (("--min-group",), dict(type=int, default=10, help="smallest group shown (default 10; 1 for development)")),
        (("--window-days",), dict(type=int, default=30, help="days raw hashed rows are kept (default 30)")),
        (("--rate-limit",), dict(type=float, default=1000.0, help="reports/s per project, 0 = off (default 1000)")),
        (("--publish-interval",), dict(type=float, default=3600.0,
                                       help="seconds between scheduled publish/expire runs, 0 = never")),
    ], "_serve"),
    (("project", "create"), "register a project; prints its project_id and read_token", [
        (("name",), dict()),
        (("--region",), _REGION),
        (("--json",), dict(action="store_true", help="print {project_id, read_token} as JSON")),
        (("--db",), dict(help=_DB_HELP)),
        (("--project-id",), dict(help="register this id (e.g. an original Telly project UUID) instead of a new one")),
        (("--epsilon-per-day",),
         dict(type=float, default=1.0, help="privacy loss of one release of a day (default 1)")),
    ], "_project_create"),
    (("publish",), "release the completed days (and with --through-now the current one) with DP noise", [
        (("--project",), dict(help="only this project (default: every project of the region)")),
        (("--through-now",), dict(action="store_true", help="also release today's partial day (spends budget)")),
        (("--db",), dict(help=_DB_HELP)),
        (("--region",), _REGION),
    ], "_publish"),
)


def _url(args):
    from .store import default_url

    return args.db or os.environ.get("TELLY_COLLECTOR_DB") or default_url(args.region)


def _store(args):
    from .store import open_store

    return open_store(_url(args))


def _serve(args):
    import uvicorn

    from .app import Config, build_app

    if args.min_group < 1:
        raise TellyError("--min-group must be at least 1")
    if args.window_days < 1:
        raise TellyError("--window-days must be at least 1")
    if args.min_group == 1:
        print("telly_autoinst collector: --min-group 1 shows groups of a single user; use it only for development",
              file=sys.stderr)
    store = _store(args)
    config = Config(region=args.region, min_group=args.min_group, window_days=args.window_days,
                    rate=args.rate_limit, publish_interval=args.publish_interval)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    port = sock.getsockname()[1]
    # No access log and no proxy headers: client addresses are never logged or stored.
    # limit_concurrency: beyond this many open connections uvicorn answers 503 (overload). Each
    # connection holds at most 64 KiB of body unless it has one of the few large-body slots.
    server = uvicorn.Server(uvicorn.Config(build_app(store, config), access_log=False, proxy_headers=False,
                                           server_header=False, log_level="warning", limit_concurrency=4096,
                                           backlog=4096))
    print(f"telly_autoinst collector: listening on http://{args.host}:{port} region={args.region} "
          f"db={store.dialect} min_group={args.min_group} window_days={args.window_days}", flush=True)
    server.run(sockets=[sock])
    return 0


def _project_create(args):
    from .registry import create_project

    project_id, token = create_project(_store(args), args.name, args.region, project_id=args.project_id,
                                       epsilon_per_day=args.epsilon_per_day)
    if args.json:
        print(json.dumps({"project_id": project_id, "read_token": token, "region": args.region}))
    else:
        print(f"project_id: {project_id}\nread_token: {token}\nregion:     {args.region}\n"
              f"Clients send with TELLY_HTTP_SERVER=http://HOST:PORT and this project_id; keep the read token "
              f"secret (it is stored hashed and cannot be shown again).")
    return 0


def _publish(args):
    from . import jobs
    from .window import utc_now

    store = _store(args)
    ids = [args.project] if args.project else store.project_ids(args.region)
    refused = 0
    for project_id, day, epsilon in jobs.publish(store, ids, utc_now().date(), through_now=args.through_now):
        if epsilon is None:
            refused += 1
            print(f"{project_id} {day}: refused, the day's privacy budget is spent")
        else:
            print(f"{project_id} {day}: released, epsilon {epsilon:g}")
    return 1 if refused else 0


def _parser():
    parser = argparse.ArgumentParser(prog="python -m telly_autoinst collector",
                                     description="Run and manage a self-hosted telly_autoinst collector.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    groups = {}
    for path, help_text, options, handler in _COMMANDS:
        parent = commands
        if len(path) == 2:
            if path[0] not in groups:
                groups[path[0]] = commands.add_parser(path[0], help=f"{path[0]} commands").add_subparsers(
                    dest="subcommand", metavar="SUBCOMMAND", required=True)
            parent = groups[path[0]]
        command = parent.add_parser(path[-1], help=help_text)
        for flags, keywords in options:
            command.add_argument(*flags, **keywords)
        command.set_defaults(handler=handler)
    return parser


def main(argv=None):
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return globals()[args.handler](args)
    except TellyError as exc:
        print(f"telly_autoinst collector: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"telly_autoinst collector: needs the extra and Python >= 3.10: "
              f"pip install 'telly_autoinst[collector]' ({exc})", file=sys.stderr)
        return 2
