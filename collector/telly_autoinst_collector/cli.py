"""``python -m telly_autoinst collector ...``: tables of commands and options that call the collector.

``main`` is the only place where exceptions become exit codes: 0 success, 1 a publish was
refused by the privacy budget, 2 a usage or configuration error.
"""

import argparse
import json
import os
import signal
import socket
import sys
import urllib.parse

from telly_autoinst.errors import TellyError

from .registry import REGIONS
from .window import MIN_WINDOW_DAYS

_DB_HELP = ("database URL (sqlite:///PATH or postgresql://...); "
            "default $TELLY_COLLECTOR_DB, else a SQLite file per region")
_REGION = dict(choices=REGIONS, default=os.environ.get("TELLY_COLLECTOR_REGION", "us"),
               help="region label (default $TELLY_COLLECTOR_REGION or us)")

def _url(args):
    from .store import default_url

    return args.db or os.environ.get("TELLY_COLLECTOR_DB") or default_url(args.region)


def _store(args):
    from .store import open_store

    return open_store(_url(args))


def _check_serve_args(args):
    if args.min_group < 1:
        raise TellyError("--min-group must be at least 1")
    if args.window_days < MIN_WINDOW_DAYS:
        raise TellyError(f"--window-days must be at least {MIN_WINDOW_DAYS}: a 4-week block is released after it "
                         "closes, from raw rows still in the window")
    if args.workers < 1:
        raise TellyError("--workers must be at least 1")
    if args.rate_limit > 0 and args.rate_limit_burst < args.workers:
        # Each worker holds an equal share of the burst; a share below one report lets none through.
        raise TellyError("--rate-limit-burst must be at least --workers (each worker holds an equal share)")
    if args.max_in_flight_mib < 1:
        raise TellyError("--max-in-flight-mib must be at least 1")
    for name in ("idle_timeout", "header_timeout", "body_timeout"):
        if not getattr(args, name) > 0:
            raise TellyError(f"--{name.replace('_', '-')} must be positive")
    if args.public_url and urllib.parse.urlsplit(args.public_url).scheme not in ("http", "https"):
        raise TellyError(f"--public-url must start with https:// or http://, got {args.public_url!r}")
    if args.min_group == 1:
        print("telly_autoinst collector: --min-group 1 shows groups of a single user; use it only for development",
              file=sys.stderr)


