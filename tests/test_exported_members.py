"""The public API is exactly the package's ``__all__``; every other module marks private names with ``_``.

``__all__`` has one meaning here: the public API. Only ``telly_autoinst/__init__.py`` declares one
(tested below); the other modules, client and collector alike, are internal, and a leading
underscore alone tells a module's private helpers from the names its neighbours may import.
"""

import ast
from pathlib import Path

import pytest

import telly_autoinst

ROOT = Path(telly_autoinst.__file__).parents[1]
# Where each top-level package's sources live: the client, the bootstrap module and its Python 3.9
# helper beside it (see _telly_autoinst_bootstrap) and the collector, a distribution of its own in
# collector/.
SOURCES = {"telly_autoinst": ROOT, "_telly_autoinst_bootstrap": ROOT, "_telly_autoinst_stdlib": ROOT,
           "telly_autoinst_collector": ROOT / "collector"}
MODULES = sorted(
    [p.relative_to(ROOT).as_posix() for p in (ROOT / "telly_autoinst").rglob("*.py")]
    + ["_telly_autoinst_bootstrap.py", "_telly_autoinst_stdlib.py"]
    + [p.relative_to(ROOT).as_posix() for p in (ROOT / "collector" / "telly_autoinst_collector").rglob("*.py")])


def _dotted(name):
    """The module name of a path in MODULES: ``collector/telly_autoinst_collector/app.py`` -> its parts."""
    parts = list(Path(name).with_suffix("").parts)
    return parts[1:] if parts[0] == "collector" else parts


def test_all_names_resolve():
    for name in telly_autoinst.__all__:
        assert getattr(telly_autoinst, name) is not None


def test_public_names_are_exactly_all():
    public = {n for n in dir(telly_autoinst) if not n.startswith("_")}
    submodules = {n for n in public if isinstance(getattr(telly_autoinst, n), type(telly_autoinst))}
    assert public - submodules == set(telly_autoinst.__all__)


def test_lazily_loaded_names_are_exactly_all():
    # dir() is built from __all__, so the check above cannot see a name dropped from both;
    # _LAZY is what __getattr__ really serves.
    assert sorted(telly_autoinst._LAZY) == sorted(telly_autoinst.__all__)


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        telly_autoinst.no_such_name  # noqa: B018  (the attribute access is the act under test)


def _declares_all(tree):
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            return True
    return False


def test_modules_are_found():
    assert {"telly_autoinst/__init__.py", "telly_autoinst/finder.py", "telly_autoinst/engines/__init__.py",
            "_telly_autoinst_bootstrap.py", "collector/telly_autoinst_collector/app.py"} <= set(MODULES)


@pytest.mark.parametrize("name", [m for m in MODULES if m != "telly_autoinst/__init__.py"])
def test_only_the_package_declares_all(name):
    assert not _declares_all(ast.parse((ROOT / name).read_text(encoding="utf-8")))


@pytest.mark.parametrize("name", MODULES)
def test_every_module_states_its_concern(name):
    docstring = ast.get_docstring(ast.parse((ROOT / name).read_text(encoding="utf-8")))
    assert docstring and docstring.strip(), f"{name} needs a docstring stating its concern"


def _private_imports(name):
    """``from <package module> import _name`` in module ``name``, where ``_name`` is no module."""
    path = ROOT / name
    dotted = _dotted(name)
    package = dotted[:-1]  # for an __init__, dotted ends in "__init__": its package is itself
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package[:len(package) - (node.level - 1)] + (node.module.split(".") if node.module else [])
        elif (node.module or "").partition(".")[0] in SOURCES:
            base = node.module.split(".")
        else:
            continue
        for alias in node.names:
            submodule = SOURCES[base[0]].joinpath(*base, alias.name)
            is_module = submodule.with_suffix(".py").exists() or (submodule / "__init__.py").exists()
            if alias.name.startswith("_") and not alias.name.startswith("__") and not is_module:
                found.append(f"{'.'.join(base)}.{alias.name}")
    return found


@pytest.mark.parametrize("name", MODULES)
def test_no_module_imports_another_modules_private_name(name):
    # A leading underscore is the only privacy marker left: it must mean "this module only".
    assert _private_imports(name) == []
