"""The README notice an author pastes, built from the package's own settings instead of copied.

The seed ships "sample notice language" that every author must adapt by hand, and a hand-adapted
notice drifts from what the package really sends. Here the notice is derived from the same
``ProjectSettings`` the client acts on, so it names the real project id, collector, region,
mode and Level II choice. Only the package's own table counts: the author's machine may
override region or Level II for itself, and that must not leak into what every user reads.

A notice is a small document (a title, paragraphs and bullet lists, with `code` spans marked by
backticks); :func:`render` writes it as Markdown, reStructuredText or plain text. The format is
part of the product, since the text is pasted into a README as is.
"""

import os
import textwrap

from . import discovery
from ._contract import RUNTIMES
from .errors import ConfigError
from .settings import process_settings

# Names for annotations only: never imported at run time (typing would cost an import).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

FORMATS = ("md", "rst", "text")
_WIDTH = 100
_REGION_NAMES = {"us": "US", "eu": "EU"}
# RUNTIMES, the words that differ between the two clients, are the shared contract's. The Node
# client (node/lib/notice.js) builds the same notice from the same settings; tests/test_notice.py
# checks both print identical text.
# Inside a code span, spaces become this while wrapping so a command is never split across lines.
_HARD_SPACE = "\x00"


def select(package=None):
    """(display name, ProjectSettings) of one opted-in package, from its own table only.

    ``package`` is a top-level module or a distribution name; without it there must be exactly
    one watched package. Raises ConfigError with the reason (and the candidates) otherwise.
    """
    # No environment and no user config: the notice describes what the author declared.
    found, errors = discovery.resolve(discovery.scan(), (), environ={}, user_config={})
    projects: dict[str, Any] = {}
    for module, project in sorted(found.items()):
        projects.setdefault(project.project_id, (project.distribution or module, project, set()))[2].update(
            {module, discovery.normalize(project.distribution or module)})
    broken = f"; malformed tables (see --dry-run): {'; '.join(errors)}" if errors else ""
    if package is None:
        if not projects:
            raise ConfigError(f"no installed package opted in to telly_autoinst, so there is nothing to describe "
                              f"(add a [tool.telly] table and install the package){broken}")
        # Inside an author's own checkout, the package of that checkout is the one meant.
        checkout = discovery.checkout_at(os.getcwd())
        if checkout is not None and len(projects) > 1:
            package = checkout[1]
    if package is None:
        if len(projects) > 1:
            names = ", ".join(sorted(name for name, _, _ in projects.values()))
            raise ConfigError(f"several packages opted in ({names}); choose one with --package NAME")
        name, project, _ = next(iter(projects.values()))
        return name, project
    wanted = discovery.normalize(package)
    for name, project, aliases in projects.values():
        if package in aliases or wanted in aliases:
            return name, project
    known = ", ".join(sorted(name for name, _, _ in projects.values())) or "none"
    raise ConfigError(f"package {package!r} did not opt in to telly_autoinst or is not installed "
                      f"(opted-in packages: {known}){broken}")


