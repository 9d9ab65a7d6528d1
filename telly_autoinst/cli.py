"""The command line: a table of commands, their handlers, and how results are printed.

Every handler lives here and only calls the domain modules (``consent``, ``preview``,
``dryrun``, ``purge``) and formats what they return, the way coverage.py keeps ``cmdline``
apart from ``Coverage``. ``main`` is the only place where exceptions become exit codes:
0 success, 1 a problem was found (``--dry-run`` saw a malformed config), 2 a usage or
configuration error. Results go to stdout; errors and warnings go to stderr.
"""

import argparse
import os
import sys

from .errors import ConfigError, TellyError


def _json(data):
    import json  # CLI output only: the counting path never needs it

    return json.dumps(data, indent=2, sort_keys=True)


def _message(message, as_json, **data):
    return (_json({"message": message, **data}) if as_json else message), 0


def _project_id(value):
    """A project id as the schema defines it; ConfigError (exit 2) otherwise, before any file is touched."""
    from .settings import project_id_problem

    problem = project_id_problem(value)
    if problem:
        raise ConfigError(f"{value!r} is not a valid project id: {problem}")
    return value


def _edit_list(edit, name, as_json, verb):
    """Record a choice for the project ``name`` stands for (its id, its distribution or module name);
    a name that stands for no project is refused, so a typo never looks like an opt-out."""
    from . import consent

    _project_id(name)
    project_id = consent.resolve(name)
    if project_id is None:
        raise ConfigError(f"{name!r} is neither the project id nor the distribution name of a watched package, nor "
                          "a project in your lists; nothing was recorded (`python -m telly_autoinst status` lists "
                          "packages and their project ids)")
    try:
        edit(project_id)
    except OSError as exc:
        raise ConfigError(f"cannot write to your home directory ({exc}); set HOME to a writable directory") from exc
    named = "" if project_id.casefold() == name.casefold() else f"{name} "
    return _message(f"{verb}: {named}(project {project_id})" if named else f"{verb}: {project_id}", as_json,
                    project_id=project_id)


def _optin(args):
    """`optin NAME`: list its project in ~/.telly_optin and remove it from ~/.telly_optout."""
    from . import consent

    return _edit_list(consent.optin, args.project_id, args.json, "opted in")


def _optout(args):
    """`optout NAME`: list its project in ~/.telly_optout and remove it from ~/.telly_optin."""
    from . import consent

    return _edit_list(consent.optout, args.project_id, args.json, "opted out")


def _disable(args):
    from . import consent

    try:
        consent.disable()
    except OSError as exc:
        raise ConfigError(f"cannot create ~/.telly_disable ({exc}); set TELLY_DISABLE=1 instead") from exc
    return _message("telly_autoinst disabled for every project (~/.telly_disable)", args.json)


def _enable(args):
    from . import consent
    from ._env import kill_switch

    try:
        removed = consent.enable()
    except OSError as exc:
        raise ConfigError(f"cannot remove ~/.telly_disable ({exc})") from exc
    if removed:
        message = "telly_autoinst enabled (~/.telly_disable removed)"
    else:
        message = "telly_autoinst was not disabled by ~/.telly_disable (there was none; nothing changed)"
    switch = kill_switch()
    if switch:
        message += f"; still disabled by {switch} in your environment"
    return _message(message, args.json, removed=removed, still_disabled_by=switch)


def _status(args):
    from .consent import status
    from .purge import refusals

    # The same keys and words as the Node client's status.
    data = dict(status(), refused=[{"directory": path, "reason": reason} for path, reason in refusals()])
    if args.json:
        return _json(data), 0
    switch = data["disabled_by"]
    lines = [
        f"telly_autoinst {data['version']}",
        f"kill switch:  {switch or 'none (TELLY_DISABLE, DO_NOT_TRACK, ~/.telly_disable all unset)'}",
        f"mode:         {'opt-in for every project (TELLY_OPTIN)' if data['optin_only'] else 'per project'}",
        f"CI:           {('yes, ' + (data['ci_vendor'] or 'generic')) if data['ci'] else 'no'}",
        f"storage:      {data['storage_type']}",
        f"user config:  {data['user_config'] or '(none: no home directory)'}",
    ]
    if data["config_error"]:
        lines.append(f"  error: {data['config_error']}")
        lines.append("  nothing is counted until it is fixed")
    lines.extend(f"refused:      {item['reason']}" for item in data["refused"])
    lines.append("")
    rows = data["projects"]
    if rows:
        width = max(len("PACKAGE"), *(len(r["package"] or "-") for r in rows))
        id_width = max(len("PROJECT"), *(len(r["project_id"]) for r in rows))
        lines.append(f"{'PACKAGE'.ljust(width)}  {'PROJECT'.ljust(id_width)}  STATE  LEVEL II  WHY")
        for r in rows:
            level2 = "plain" if r["level2_plaintext"] else "yes" if r["level2"] else "no"
            lines.append(f"{(r['package'] or '-').ljust(width)}  {r['project_id'].ljust(id_width)}  "
                         f"{'on ' if r['on'] else 'off'}    {level2.ljust(10)}{r['why']}")
    else:
        lines.append("no watched project found")
    return "\n".join(lines), 0


