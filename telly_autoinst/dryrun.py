"""``--dry-run``: what would be wrapped, per watched package, and where its settings came from.

It scans afresh instead of trusting the cached index, imports every module of each watched
package with the import hook removed (so nothing is instrumented or reported), and lists the
same selection the engines wrap at run time.
"""

import importlib
import pkgutil

from . import discovery, finder
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


def plan():
    """The dry-run result as data: ``{"ok", "kill_switch", "errors", "packages": [...]}``."""
    from .engines import make_engine
    from .selection import select

    finder.uninstall()
    errors = []
    try:
        user_config = read_user_config()
        process = process_settings(user_config=user_config)
    except ConfigError as exc:
        return {"ok": False, "kill_switch": kill_switch(), "errors": [str(exc)], "packages": []}
    forced = list(process.force_packages)
    missing = discovery.missing_packages(forced)
    if missing:
        errors.append(f"forced package(s) not found: {', '.join(missing)}; check TELLY_AUTOINST_PACKAGES or "
                      "force_packages in the user config (top-level module names, comma-separated)")
        forced = [name for name in forced if name not in missing]
    by_module, resolve_errors = discovery.resolve(discovery.scan(), forced, user_config=user_config)
    errors.extend(resolve_errors)
    packages = []
    for top in sorted(by_module):
        project = by_module[top]
        engine, note = make_engine(project.engine)
        modules, problems = _modules_of(top)
        keys: list[str] = []
        for module in modules:
            keys.extend(target.key for target in select(module, project))
        packages.append({
            "package": top,
            "project_id": project.project_id,
            "source": project.source,
            "distribution": project.distribution,
            "engine": engine.name,
            "engine_note": note,
            "mode": project.mode,
            "endpoint": project.collector_url(process),
            "modules": [m.__name__ for m in modules],
            "problems": problems,
            "keys": sorted(set(keys)),
        })
    return {"ok": not errors, "kill_switch": kill_switch(), "errors": errors, "packages": packages}
