"""Finds the packages that opted in, and where each one's ``[tool.telly]`` settings come from.

Two code-free routes, because wheels carry no ``pyproject.toml``:

* **Source checkout or editable install**: the distribution's ``direct_url.json`` points at a
  local directory whose ``pyproject.toml`` has a ``[tool.telly]`` table.
* **Installed wheel**: the distribution declares an entry point in the group ``telly`` whose value
  names the module to instrument (``mypkg = "mypkg"``), and ships the same keys as package data
  in ``<module>/telly.toml``.

When both exist, the checkout's ``pyproject.toml`` wins: it is what the author is editing.
The user may also force packages (``TELLY_AUTOINST_PACKAGES`` or ``force_packages`` in the user's
config file); a forced package that did not opt in reports under the project id ``local:<name>``.

This module is heavy (importlib.metadata, TOML); it runs only when the index is stale, in
``--dry-run``, and once a watched module is imported.
"""

import marshal
import os
import sys

from . import _env, index
from ._contract import FORCED_SOURCE
from ._record import record
from .errors import ConfigError
from .settings import process_settings, project_settings, read_user_config

# Names for annotations only: never imported at run time (typing would cost an import).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# Scanning (importlib.metadata, json, TOML, urllib) is imported inside the functions that scan:
# this module is also loaded on the first watched import, which only resolves the cached index.

ENTRY_POINT_GROUP = "telly"
PACKAGE_SETTINGS_FILE = "telly.toml"


_DeclarationFields: "Any" = record("Declaration",
                                   "source table distribution version default_packages error stamp provides "
                                   "editable",
                                   defaults=(None, None, None, False))


class Declaration(_DeclarationFields):
    """What one distribution declared, before layering: the raw table and where it came from.
    ``stamp`` names the file whose change must rebuild the index; ``provides`` the top-level
    modules the distribution itself ships (None: unknown, no check), the only ones it may claim;
    ``editable`` whether it is installed editable from a checkout (an author's own runs)."""

    __slots__ = ()


def normalize(name):
    """A distribution or module name in one spelling (lower case, ``-`` and ``.`` as ``_``), for comparing names."""
    return name.replace("-", "_").replace(".", "_").lower()


def _checkout_dir(dist, editable_only=False):
    """The local directory a distribution was installed from (editable or not), if any."""
    import json
    from urllib.parse import unquote, urlparse

    try:
        text = dist.read_text("direct_url.json")
    except Exception:
        return None
    if not text:
        return None
    try:
        direct_url = json.loads(text)
        url = direct_url.get("url", "")
        editable = (direct_url.get("dir_info") or {}).get("editable") is True
    except (ValueError, AttributeError):
        return None
    if editable_only and not editable:
        return None
    parsed = urlparse(url)
    if parsed.scheme != "file":
        return None
    path = unquote(parsed.path)
    return path if os.path.isdir(path) else None


def _pyproject_declaration(dist, name, version, default_packages):
    from ._toml import load_toml

    checkout = _checkout_dir(dist)
    if checkout is None:
        return None
    pyproject = os.path.join(checkout, "pyproject.toml")
    if not os.path.isfile(pyproject):
        return None
    try:
        data = load_toml(pyproject)
    except ConfigError as exc:
        return Declaration(pyproject, None, name, version, default_packages, str(exc), pyproject)
    tool = data.get("tool")
    table = tool.get("telly") if isinstance(tool, dict) else None
    if table is None:
        return None
    if not default_packages:
        default_packages = (normalize(name),)
    return Declaration(f"[tool.telly] in {pyproject}", table, name, version, default_packages, None, pyproject)


def _root_of(module, provides):
    """The package root that holds the entry point's ``module``: the whole package it belongs to
    (``mypkg`` for ``mypkg.cli``), or under a namespace package that package alone."""
    return next((root for root in provides if module == root or module.startswith(root + ".")),
                module.split(".")[0])


