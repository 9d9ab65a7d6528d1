"""Which objects of a module are counted, and under which keys: shared by the engines and --dry-run.

Rules (the same for every engine, so ``--dry-run`` lists exactly what runs):

* Module level: the public names (``__all__`` when the module defines it, else every name
  without a leading underscore) that hold a function or class *defined in this module*
  (``__module__`` is the module, and the qualified name has no ``<``: no lambdas, no closures).
  Re-exports from other modules are counted where they are defined, never here.
* Classes: the public functions, classmethods and staticmethods in the class ``__dict__`` whose
  qualified name places them in that class; nested classes the same way, recursively. A member
  may come from another module of the package: a package that publishes a class under its own
  name (httpx sets ``__module__ = "httpx"`` on its exports) keeps its methods' ``__module__``,
  and they are keyed under the class's key (``httpx.Client.get``).
* Wrapped functions: an object with a ``__wrapped__`` chain (``functools.lru_cache``,
  ``functools.wraps`` wrappers, ``singledispatch``) counts where a function would, under the
  key of the function at the end of the chain, if that function qualifies. What a call counts
  depends on the engine (docs/engines.md: in frame, the runs of that function's body).
* Properties: a public ``property`` in the class ``__dict__`` made with the decorator (its
  accessors are named like it) counts as ``pkg.mod.Class.name``: its getter, setter and deleter
  runs together. Other descriptors (``cached_property``, old-style ``property(_get, _set)``,
  ``__slots__`` members) are not counted.
* Instantiation: ``pkg.mod.Class`` counts ``Class(...)``. It is observed through the first
  Python ``__init__`` in the class's MRO that the package itself defines (its own or a base's),
  so a class whose ``__init__`` is ``object.__init__``, a C type's or another package's (a plain
  ``class C: pass``, an Enum, a NamedTuple, a Protocol) has no instantiation key.
* Keys are ``module.qualname``; ``include``/``exclude`` glob patterns (fnmatch, case-sensitive)
  filter them, and ``exclude`` wins.

Selection only reads attributes with ``vars()``: it never calls module ``__getattr__``, never
touches argument values and never changes an object.
"""

from types import BuiltinFunctionType, FunctionType

from . import _env
from .engines._base import ABSENT, in_package, make_target, package_init_owner, unwrapped

# Names for annotations only: never imported at run time (typing would cost an import).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any



def select(module, project):
    """The targets of ``module`` under ``project``'s include/exclude patterns, in definition order."""
    modname = module.__name__
    namespace = vars(module)
    roots = set(project.packages) | {modname.split(".")[0]}
    declared = namespace.get("__all__")
    if isinstance(declared, (list, tuple)) and all(isinstance(n, str) for n in declared):
        names = list(dict.fromkeys(declared))
    else:
        names = [n for n in list(namespace) if not n.startswith("_")]
    found: dict[str, Any] = {}
    for name in names:
        obj = namespace.get(name, ABSENT)
        if obj is ABSENT:
            continue
        try:
            if type(obj) is FunctionType and "__wrapped__" not in obj.__dict__:
                # Most public names are plain functions: _unwrapped and _defined_here, inline
                # (selection runs inside the host's import of every watched module).
                qualname = obj.__qualname__
                func = obj if obj.__module__ == modname and "." not in qualname and "<" not in qualname else None
            elif isinstance(obj, type):
                if _defined_here(obj, modname):
                    _select_class(obj, modname, roots, found)
                continue
            else:
                func = unwrapped(obj)
                if func is not None and not _defined_here(func, modname):
                    func = None
            if func is not None:
                key = f"{modname}.{func.__qualname__}"
                if key not in found:
                    found[key] = make_target((key, "function", module, name, obj, None))
        except Exception:  # a hostile object (broken __module__, proxy) is simply not counted
            _env.swallowed(f"selecting {modname}.{name}")
            continue
    if tuple(project.include) == ("*",) and not project.exclude:  # the default: no pattern to test
        return list(found.values())
    return [t for t in found.values() if _wanted(t.key, project)]


