"""``--dry-run``: what each watched distribution would count, what it would not and why, and its settings.

It scans afresh instead of trusting the cached index, imports every module of each watched
package with the import hook removed (so nothing is instrumented or reported), and lists the
same selection the engines count at run time, each key with the engine that counts it
(``Engine.explain``), and what they cannot count with the reason. Its data is a documented,
versioned format (docs/reference/dry-run-json.md, config/dry-run.schema.json).
"""

import importlib
import os
import pkgutil
import sys

from . import __version__, discovery, finder, warmstate
from ._env import kill_switch
from .errors import ConfigError
from .settings import process_settings, read_user_config


def _modules_of(top):
    """Import ``top`` and every submodule; return (modules, problems). ``__main__`` is never run."""
    modules, problems = [], []
    try:
        root = importlib.import_module(top)
    except Exception as exc:  # the package's own import error, shown to its author
        return [], [f"{top}: cannot be imported: {type(exc).__name__}: {exc}"]
    modules.append(root)
    pending = [root]
    while pending:
        package = pending.pop()
        path = getattr(package, "__path__", None)
        if path is None:
            continue
        for info in sorted(pkgutil.iter_modules(path, package.__name__ + "."), key=lambda i: i.name):
            if info.name.rpartition(".")[2] == "__main__":
                continue
            try:
                module = importlib.import_module(info.name)
            except Exception as exc:
                problems.append(f"{info.name}: cannot be imported: {type(exc).__name__}: {exc}")
                continue
            modules.append(module)
            if info.ispkg:
                pending.append(module)
    return modules, problems


# The JSON format's name and version (docs/reference/dry-run-json.md, config/dry-run.schema.json):
# bump the version when a field changes meaning or goes away; adding a field keeps it.
FORMAT = "telly-dry-run"
FORMAT_VERSION = 1


def plan():
    """The dry-run result as data, in the documented format: ``{"format", "format_version",
    "ok", "kill_switch", "errors", "distributions": [...]}``."""
    from .engines import make_engine

    finder.uninstall()
    result = {"format": FORMAT, "format_version": FORMAT_VERSION, "client_version": __version__,
              "python": "%d.%d.%d" % sys.version_info[:3], "ok": False, "kill_switch": kill_switch(),
              "errors": [], "distributions": []}
    errors = result["errors"]
    try:
        user_config = read_user_config()
        process = process_settings(user_config=user_config)
    except ConfigError as exc:
        errors.append(str(exc))
        return result
    forced = list(process.force_packages)
    missing = discovery.missing_packages(forced)
    if missing:
        errors.append(f"forced package(s) not found: {', '.join(missing)}; check TELLY_AUTOINST_PACKAGES or "
                      "force_packages in the user config (top-level module names, comma-separated)")
        forced = [name for name in forced if name not in missing]
    declarations = discovery.scan()
    versions = {discovery.normalize(d.distribution): d.version for d in declarations if d.distribution}
    uninstalled = _uninstalled_checkout(os.getcwd(), versions)
    if uninstalled:
        errors.append(uninstalled)
    by_module, resolve_errors = discovery.resolve(declarations, forced, user_config=user_config)
    errors.extend(resolve_errors)
    entries: dict = {}  # (distribution, project id) -> (entry, engine, {key: engine}, {key: why})
    for top in sorted(by_module):
        project = by_module[top]
        found = entries.get((project.distribution, project.project_id))
        if found is None:
            engine, note = make_engine(project.engine)
            entry = {
                "distribution": project.distribution,
                "version": versions.get(discovery.normalize(project.distribution)) if project.distribution else None,
                "project_id": project.project_id,
                "packages": [],
                "source": project.source,
                "engine": engine.name,
                "engine_note": note,
                "mode": project.mode,
                "editable": bool(project.editable),
                "sends_from_editable": bool(project.send_from_editable),
                "endpoint": project.collector_url(process),
                "warm_state": warmstate.status(project.project_id),
                "modules": [],
                "problems": [],
            }
            found = entries[(project.distribution, project.project_id)] = (entry, engine, {}, {})
        found[0]["packages"].append(top)
        _list_package(top, project, *found)
    for entry, _, keys, not_counted in entries.values():
        entry["keys"] = sorted(keys)
        entry["engines"] = {key: keys[key] for key in entry["keys"]}
        entry["not_counted"] = [{"key": key, "why": not_counted[key]} for key in sorted(not_counted)]
        result["distributions"].append(entry)
    result["ok"] = not errors
    return result


def _list_package(top, project, entry, engine, keys, not_counted):
    """Add what ``top``'s modules count (``keys``: key -> engine), and what they do not
    (``not_counted``: key -> why), to its distribution's ``entry``."""
    from .selection import select, uncounted

    modules, problems = _modules_of(top)
    entry["modules"].extend(m.__name__ for m in modules)
    entry["problems"].extend(problems)
    for module in modules:
        for target in select(module, project):
            name, why = engine.explain(target)
            if name is None:
                not_counted[target.key] = why
            else:
                keys[target.key] = name
        for key, why in uncounted(module, project):
            not_counted.setdefault(key, why)


def _uninstalled_checkout(directory, installed):
    """An error when ``directory`` is in the checkout of a package that opts in
    (``discovery.checkout_at``) but is not installed here; None otherwise."""
    found = discovery.checkout_at(directory)
    if found is None or discovery.normalize(found[1]) in installed:
        return None
    pyproject, name = found
    return (f"{pyproject} opts {name} in, but {name} is not installed in this environment ({sys.prefix}), "
            f"so nothing of it can be listed: install it (for instance `python -m pip install -e "
            f"{os.path.dirname(pyproject)}`) and run --dry-run again")