def checkout_at(directory):
    """``(pyproject.toml path, distribution name)`` of the source checkout that holds ``directory``
    (it or its nearest parent with a pyproject.toml) when that project opts in (a ``[tool.telly]``
    table, or an entry point in the ``telly`` group); None otherwise. Commands an author runs
    inside their own tree use it to know which package is meant (``--dry-run``, ``notice``)."""
    from ._toml import load_toml

    directory = os.path.abspath(directory)
    while not os.path.isfile(os.path.join(directory, "pyproject.toml")):
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent
    pyproject = os.path.join(directory, "pyproject.toml")
    try:
        data = load_toml(pyproject)
    except ConfigError:
        return None  # not for these commands to judge: the package's build says what is wrong
    tool, project = data.get("tool"), data.get("project")
    if not isinstance(project, dict) or not isinstance(project.get("name"), str):
        return None
    entry_points = project.get("entry-points")
    if (isinstance(tool, dict) and "telly" in tool) or \
            (isinstance(entry_points, dict) and ENTRY_POINT_GROUP in entry_points):
        return pyproject, project["name"]
    return None


def _wheel_declaration(dist, name, version, module, root):
    from ._toml import load_toml

    relative = os.path.join(*module.split("."), PACKAGE_SETTINGS_FILE)
    located = _settings_file(dist, relative)
    origin = f"{PACKAGE_SETTINGS_FILE} of distribution {name} {version} (entry point {ENTRY_POINT_GROUP}: {module})"
    if located is None:
        # Not "project_id is missing": the whole file is, and that is what the author must fix.
        # Stamped where it belongs: the file put there later rebuilds the index.
        return Declaration(origin, None, name, version, (root,),
                           f"{origin}: {relative} is missing from the installed distribution; ship it as package "
                           f"data (hatchling includes it by default; setuptools needs "
                           f"[tool.setuptools.package-data] {root} = [\"{PACKAGE_SETTINGS_FILE}\"])",
                           str(dist.locate_file(relative)))
    # The file is stamped (the last field): editing it leaves the site directory's stamp as it
    # was, and must rebuild the index all the same.
    try:
        table = load_toml(located)
    except ConfigError as exc:
        return Declaration(origin, None, name, version, (root,), str(exc), located)
    return Declaration(origin, table, name, version, (root,), None, located)


def _settings_file(dist, relative):
    """Where an installed distribution's ``telly.toml`` is: in site-packages for a wheel, in the
    source tree (its root or ``src/``) for an editable install, whose package files stay there.
    A non-editable install from a checkout must ship it, as a wheel from PyPI would."""
    candidates = [str(dist.locate_file(relative))]
    checkout = _checkout_dir(dist, editable_only=True)
    if checkout is not None:
        candidates += [os.path.join(checkout, relative), os.path.join(checkout, "src", relative)]
    return next((path for path in candidates if os.path.isfile(path)), None)


def search_path():
    """Site directories first (the ``.pth`` runs before they are all on sys.path), then sys.path."""
    seen = []
    for entry in index.site_dirs() + sys.path:
        if entry and entry not in seen and os.path.isdir(entry):
            seen.append(entry)
    return seen


def _metadata():
    if sys.version_info >= (3, 10):
        from importlib import metadata
    else:  # pragma: no cover - exercised on 3.9
        import importlib_metadata as metadata
    return metadata


def _provided_modules(dist, checkout):
    """The package roots that ``dist`` ships: the outermost regular package (or module) of each of
    its files, from its RECORD (or top_level.txt without one) and, for a checkout (editable or
    not), from the top of its tree and of ``src/``.

    A root is dotted under a namespace package: ``acme-textutils``, whose ``acme/`` has no
    ``__init__.py``, ships ``acme.textutils``, never ``acme``, which it shares with others.
    """
    provided = set()
    try:
        files = [entry.parts for entry in dist.files or ()]
    except Exception:
        _env.swallowed(f"reading the RECORD of {dist}")
        files = []
    regular = {parts[:-1] for parts in files if parts and parts[-1] == "__init__.py"}
    for parts in files:
        if not parts or parts[0] in ("..", "__pycache__") or parts[0].endswith((".dist-info", ".egg-info", ".data")):
            continue
        if len(parts) == 1:
            stem, dot, suffix = parts[0].partition(".")
            if dot and suffix.rpartition(".")[2] in ("py", "pyc", "so", "pyd") and stem.isidentifier():
                provided.add(stem)
            continue
        # The outermost package of the file: the shortest prefix that has an __init__.py.
        root = next((parts[:i] for i in range(1, len(parts)) if parts[:i] in regular), None)
        if root is not None and all(part.isidentifier() for part in root):
            provided.add(".".join(root))
    if not files:
        try:
            top_level = dist.read_text("top_level.txt") or ""
        except Exception:
            top_level = ""
        provided.update(line.strip() for line in top_level.splitlines() if line.strip().isidentifier())
    if checkout is not None:
        for root in (checkout, os.path.join(checkout, "src")):
            provided.update(_tree_roots(root))
    return tuple(sorted(provided))