def uncounted(module, project):
    """``[(key, why)]``: what ``module`` publishes that no engine counts, for ``--dry-run``.

    Classes defined here without a package initializer (their instantiation has no key; their
    methods do), and the package's C functions listed in the module's ``__all__`` (no Python
    code to count).
    Only the dry-run calls this: the import path never pays for it.
    """
    modname = module.__name__
    namespace = vars(module)
    roots = set(project.packages) | {modname.split(".")[0]}
    declared = namespace.get("__all__")
    explicit = isinstance(declared, (list, tuple)) and all(isinstance(n, str) for n in declared)
    names = list(dict.fromkeys(declared)) if explicit else [n for n in list(namespace) if not n.startswith("_")]
    found: dict[str, str] = {}
    for name in names:
        obj = namespace.get(name, ABSENT)
        try:
            if isinstance(obj, type) and _defined_here(obj, modname):
                _uncounted_classes(obj, modname, roots, found)
            elif explicit and type(obj) is BuiltinFunctionType and (
                    obj.__module__ is None or in_package(obj.__module__, roots)):  # the package's own
                found.setdefault(f"{modname}.{name}", "it is a C function: there is no Python code to count in")
        except Exception:  # as in select: what cannot be inspected safely is left out
            _env.swallowed(f"listing what {modname}.{name} leaves uncounted")
    return [(key, why) for key, why in found.items() if _wanted(key, project)]


def _uncounted_classes(cls, modname, roots, found):
    key = f"{modname}.{cls.__qualname__}"
    if key in found:
        return
    if package_init_owner(cls, roots) is None:
        found[key] = ("no __init__ of the package runs when it is instantiated (its own or a base's): "
                      "its instantiation is not counted, its methods are")
    prefix = cls.__qualname__ + "."
    for name, value in list(vars(cls).items()):
        if not name.startswith("_") and isinstance(value, type) and _member(value, modname, roots, prefix):
            _uncounted_classes(value, modname, roots, found)


def _wanted(key, project):
    if tuple(project.include) == ("*",) and not project.exclude:
        return True
    import fnmatch  # with re: only for projects that set patterns

    if not any(fnmatch.fnmatchcase(key, p) for p in project.include):
        return False
    return not any(fnmatch.fnmatchcase(key, p) for p in project.exclude)


def _defined_here(obj, modname, prefix=""):
    qualname = getattr(obj, "__qualname__", None)
    return (
        isinstance(qualname, str)
        and "<" not in qualname
        and getattr(obj, "__module__", None) == modname
        and qualname.startswith(prefix)
        and "." not in qualname[len(prefix):]
    )


def _member(obj, modname, roots, prefix):
    """Whether ``obj`` is defined directly in the class whose qualified name is ``prefix``, in
    ``modname`` or, for a class published under another module's name, in the package."""
    if _defined_here(obj, modname, prefix):
        return True
    module = getattr(obj, "__module__", None)
    return in_package(module, roots) and _defined_here(obj, module, prefix)