def _more_descriptors():
    """Raise the open-file limit to its hard maximum: every connection, idle ones too, is a descriptor."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass  # keep the soft limit; connections beyond it wait in the backlog


def _serve(args):
    from .app import Config
    from .store import location, loosened

    _check_serve_args(args)
    url = _url(args)
    store = _store(args)  # migrates once, before any worker starts
    dialect = store.dialect
    store.dispose()
    if args.workers > 1 and dialect != "postgresql":
        raise TellyError("--workers above 1 needs a PostgreSQL database (--db postgresql://...)")
    for warning in loosened(url):
        print(f"telly_autoinst collector: warning: {warning}", file=sys.stderr)
    # Each worker has its own token buckets: together they let through the configured rate.
    config = Config(region=args.region, min_group=args.min_group, window_days=args.window_days,
                    rate=args.rate_limit / args.workers, burst=args.rate_limit_burst / args.workers,
                    publish_interval=args.publish_interval, public_url=args.public_url.rstrip("/"),
                    max_in_flight=args.max_in_flight_mib << 20, request_log=args.request_log)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    port = sock.getsockname()[1]
    _more_descriptors()
    print(f"telly_autoinst collector: listening on http://{args.host}:{port} region={args.region} "
          f"db={dialect} min_group={args.min_group} window_days={args.window_days} workers={args.workers}",
          flush=True)
    print(f"telly_autoinst collector: database {location(url)}\n"
          f"telly_autoinst collector: region {args.region}, {args.workers} worker(s), public URL "
          f"{args.public_url or '(none: as each request names it)'}", file=sys.stderr, flush=True)

    def serve_one(_number=0):
        _run_server(url, config, args, sock)

    try:
        if args.workers == 1:
            # uvicorn stops gracefully on SIGTERM/SIGINT, then raises the signal again once it has
            # put the previous handlers back: these make that an orderly exit through the log line
            # below, instead of death by signal (workers > 1: the supervising parent says it).
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, _exit_quietly)
            serve_one()
            return 0
        from .workers import run_workers

        return run_workers(args.workers, serve_one)
    finally:
        print(f"telly_autoinst collector: stopped (database {location(url)})", file=sys.stderr, flush=True)


def _exit_quietly(_signum, _frame):
    raise SystemExit(0)


def _run_server(url, config, args, sock):
    import uvicorn

    from .app import build_app
    from .connection import Deadlines, protocol_with
    from .store import open_store

    store = open_store(url)
    if args.request_log:
        from . import requestlog

        requestlog.enable(sys.stderr)
    deadlines = Deadlines(idle=args.idle_timeout, header=args.header_timeout, body=args.body_timeout)
    # No access log and no proxy headers: client addresses are never logged or stored.
    # No limit_concurrency: uvicorn would count idle connections too and answer 503 to real
    # reports; memory is bounded by the bytes in flight (Config.max_in_flight) and the
    # connections' deadlines instead.
    server = uvicorn.Server(uvicorn.Config(build_app(store, config), http=protocol_with(deadlines),
                                           timeout_keep_alive=deadlines.idle, access_log=False,
                                           proxy_headers=False, server_header=False, log_level="warning",
                                           backlog=4096))
    try:
        server.run(sockets=[sock])
    finally:
        store.dispose()


def _project_rotate_token(args):
    from .registry import rotate_token

    store = _store(args)
    token = rotate_token(store, args.project_id)
    if args.json:
        print(json.dumps({"project_id": args.project_id, "read_token": token}))
    else:
        print(f"project_id: {args.project_id}\nread_token: {token}\nThe previous read token no longer works "
              f"(running collectors stop accepting it within seconds); dashboards must log in again.")
    return 0


def _project_create(args):
    from .registry import create_project

    project_id, token = create_project(_store(args), args.name, args.region, project_id=args.project_id,
                                       epsilon_per_day=args.epsilon_per_day, level2_plaintext=args.level2_plaintext,
                                       profile=args.profile)
    if args.level2_plaintext:
        print(f"telly_autoinst collector: {project_id} stores Level II in plain text (user name, home, machine id, "
              "host name) from users who agreed, and shows it on its dashboard; for internal corporate "
              "deployments only", file=sys.stderr)
    if args.json:
        print(json.dumps({"project_id": project_id, "read_token": token, "region": args.region,
                          "level2_plaintext": args.level2_plaintext, "profile": args.profile or "small",
                          "profile_declared": args.profile is not None}))
    else:
        print(f"project_id: {project_id}\nread_token: {token}\nregion:     {args.region}\n"
              f"profile:    {_profile_text(args.profile or 'small', args.profile is not None)}\n"
              f"Clients send with TELLY_HTTP_SERVER=http://HOST:PORT and this project_id; keep the read token "
              f"secret (it is stored hashed and cannot be shown again).")
    return 0


def _profile_text(profile, declared):
    return f"{profile} ({'declared' if declared else 'automatic'})"


def _project_set_profile(args):
    from .registry import set_profile

    store = _store(args)
    set_profile(store, args.project, args.profile)
    project = store.project(args.project)
    print(f"{args.project}: profile {_profile_text(project['profile'], project['profile_declared'])}, for the "
          "releases made from now on")
    return 0


def _read_listing(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as exc:
        raise TellyError(f"cannot read {path} as JSON: {exc}") from exc


def _project_register_keys(args):
    from .registry import register_keys

    versions = [v.strip() for v in (args.versions or "").split(",") if v.strip()]
    listing = _read_listing(args.file) if args.file else {"distributions": []}
    keys, versions = register_keys(_store(args), args.project, listing, versions)
    print(f"{args.project}: {keys} new feature key(s) and {versions} new version(s) registered as public")
    return 0


def _project_keys(args):
    from .registry import unregister_key

    store = _store(args)
    if args.remove is not None:
        if not unregister_key(store, args.project, args.remove):
            raise TellyError(f"{args.remove!r} is not registered for {args.project}")
        print(f"{args.project}: {args.remove!r} is no longer registered")
        return 0
    registered = store.public_keys(args.project)
    if args.json:
        print(json.dumps({"feature_keys": registered.get("users", []), "versions": registered.get("version", [])}))
        return 0
    for label, metric in (("feature key", "users"), ("version", "version")):
        for key in registered.get(metric, []):
            print(f"{label}\t{key}")
    return 0


def _import(args):
    from .history import import_reports
    from .window import utc_now

    store = _store(args)
    project = store.project(args.project)
    if project is None:
        raise TellyError(f"no project {args.project!r} is registered in this database")
    try:
        with open(args.file, encoding="utf-8") as handle:
            stored = import_reports(store, project, handle, utc_now().date())
    except OSError as exc:
        raise TellyError(f"cannot read {args.file}: {exc}") from exc
    for day, count in stored.items():
        print(f"{args.project} {day}: {count} report(s) stored")
    print(f"{args.project}: {sum(stored.values())} report(s) stored on {len(stored)} day(s)")
    return 0


def _through(text, today):
    import datetime

    try:
        day = datetime.date.fromisoformat(text)
    except ValueError:
        raise TellyError(f"--through must be a day as YYYY-MM-DD, got {text!r}") from None
    if day >= today:
        raise TellyError(f"--through must be a day before today ({today}, UTC); --through-now releases today")
    return day
def _project_list(args):
    store = _store(args)
    rows = store.projects()
    if args.json:
        print(json.dumps([dict(row, created_at=row["created_at"].isoformat()) for row in rows]))
        return 0
    for row in rows:
        profile = _profile_text(row["profile"], row["profile_declared"])
        print(f"{row['project_id']}  {row['region']}  created {row['created_at']:%Y-%m-%d}  "
              f"epsilon/day {row['epsilon_per_day']:g}  profile {profile}"
              f"{'  plaintext Level II' if row['level2_plaintext'] else ''}  {row['name']}")
    if not rows:
        print(f"no projects in {_location(args)}", file=sys.stderr)
    return 0


def _project_delete(args):
    if not args.yes:
        raise TellyError(f"deleting {args.project_id} removes its raw reports, window keys and published numbers "
                         "for good; pass --yes to confirm")
    deleted = _store(args).delete_project(args.project_id)
    if not any(deleted.values()):
        raise TellyError(f"no project {args.project_id!r} is registered in {_location(args)}")
    print(f"deleted {args.project_id}: " + ", ".join(f"{count} {table}" for table, count in deleted.items()))
    return 0


def _location(args):
    from .store import location

    return location(_url(args))


def _backup(args):
    from .backup import backup

    version = backup(_url(args), args.destination)
    print(f"backed up {_location(args)} to {args.destination} (schema version {version})")
    return 0


def _restore(args):
    from .backup import restore

    version = restore(args.backup, _url(args), replace=args.replace)
    store = _store(args)  # migrates a backup made by an older release now, not at the next start
    print(f"restored {args.backup} (schema version {version}) to {_location(args)}; schema version now "
          f"{store.version()}")
    store.dispose()
    return 0


def _publish(args):
    import datetime

    from . import jobs
    from .window import utc_now

    store = _store(args)
    ids = [args.project] if args.project else store.project_ids(args.region)
    today = utc_now().date()
    if args.through is not None:
        if args.through_now:
            raise TellyError("--through and --through-now exclude each other")
        # Every day up to and including --through is complete: publish as if the next day had begun.
        today = _through(args.through, today) + datetime.timedelta(days=1)
    refused = 0
    for project_id, day, spent in jobs.publish(store, ids, today, through_now=args.through_now):
        if isinstance(day, tuple):  # a week or 4-week block: (level, first day)
            day = f"{'4-week block' if day[0] == 'block' else day[0]} from {day[1]}"
        if spent is None:
            refused += 1
            print(f"{project_id} {day}: refused, the privacy budget of its days is spent (or a day's one partial "
                  "release is)")
        else:
            print(f"{project_id} {day}: released; its user-days have spent epsilon {spent[0]:g}, "
                  f"delta {spent[1]:g} in total")
    return 1 if refused else 0


# command path, help, [(flags, argparse keywords)], handler. After the handlers, so it holds them.
_COMMANDS = (
    (("serve",), "run the collector", [
        (("--host",), dict(default="127.0.0.1", help="address to listen on (default 127.0.0.1)")),
        (("--port",), dict(type=int, default=8470, help="0 picks a free port (printed on start)")),
        (("--db",), dict(help=_DB_HELP)),
        (("--region",), _REGION),
        (("--min-group",), dict(type=int, default=10, help="smallest group shown (default 10; 1 for development)")),
        (("--window-days",), dict(type=int, default=MIN_WINDOW_DAYS,
                                   help=f"days raw hashed rows are kept (default and minimum {MIN_WINDOW_DAYS})")),
        (("--rate-limit",), dict(type=float, default=1000.0, help="reports/s per project, 0 = off (default 1000)")),
        (("--rate-limit-burst",), dict(type=float, default=5000.0,
                                       help="reports a project may send at once before --rate-limit paces it "
                                            "(default 5000)")),
        (("--publish-interval",), dict(type=float, default=3600.0,
                                       help="seconds between scheduled publish/expire runs, 0 = never")),
        (("--workers",), dict(type=int, default=1,
                              help="serving processes sharing the port; more than 1 needs PostgreSQL (default 1)")),
        (("--public-url",), dict(default="", help="the URL browsers use, e.g. https://telemetry.example.org behind "
                                                  "a TLS proxy: makes the login cookie Secure and is the only "
                                                  "Origin accepted for the login form")),
        (("--idle-timeout",), dict(type=float, default=30.0,
                                   help="seconds a connection may wait for its next request (default 30)")),
        (("--header-timeout",), dict(type=float, default=30.0,
                                     help="seconds a client may take to send a request's headers (default 30)")),
        (("--body-timeout",), dict(type=float, default=30.0,
                                   help="seconds a client may take to send a request's body (default 30)")),
        (("--request-log",), dict(action="store_true",
                                   help="log each request (method, path, status, duration; never the client's "
                                        "address) to stderr")),
        (("--max-in-flight-mib",), dict(type=int, default=64,
                                        help="MiB of request bodies held at once, parsed or not, per worker; "
                                             "beyond it reports get 503 (default 64)")),
    ], _serve),
    (("project", "create"), "register a project; prints its project_id and read_token", [
        (("name",), dict()),
        (("--region",), _REGION),
        (("--json",), dict(action="store_true", help="print {project_id, read_token} as JSON")),
        (("--db",), dict(help=_DB_HELP)),
        (("--project-id",), dict(help="register this id (e.g. an original Telly project UUID) instead of a new one")),
        (("--epsilon-per-day",),
         dict(type=float, default=1.0, help="privacy loss ε of one user-day, in total over every release that "
                                            "contains it, at δ = 1e-6 (default 1)")),
        (("--level2-plaintext",), dict(action="store_true",
                                       help="internal corporate deployments only: store and show Level II in plain "
                                            "text when the package and the user agreed too")),
        (("--profile",), dict(choices=("small", "large"),
                              help="declare what daily releases carry: small, daily users only (features weekly, "
                                   "the full table every 4 weeks); large, features daily too. Default: small, "
                                   "becoming large on its own after a 4-week block of 1,000 daily users or more")),
    ], _project_create),
    (("project", "set-profile"), "declare a project's profile (small or large), or give the choice back to the "
                                 "collector (auto)", [
        (("profile",), dict(choices=("small", "large", "auto"))),
        (("--project",), dict(required=True, help="the project id")),
        (("--db",), dict(help=_DB_HELP)),
        (("--region",), _REGION),
    ], _project_set_profile),
    (("project", "rotate-token"), "replace a project's read token; prints the new one (the old one stops working)", [
        (("project_id",), dict()),
        (("--json",), dict(action="store_true", help="print {project_id, read_token} as JSON")),
        (("--db",), dict(help=_DB_HELP)),
        (("--region",), _REGION),
    ], _project_rotate_token),
    (("project", "register-keys"), "make a package's feature keys (and versions) public: released without a "
                                   "threshold, whatever their count", [
        (("file",), dict(nargs="?", help="what `python -m telly_autoinst --dry-run --json` prints; the keys (and "
                                         "version) of its entries with this project id are registered")),
        (("--project",), dict(required=True, help="the project id")),
        (("--versions",), dict(help="comma-separated package versions to register too, e.g. 1.0.0,1.1.0")),
        (("--db",), dict(help=_DB_HELP)),
        (("--region",), _REGION),
    ], _project_register_keys),
    (("project", "keys"), "list the registered feature keys and versions, or take one back with --remove", [
        (("--project",), dict(required=True, help="the project id")),
        (("--remove",), dict(metavar="KEY", help="unregister this feature key or version")),
        (("--json",), dict(action="store_true", help="print {feature_keys, versions} as JSON")),
        (("--db",), dict(help=_DB_HELP)),
        (("--region",), _REGION),
    ], _project_keys),
    (("import",), "store past reports from JSON lines {\"day\": \"YYYY-MM-DD\", \"report\": {...}}, each "
                  "validated as ingestion does; days already released are refused", [
        (("file",), dict(help="the JSON lines file")),
        (("--project",), dict(required=True, help="the project id every report must carry")),
        (("--db",), dict(help=_DB_HELP)),
        (("--region",), _REGION),
    ], _import),
    (("project", "list"), "list the projects of the database, with region, creation day, privacy loss and profile", [
        (("--json",), dict(action="store_true", help="print a JSON list of the projects")),
        (("--db",), dict(help=_DB_HELP)),
        (("--region",), _REGION),
    ], _project_list),
    (("project", "delete"), "delete a project and everything stored for it", [
        (("project_id",), dict()),
        (("--yes",), dict(action="store_true", help="confirm: the project's data cannot be recovered")),
        (("--db",), dict(help=_DB_HELP)),
        (("--region",), _REGION),
    ], _project_delete),
    (("backup",), "copy a SQLite store to a new file while the collector serves (PostgreSQL: pg_dump)", [
        (("destination",), dict(help="the backup file to create")),
        (("--db",), dict(help=_DB_HELP)),
        (("--region",), _REGION),
    ], _backup),
    (("restore",), "replace a SQLite store with a backup (stop the collector first), and migrate it", [
        (("backup",), dict(help="a file made by `collector backup`")),
        (("--replace",), dict(action="store_true", help="overwrite the existing store")),
        (("--db",), dict(help=_DB_HELP)),
        (("--region",), _REGION),
    ], _restore),
    (("publish",), "release the completed days (and with --through-now the current one) with DP noise", [
        (("--project",), dict(help="only this project (default: every project of the region)")),
        (("--through-now",), dict(action="store_true", help="also release today's partial day (once a day, from "
                                                              "a reserved tenth of its budget)")),
        (("--through",), dict(metavar="YYYY-MM-DD", help="release every complete day up to this one (a day before "
                                                         "today, UTC), e.g. after `collector import`")),
        (("--db",), dict(help=_DB_HELP)),
        (("--region",), _REGION),
    ], _publish),
)


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
        return args.handler(args)
    except TellyError as exc:
        print(f"telly_autoinst collector: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"telly_autoinst collector: needs the extra and Python >= 3.10: "
              f"pip install 'telly_autoinst[collector]' ({exc})", file=sys.stderr)
        return 2