def _show(args):
    from .preview import preview

    data = preview()
    if args.json:
        return _json({"projects": data["projects"], "queued": data["queued"]}), 0
    lines = []
    for item in data["projects"]:
        state = "would send" if item["would_send"] else "would NOT send"
        lines.append(f"# {item['project_id']}: {state} ({item['why']}) to {item['endpoint'] or '(no endpoint)'}")
        lines.append(_json(item["report"]))
    lines.append(f"# {len(data['queued'])} report(s) waiting in the spool {data['spool'] or '(none)'}")
    for item in data["queued"]:
        lines.append(f"# {item['file']} -> {item['url']} (attempts: {item['attempts']})")
        lines.append(_json(item["report"]))
    return "\n".join(lines), 0


def _purge(args):
    from . import purge

    found = purge.leftovers()
    if not found:
        return _message("nothing to remove: telly_autoinst left no file behind", args.json, removed=[])
    # Say what will go before anything goes, so an interrupted purge still told the user.
    if not args.json:
        _emit("\n".join(["removing:", *(f"  {path}" for path in found)]))
    failed = purge.remove(found)
    for path, error in failed:
        sys.stderr.write(f"telly_autoinst: cannot remove {path}: {error}\n")
    removed = [path for path in found if path not in dict(failed)]
    message = (f"removed {len(removed)} of {len(found)}. Now uninstall with the kill switch on, so that pip's own "
               "start does not index the environment again: TELLY_DISABLE=1 python -m pip uninstall telly_autoinst "
               "(until then it runs with its defaults again: your opt-outs are gone)")
    text, _ = _message(message, args.json, removed=removed, failed=[path for path, _ in failed])
    return text, 2 if failed else 0


def _notice(args):
    """`notice [--package NAME] [--format md|rst|text]`: the README notice, from the package's own settings."""
    from . import notice

    name, project = notice.select(args.package)
    text = notice.render(notice.build(name, project), args.format)
    if args.json:
        return _json({"package": name, "project_id": project.project_id, "format": args.format, "text": text}), 0
    return text.rstrip("\n"), 0


def _dry_run(args):
    from .dryrun import plan

    result = plan()
    # Errors go to stderr in both forms, so that CI logs show them whatever reads stdout.
    for error in result["errors"]:
        sys.stderr.write(f"telly_autoinst: error: {error}\n")
    return (_json(result) if args.json else _dry_run_text(result)), 0 if result["ok"] else 1


# What --dry-run says of a project's warm state (warmstate.status) in this environment.
_WARM_STATES = {
    "valid": "cached and valid (the next run reuses its settings and consent verdict)",
    "stale": "cached but stale (a consent, config or settings file, or the environment changed): "
             "the next run decides afresh",
    "none": "not cached (the next run decides afresh and keeps the result)",
    "off": "not used (TELLY_NO_CACHE)",
}


def _dry_run_text(result):
    lines = []
    if result["kill_switch"]:
        lines.append(f"note: {result['kill_switch']} is set, so nothing is counted in this environment.")
    if not result["distributions"] and not result["errors"]:
        lines.append("No watched packages.")
    for entry in result["distributions"]:
        name = " ".join(part for part in (entry["distribution"], entry["version"]) if part) or "(forced)"
        lines.append(f"{name}  (project {entry['project_id']})")
        lines.append(f"  packages: {', '.join(entry['packages'])}")
        lines.append(f"  settings from: {entry['source']}")
        sharing = [other["distribution"] or "(forced)" for other in result["distributions"]
                   if other is not entry and other["project_id"] == entry["project_id"]]
        if sharing:  # each is still its own report (pipeline: one per distribution)
            lines.append(f"  shares project {entry['project_id']} with {', '.join(sharing)}: reported apart, "
                         "under its own name and version, with only its own counts")
        engine = entry["engine"] + (f"  ({entry['engine_note']})" if entry["engine_note"] else "")
        lines.append(f"  engine: {engine}")
        lines.append(f"  endpoint: {entry['endpoint'] or '(none: reports stay local)'}")
        if "warm_state" in entry:
            lines.append(f"  warm state: {_WARM_STATES.get(entry['warm_state'], entry['warm_state'])}")
        if entry.get("editable") and not entry.get("sends_from_editable"):
            lines.append("  note: installed editable from a checkout (your own runs): nothing below is counted or "
                         "sent unless send_from_editable = true or TELLY_SEND_FROM_EDITABLE=1")
        for problem in entry["problems"]:
            lines.append(f"  warning: {problem}")
        lines.append(f"  would count {len(entry['keys'])} name(s):")
        for key in entry["keys"]:
            other = entry["engines"][key]
            lines.append(f"    {key}" + (f"  (engine: {other})" if other != entry["engine"] else ""))
        if entry["not_counted"]:
            lines.append(f"  {len(entry['not_counted'])} name(s) not counted, because:")
            lines.extend(f"    {item['key']}: {item['why']}" for item in entry["not_counted"])
    return "\n".join(lines)