def _select_class(cls, modname, roots, found):
    key = f"{modname}.{cls.__qualname__}"
    if key in found:
        return
    init_owner = package_init_owner(cls, roots)
    if init_owner is not None:
        found[key] = make_target((key, "class", cls, "__init__", cls, init_owner))
    prefix = cls.__qualname__ + "."
    start = len(prefix)
    for name, value in list(vars(cls).items()):
        if name.startswith("_"):
            continue
        try:
            if type(value) is FunctionType and "__wrapped__" not in value.__dict__:
                # A plain method, the common case: _unwrapped and _defined_here, inline.
                qualname = value.__qualname__
                kind = "method"
                func = value if (value.__module__ == modname or in_package(value.__module__, roots)) \
                    and qualname.startswith(prefix) and "<" not in qualname and "." not in qualname[start:] else None
            elif isinstance(value, type):
                if _member(value, modname, roots, prefix):
                    _select_class(value, modname, roots, found)
                continue
            elif type(value) is property:
                _select_property(cls, modname, roots, name, value, prefix, found)
                continue
            else:
                if isinstance(value, staticmethod):
                    kind, func = "staticmethod", unwrapped(value.__func__)
                elif isinstance(value, classmethod):
                    kind, func = "classmethod", unwrapped(value.__func__)
                else:
                    kind, func = "method", unwrapped(value)
                if func is not None and not _member(func, modname, roots, prefix):
                    func = None
            if func is not None:
                method_key = f"{modname}.{func.__qualname__}"
                if method_key not in found:
                    found[method_key] = make_target((method_key, kind, cls, name, value, None))
        except Exception:  # same as above: skip what cannot be inspected safely
            _env.swallowed(f"selecting the methods of {modname}.{getattr(cls, '__qualname__', cls)}")
            continue


def _select_property(cls, modname, roots, name, prop, prefix, found):
    accessors = [unwrapped(f) for f in (prop.fget, prop.fset, prop.fdel) if f is not None]
    if accessors and all(f is not None and f.__name__ == name and _member(f, modname, roots, prefix)
                         for f in accessors):
        key = f"{modname}.{cls.__qualname__}.{name}"
        if key not in found:
            found[key] = make_target((key, "property", cls, name, prop, None))


# -- plans: a selection kept with the module's cached code, replayed on a warm import -------------


def plan_of(module, targets):
    """What ``engines.rewrite.replay`` needs to find ``targets`` (``select(module, ...)``'s) again in a later
    run, as marshal-able data; None when a target's class cannot be reached from the module.

    ``(names, classes, found, plain)``: the module namespace's names in order; the path and the
    names, in order, of the ``__dict__`` of every class that holds a target or is one (a path
    leads from the module through class ``__dict__``\\ s); each target as ``(key, kind, number
    of its class or -1 for the module, name in it, qualified name and module of the function or
    class its key comes from)``; except the plain functions and methods (most targets), kept by
    holder as ``(number, names, keys, qualified names, modules)``, which a warm import checks
    and arms a holder at a time.
    """
    paths = _class_paths(module)
    classes: dict = {}  # path -> (number, members)
    found = []
    plain: dict = {}  # number -> the columns of its plain functions
    for target in targets:
        holder = target.obj if target.kind == "class" else target.owner
        number = -1
        if holder is not module:
            path = paths.get(id(holder))
            if path is None:
                return None
            number = classes.setdefault(path, (len(classes), tuple(vars(holder))))[0]
        if target.kind in ("class", "property"):  # keyed by the class's qualified name
            found.append((target.key, target.kind, number, target.name, holder.__qualname__, holder.__module__))
            continue
        func = unwrapped(target.obj.__func__ if target.kind in ("staticmethod", "classmethod") else target.obj)
        if target.kind in ("function", "method") and func is target.obj:
            columns = plain.setdefault(number, ([], [], [], []))
            for column, value in zip(columns, (target.name, target.key, func.__qualname__, func.__module__)):
                column.append(value)
        else:
            found.append((target.key, target.kind, number, target.name, func.__qualname__, func.__module__))
    return (tuple(vars(module)), tuple((path, members) for path, (_, members) in classes.items()), tuple(found),
            tuple((number, *map(tuple, columns)) for number, columns in plain.items()))


def _class_paths(module):
    """``{id(class): path}`` of the classes reachable from ``module``'s namespace (nested ones
    through the classes the module defines)."""
    paths = {}
    pending: list = [((), vars(module))]
    while pending:
        prefix, namespace = pending.pop()
        for name, value in list(namespace.items()):
            if isinstance(value, type) and id(value) not in paths:
                path = prefix + (name,)
                paths[id(value)] = path
                if value.__module__ == module.__name__ and len(path) < 8:
                    pending.append((path, vars(value)))
    return paths