def _tree_roots(directory, prefix=""):
    """The package roots at the top of a source tree, looking into namespace directories."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    roots = []
    for entry in names:
        stem, dot, suffix = entry.partition(".")
        if not stem.isidentifier():
            continue
        path = os.path.join(directory, entry)
        if dot:
            if suffix in ("py", "pyi"):
                roots.append(prefix + stem)
        elif os.path.isfile(os.path.join(path, "__init__.py")):
            roots.append(prefix + stem)
        elif prefix == "" and os.path.isdir(path) and stem not in ("tests", "test", "docs", "src", "build"):
            # A namespace directory (no __init__.py): the packages inside it are the roots.
            roots.extend(_tree_roots(path, f"{stem}."))
    return roots


def _validated(declaration):
    """The declaration, or the same with its table replaced by an error naming every schema violation."""
    if declaration.table is None:
        return declaration
    from ._schema import schema_path, table_errors

    errors = table_errors(declaration.table)
    if not errors:
        return declaration
    message = f"{declaration.source}: " + "; ".join(errors) + f" (schema: {schema_path()})"
    return declaration._replace(table=None, error=message)


def scan(path=None):
    """Every distribution on ``path`` that opted in (a list of Declaration), first one per name."""
    return _scan(path)[0]


def _scan(path=None):
    """(declarations, stamps): the stamps are the ``pyproject.toml`` of every checkout, opted in or not,
    so that adding, removing or re-adding a ``[tool.telly]`` table there rebuilds the index."""
    found = []
    stamps = []
    seen = set()
    for dist in _metadata().distributions(path=path or search_path()):
        try:
            name = dist.metadata["Name"]
        except Exception:
            _env.swallowed(f"reading the metadata of {dist}")
            continue
        if not name or normalize(name) in seen:
            continue
        seen.add(normalize(name))
        version = dist.version
        modules = [ep.value.partition(":")[0].strip() for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]
        checkout = _checkout_dir(dist)
        if checkout is not None:
            stamps.append(os.path.join(checkout, "pyproject.toml"))
        if not modules and checkout is None:
            continue  # neither route can declare anything: no need to read its RECORD
        provides = _provided_modules(dist, checkout)
        roots = tuple(dict.fromkeys(_root_of(m, provides) for m in modules if m))
        declaration = _pyproject_declaration(dist, name, version, roots)
        if declaration is None and modules:
            declaration = _wheel_declaration(dist, name, version, modules[0], roots[0])
        if declaration is not None:
            editable = checkout is not None and _checkout_dir(dist, editable_only=True) is not None
            found.append(_validated(declaration._replace(provides=provides, editable=editable)))
    return found, stamps


def rebuild_index():
    """Scan, write the index, and return the watched top-level names (forced ones excluded).

    The environment's forced packages are not written: they are read at every start, so
    changing ``TELLY_AUTOINST_PACKAGES`` needs no rebuild.
    """
    declarations, checkout_stamps = _scan()
    try:
        # The user config's forced packages only: the environment's are added at every start
        # (bootstrap), and writing them here would keep watching them after the variable is gone.
        user_forced = process_settings(environ={}, user_config=read_user_config()).force_packages
    except ConfigError:
        _env.swallowed("reading force_packages from the user config")
        user_forced = ()
    watched = set(user_forced)
    for declaration in declarations:
        packages = declaration.default_packages
        if declaration.table and isinstance(declaration.table.get("packages"), list):
            packages = tuple(p for p in declaration.table["packages"] if isinstance(p, str))
        # The stand-in looks at top-level names only; which modules under them belong to whom
        # (a namespace package is shared) is decided by resolve() at the first watched import.
        watched.update(top for top in (p.split(".")[0] for p in packages) if top.isidentifier())
    # marshal, not json: loading it on the first watched import costs no module import at all.
    # The index is per interpreter, so marshal's version-specific format is safe here.
    payload = marshal.dumps([_marshalable(d) for d in declarations]).hex()
    stamps = index.base_stamps() + checkout_stamps + [d.stamp for d in declarations if d.stamp]
    global _unwritten
    try:
        written = index.write(stamps, watched, payload)
    except OSError:  # a read-only home, a full disk, a refused directory: counting goes on
        _env.swallowed("writing the index of watched packages")
        written = None
    # Not on disk (TELLY_NO_CACHE, or it could not be written): the first watched import must
    # not scan a second time.
    _unwritten = None if written else (watched, payload)
    return watched, payload


_unwritten = None  # this process's scan, when rebuild_index could not write it


def current_index():
    """``(watched names, payload)``: the cached index, else this process's own scan (made once)."""
    cached = index.read()
    if cached is not None:
        return cached
    return _unwritten or rebuild_index()


