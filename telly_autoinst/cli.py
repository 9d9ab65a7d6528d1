"""The command line: tables of commands and options that call the public API.

``main`` is the only place where exceptions become exit codes: 0 success, 1 a problem was found
(``--dry-run`` saw a malformed config), 2 a usage or configuration error.
"""

import argparse
import importlib
import sys

from .errors import TellyError

# name, help, arguments, handler ("module:function"). An argument is a positional's name, or
# (flag, argparse keywords) for an option. A handler takes the parsed arguments as keywords
# (an option's flag without its dashes) and returns (text, exit_code).
_COMMANDS = (
    ("optin", "send reports for PROJECT_ID (required for projects in opt-in mode)", ("project_id",),
     "telly_autoinst.consent:cli_optin"),
    ("optout", "never send reports for PROJECT_ID", ("project_id",), "telly_autoinst.consent:cli_optout"),
    ("enable", "turn telly_autoinst back on for every project (removes ~/.telly_disable)", (),
     "telly_autoinst.consent:cli_enable"),
    ("disable", "turn telly_autoinst off for every project (creates ~/.telly_disable)", (),
     "telly_autoinst.consent:cli_disable"),
    ("status", "show what is on, for which project, and why", (), "telly_autoinst.consent:cli_status"),
    ("show", "print the reports that would be sent now, without sending", (), "telly_autoinst.pipeline:cli_show"),
    ("notice", "print the README notice for an opted-in package, built from its own settings", (
        ("--package", dict(metavar="NAME", help="module or distribution name (needed when several opted in)")),
        ("--format", dict(choices=("md", "rst", "text"), default="md", help="md (default), rst or text")),
    ), "telly_autoinst.cli:cli_notice"),
)

# flag, help, handler. Kept as options because CI scripts call `python -m telly_autoinst --dry-run`.
_OPTIONS = (
    ("--dry-run", "list every watched package, where its settings came from and what would be wrapped",
     "telly_autoinst.dryrun:cli_dry_run"),
)


def _load(target):
    module_name, _, func = target.partition(":")
    return getattr(importlib.import_module(module_name), func)


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m telly_autoinst",
        description="Privacy-friendly usage statistics for open-source Python packages.",
    )
    for flag, help_text, _ in _OPTIONS:
        parser.add_argument(flag, action="store_true", help=help_text)
    parser.add_argument("--json", action="store_true",
                        help="print machine-readable JSON (with --dry-run, status, show)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text, positionals, _ in _COMMANDS:
        command = sub.add_parser(name, help=help_text)
        for argument in positionals:
            if isinstance(argument, str):
                command.add_argument(argument)
            else:
                command.add_argument(argument[0], **argument[1])
        command.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub.add_parser("collector", help="run and manage a self-hosted collector (extra: telly_autoinst[collector])",
                   add_help=False)
    return parser


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["collector"]:
        # The collector has its own command tree and heavy dependencies: hand over untouched.
        try:
            collector_main = _load("telly_autoinst.collector.cli:main")
        except ImportError as exc:
            print(f"telly_autoinst: the collector needs its extra: pip install 'telly_autoinst[collector]' ({exc})",
                  file=sys.stderr)
            return 2
        return collector_main(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    handler = None
    for flag, _, target in _OPTIONS:
        if getattr(args, flag.lstrip("-").replace("-", "_")):
            handler, kwargs = _load(target), {"as_json": args.json}
    if args.command:
        target = next(t for name, _, _, t in _COMMANDS if name == args.command)
        positionals = next(p for name, _, p, _ in _COMMANDS if name == args.command)
        handler = _load(target)
        names = [p if isinstance(p, str) else p[0].lstrip("-").replace("-", "_") for p in positionals]
        kwargs = {name: getattr(args, name) for name in names}
        kwargs["as_json"] = args.json
    if handler is None:
        parser.print_help()
        return 2
    try:
        text, code = handler(**kwargs)
    except TellyError as exc:
        print(f"telly_autoinst: {exc}", file=sys.stderr)
        return 2
    if text:
        print(text)
    return code


def cli_notice(package=None, format="md", as_json=False):
    """`notice [--package NAME] [--format md|rst|text]`: the README notice, from the package's own settings."""
    from . import notice

    name, project = notice.select(package)
    text = notice.render(notice.build(name, project), format)
    if as_json:
        import json

        return json.dumps({"package": name, "project_id": project.project_id, "format": format, "text": text},
                          indent=2, sort_keys=True), 0
    return text.rstrip("\n"), 0