def build(name, project, runtime="python"):
    """The notice for ``project`` as blocks: ("title", text), ("para", text) or ("list", [items]).

    ``runtime`` picks the client's words (see RUNTIMES); the Python CLI always uses "python".
    """
    words = RUNTIMES[runtime]
    cli, counted = words["cli"], words["counted"]
    project_id = project.project_id
    url = project.collector_url(process_settings(environ={}, user_config={}))
    blocks: list[tuple[str, Any]] = [("title", "Usage statistics")]
    blocks.append(("para", f"{name} counts how it is used with {words['tool']}, a privacy-friendly usage "
                           f"statistics tool, so that we know which features, {words['runtime']} versions and "
                           "platforms to support."))
    if project.mode == "optin":
        blocks.append(("para", f"Nothing is sent unless you opt in with "
                               f"`{cli} optin {project_id}`. Once you do, a program that "
                               f"uses {name} sends a short report when it ends:"))
    else:
        blocks.append(("para", f"If {words['tool']} is installed, a program that uses {name} sends a short report "
                               "when it ends:"))
    sent = [
        f"your {words['runtime']} version and implementation, and how {words['runtime']} was started "
        f"({words['modes']});",
        "your operating system and its release, CPU architecture, model and count, and total RAM;",
        "whether it runs in CI (and which CI service), in a container or under WSL;",
        f"the version of {name} and of the packages it depends on;",
    ]
    if project.level2:
        sent.append(f"how many times each {counted} of {name} was called;")
        sent.append("salted, keyed hashes (HMAC-SHA-256) of your user name, home directory, machine id and host "
                    "name, used only to count unique users. The salt never leaves your machine, and our "
                    "collector re-keys the hashes on arrival and deletes them after its analytics window (35 days "
                    "by default).")
    else:
        sent.append(f"how many times each {counted} of {name} was called.")
    blocks.append(("list", sent))
    never = "It never sends argument values, file contents or paths, environment variables or the command line."
    if not project.level2:
        never = ("It sends no user or machine identifier, not even hashed, and never argument values, file "
                 "contents or paths, environment variables or the command line.")
    blocks.append(("para", never))
    if project.level2 and project.level2_plaintext:
        blocks.append(("para", "Internal corporate deployments only: if you or your administrator set "
                               "`TELLY_LEVEL2_PLAINTEXT=1`, your user name, home directory, machine id and host "
                               "name are also sent in plain text, and our collector stores them and shows them to "
                               "the maintainers of this project on its dashboard if the project there was created "
                               "to allow it. Without `TELLY_LEVEL2_PLAINTEXT=1` they are sent only as hashes."))
    blocks.append(("para", _destination(project, url)))
    if not project.send_from_ci:
        blocks.append(("para", "Nothing is sent from CI runs."))
    blocks.append(("para", "To see what is sent:"))
    blocks.append(("list", [
        f"`TELLY_SHOW_ME=1 {words['run']}` prints each report to stderr, byte for byte, as it is sent;",
        f"`{cli} show` prints what would be sent now, without sending anything;",
        f"`{cli} --dry-run` lists every function and class that would be counted;",
        f"`{cli} status` says whether reporting is on for each project, and why.",
    ]))
    blocks.append(("para", "To say no:"))
    blocks.append(("list", [
        f"for this project only: `{cli} optout {project_id}`;",
        f"for every project: set `TELLY_DISABLE=1` or `DO_NOT_TRACK=1`, or run `{cli} disable`.",
    ]))
    return blocks


def _destination(project, url):
    """Where reports go: the region's collector, the other region's if the user may pick it, or nowhere."""
    if not url:
        return ("No collector is configured, so reports leave your machine only if you point them somewhere "
                "yourself with `TELLY_HTTP_SERVER`.")
    region = _REGION_NAMES.get(project.region, project.region)
    text = f"Reports go to our collector at {url}"
    text += "." if project.endpoint else f", which keeps its data in the {region} region."
    others = [(r, u) for r, u in project.endpoints if r != project.region] if not project.endpoint else []
    for other, other_url in others:
        text += (f" To send them to our {_REGION_NAMES.get(other, other)} collector at {other_url} instead, set "
                 f"`TELLY_REGION={other}`.")
    return text


def _code(text, fmt):
    """Mark `code` spans for ``fmt``, with their spaces protected from wrapping."""
    parts = text.split("`")
    marks = {"md": "`", "rst": "``", "text": ""}[fmt]
    for i in range(1, len(parts), 2):
        parts[i] = marks + parts[i].replace(" ", _HARD_SPACE) + marks
    return "".join(parts)


def _wrap(text, fmt, indent=""):
    lines = textwrap.wrap(_code(text, fmt), _WIDTH, initial_indent=indent, subsequent_indent=" " * len(indent),
                          break_long_words=False, break_on_hyphens=False)
    return "\n".join(line.replace(_HARD_SPACE, " ") for line in lines)


def render(blocks, fmt="md"):
    """The notice as Markdown (``md``), reStructuredText (``rst``) or plain text (``text``)."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown notice format {fmt!r}; use one of {', '.join(FORMATS)}")
    out = []
    for kind, value in blocks:
        if kind == "title":
            out.append(f"## {value}" if fmt == "md" else f"{value}\n{'=' * len(value)}")
        elif kind == "para":
            out.append(_wrap(value, fmt))
        else:
            out.append("\n".join(_wrap(item, fmt, "- ") for item in value))
    return "\n\n".join(out) + "\n"