def _marshalable(declaration):
    try:
        marshal.dumps(tuple(declaration))
    except ValueError:  # a TOML date or time: no setting takes one
        declaration = declaration._replace(table=None, error=f"{declaration.source}: dates and times are not valid "
                                                                  "values for any setting")
    return tuple(declaration)


def load_declarations(payload_text):
    """Declarations from the index payload (written by ``rebuild_index``)."""
    return [Declaration(*item) for item in marshal.loads(bytes.fromhex(payload_text))]


def resolve(declarations, forced=(), environ=None, user_config=None):
    """Layer every declaration into ProjectSettings.

    Returns ``(projects by module, errors)``: the modules are package roots, dotted under a
    namespace package (``acme.textutils``). An error names the table and the key to fix. A module
    claimed by two projects (or one inside another's) goes to the first; the second is an error.
    """
    user_config = read_user_config(environ) if user_config is None else user_config
    by_module: dict[str, Any] = {}
    errors = []
    for declaration in declarations:
        if declaration.error or declaration.table is None:
            errors.append(declaration.error or f"{declaration.source}: unreadable")
            continue
        try:
            project = project_settings(declaration.table, declaration.source, distribution=declaration.distribution,
                                       default_packages=declaration.default_packages, environ=environ,
                                       user_config=user_config, editable=declaration.editable)
        except ConfigError as exc:
            errors.append(str(exc))
            continue
        for module in project.packages:
            claims = _claims(module, declaration.provides)
            if not claims:
                errors.append(f"{declaration.source}: refused claim: module {module!r} is not provided by distribution "
                              f"{declaration.distribution} (it provides: {', '.join(declaration.provides) or 'none'});"
                              " a package may only count its own modules")
                continue
            for claim in claims:
                held = next((m for m in by_module if _overlap(m, claim)), None)
                if held is not None:
                    errors.append(f"{declaration.source}: conflict: module {claim!r} overlaps {held!r}, already "
                                  f"claimed by project {by_module[held].project_id!r} ({by_module[held].source})")
                    continue
                by_module[claim] = project
    for name in forced:
        if name not in by_module:
            by_module[name] = _forced_project(name, environ, user_config)
    return by_module, errors


def _claims(module, provides):
    """What a project that names ``module`` may count: ``module`` when its distribution ships it
    (or nothing is known of what it ships), else the distribution's own roots under it (a claim
    of the namespace ``acme`` by ``acme-textutils`` is ``acme.textutils``); empty when none."""
    if provides is None or any(module == root or module.startswith(root + ".") for root in provides):
        return [module]
    return [root for root in provides if root.startswith(module + ".")]


def _overlap(a, b):
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def _forced_project(name, environ, user_config):
    return project_settings({"project_id": f"local:{name}"}, FORCED_SOURCE, default_packages=(name,),
                            environ=environ, user_config=user_config)


def missing_packages(names):
    """The names among ``names`` that no finder on sys.path can find."""
    import importlib.util

    missing = []
    for name in names:
        try:
            if importlib.util.find_spec(name) is None:
                missing.append(name)
        except (ImportError, ValueError):
            missing.append(name)
    return missing