# name, help, arguments, handler. An argument is a positional's name, or (flag, argparse
# keywords) for an option. A handler takes the parsed arguments and returns (text, exit_code);
# the text goes to stdout.
_COMMANDS = (
    ("optin", "send reports for a package (its distribution name or project id; required in opt-in mode)",
     ("project_id",), _optin),
    ("optout", "never send reports for a package (its distribution name or project id)", ("project_id",), _optout),
    ("enable", "turn telly_autoinst back on for every project (removes ~/.telly_disable)", (), _enable),
    ("disable", "turn telly_autoinst off for every project (creates ~/.telly_disable)", (), _disable),
    ("status", "show what is on, for which project, and why", (), _status),
    ("show", "print the reports that would be sent now, without sending", (), _show),
    ("notice", "print the README notice for an opted-in package, built from its own settings", (
        ("--package", dict(metavar="NAME", help="module or distribution name (needed when several opted in)")),
        ("--format", dict(choices=("md", "rst", "text"), default="md", help="md (default), rst or text")),
    ), _notice),
    ("purge", "remove every file telly_autoinst keeps (salt, lists, notices, lock, cache, spool); "
              "run it before uninstalling", (), _purge),
)

# flag, help, handler. Kept as options because CI scripts call `python -m telly_autoinst --dry-run`.
_OPTIONS = (
    ("--dry-run", "list every watched package, where its settings came from, what would be counted and what "
                  "would not (and why)", _dry_run),
)


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m telly_autoinst",
        description="Privacy-friendly usage statistics for open-source Python packages.",
    )
    for flag, help_text, handler in _OPTIONS:
        parser.add_argument(flag, action="store_const", const=handler, dest="option", help=help_text)
    parser.add_argument("--json", action="store_true",
                        help="print machine-readable JSON (with --dry-run, status, show and the rest)")
    parser.set_defaults(handler=None, option=None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text, arguments, handler in _COMMANDS:
        command = sub.add_parser(name, help=help_text, description=help_text)
        for argument in arguments:
            if isinstance(argument, str):
                command.add_argument(argument)
            else:
                command.add_argument(argument[0], **argument[1])
        command.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        command.set_defaults(handler=handler)
    sub.add_parser("collector", help="run and manage a self-hosted collector (extra: telly_autoinst[collector])",
                   add_help=False)
    return parser


def _emit(text):
    """Print to stdout; a reader that went away (``| head -1``) ends the output quietly."""
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python flushes stdout again at exit and would print the error there: point it at
        # /dev/null first (the recipe in the signal module's documentation).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _hand_to_collector(argv):
    """Run the collector's own command tree, which lives in a distribution of its own.

    The collector is a server with heavy dependencies that end users of the client never need,
    so it is installed on purpose (``pip install 'telly_autoinst[collector]'``) and imported
    only here.
    """
    import importlib
    import importlib.util

    if importlib.util.find_spec("telly_autoinst_collector") is None:
        print("telly_autoinst: the collector is not installed here. Install it with\n"
              "    pip install 'telly_autoinst[collector]'\n"
              "(it needs Python 3.10 or newer; add [postgres] for PostgreSQL: "
              "pip install 'telly-autoinst-collector[postgres]').", file=sys.stderr)
        return 2
    try:
        collector_cli = importlib.import_module("telly_autoinst_collector.cli")
    except ImportError as exc:
        print(f"telly_autoinst: the collector is installed but cannot start: {exc}", file=sys.stderr)
        return 2
    return collector_cli.main(argv)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["collector"]:
        return _hand_to_collector(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    handler = args.handler or args.option
    if handler is None:
        parser.print_help()
        return 2
    try:
        text, code = handler(args)
    except TellyError as exc:
        print(f"telly_autoinst: {exc}", file=sys.stderr)
        return 2
    if text:
        _emit(text)
    return code
