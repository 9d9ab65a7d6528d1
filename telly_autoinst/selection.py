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

from functools import partial
from types import BuiltinFunctionType, FunctionType

from . import _debug
from ._record import record

# Names for annotations only: never imported at run time (typing would cost an import).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


# A record (see _record), not typing.NamedTuple: typing costs more to import than selecting a whole module.
_TargetFields: "Any" = record("Target", "key kind owner name obj init_owner", defaults=(None,))


class Target(_TargetFields):
    """One counted object: its key, its kind ("function", "method", "classmethod",
    "staticmethod", "property" or "class"), and where it lives.

    ``owner.__dict__[name]`` holds ``obj`` (for ``kind == "class"``, ``obj`` is the class and
    ``init_owner`` the class whose ``__dict__`` holds the ``__init__`` that observes it).
    """

    __slots__ = ()


# Selection makes a Target for every counted object of a watched package: from all six fields
# at once, in C, rather than through the record's keyword-aware ``__new__``.
_target = partial(tuple.__new__, Target)
_ABSENT = object()


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
        obj = namespace.get(name, _ABSENT)
        if obj is _ABSENT:
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
                func = _unwrapped(obj)
                if func is not None and not _defined_here(func, modname):
                    func = None
            if func is not None:
                key = f"{modname}.{func.__qualname__}"
                if key not in found:
                    found[key] = _target((key, "function", module, name, obj, None))
        except Exception:  # a hostile object (broken __module__, proxy) is simply not counted
            _debug.swallowed(f"selecting {modname}.{name}")
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
        obj = namespace.get(name, _ABSENT)
        try:
            if isinstance(obj, type) and _defined_here(obj, modname):
                _uncounted_classes(obj, modname, roots, found)
            elif explicit and type(obj) is BuiltinFunctionType and (
                    obj.__module__ is None or _in_package(obj.__module__, roots)):  # the package's own
                found.setdefault(f"{modname}.{name}", "it is a C function: there is no Python code to count in")
        except Exception:  # as in select: what cannot be inspected safely is left out
            _debug.swallowed(f"listing what {modname}.{name} leaves uncounted")
    return [(key, why) for key, why in found.items() if _wanted(key, project)]


def _uncounted_classes(cls, modname, roots, found):
    key = f"{modname}.{cls.__qualname__}"
    if key in found:
        return
    if _package_init_owner(cls, roots) is None:
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
    return _in_package(module, roots) and _defined_here(obj, module, prefix)


def _in_package(module, roots):
    return isinstance(module, str) and any(module == r or module.startswith(r + ".") for r in roots)


def _unwrapped(obj):
    """The function at the end of ``obj``'s ``__wrapped__`` chain (``obj`` itself for a plain
    function); None when that is no Python function.

    ``__wrapped__`` is read from the instance ``__dict__`` only, where ``functools.update_wrapper``
    puts it: ``getattr`` would run the ``__getattr__`` of every constant and typing alias in the
    module, which costs more than selecting it.
    """
    for _ in range(100):  # a __wrapped__ cycle must not hang selection
        if type(obj) is FunctionType:  # the common case, first
            wrapped = obj.__dict__.get("__wrapped__")
            if wrapped is None:
                return obj
            obj = wrapped
            continue
        # What vars() reads, without raising (and catching) a TypeError for every constant.
        namespace = getattr(obj, "__dict__", None)
        if namespace is None:  # no __dict__: an int, a str, a C function
            return None
        wrapped = namespace.get("__wrapped__")
        if wrapped is None:
            return obj if isinstance(obj, FunctionType) else None
        if isinstance(obj, type):
            return None
        obj = wrapped
    return None


def _select_class(cls, modname, roots, found):
    key = f"{modname}.{cls.__qualname__}"
    if key in found:
        return
    init_owner = _package_init_owner(cls, roots)
    if init_owner is not None:
        found[key] = _target((key, "class", cls, "__init__", cls, init_owner))
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
                func = value if (value.__module__ == modname or _in_package(value.__module__, roots)) \
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
                    kind, func = "staticmethod", _unwrapped(value.__func__)
                elif isinstance(value, classmethod):
                    kind, func = "classmethod", _unwrapped(value.__func__)
                else:
                    kind, func = "method", _unwrapped(value)
                if func is not None and not _member(func, modname, roots, prefix):
                    func = None
            if func is not None:
                method_key = f"{modname}.{func.__qualname__}"
                if method_key not in found:
                    found[method_key] = _target((method_key, kind, cls, name, value, None))
        except Exception:  # same as above: skip what cannot be inspected safely
            _debug.swallowed(f"selecting the methods of {modname}.{getattr(cls, '__qualname__', cls)}")
            continue


def _select_property(cls, modname, roots, name, prop, prefix, found):
    accessors = [_unwrapped(f) for f in (prop.fget, prop.fset, prop.fdel) if f is not None]
    if accessors and all(f is not None and f.__name__ == name and _member(f, modname, roots, prefix)
                         for f in accessors):
        key = f"{modname}.{cls.__qualname__}.{name}"
        if key not in found:
            found[key] = _target((key, "property", cls, name, prop, None))


def _package_init_owner(cls, roots):
    """The first class in ``cls.__mro__`` whose own ``__init__`` is a function of one of ``roots``.

    Foreign initializers (``object``, C types, other packages) are skipped rather than ending the
    search, because a cooperative one still calls ``super().__init__()`` into the package's.
    """
    for klass in cls.__mro__:
        init = vars(klass).get("__init__")
        if init is None or not isinstance(init, FunctionType):
            continue
        if _in_package(getattr(init, "__module__", None), roots):
            return klass
    return None


# -- plans: a selection kept with the module's cached code, replayed on a warm import -------------


def plan_of(module, targets):
    """What :func:`replay` needs to find ``targets`` (``select(module, ...)``'s) again in a later
    run, as marshal-able data; None when a target's class cannot be reached from the module.

    ``(names, classes, found)``: the module namespace's names in order; the path and the names,
    in order, of the ``__dict__`` of every class that holds a target or is one (a path leads from
    the module through class ``__dict__``\\ s); and each target as ``(key, kind, number of its
    class or -1 for the module, name in it, qualified name and module of the function or class
    its key comes from)``.
    """
    paths = _class_paths(module)
    classes: dict = {}  # path -> (number, members)
    found = []
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
        else:
            func = _unwrapped(target.obj.__func__ if target.kind in ("staticmethod", "classmethod") else target.obj)
            found.append((target.key, target.kind, number, target.name, func.__qualname__, func.__module__))
    return tuple(vars(module)), tuple((path, members) for path, (_, members) in classes.items()), tuple(found)


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


def replay(module, project, plan):
    """The targets that ``plan`` (see :func:`plan_of`) names in ``module``, as :func:`select`
    found them; None when the namespace is not what the plan saw (its names, the members of a
    class it uses, a target of another kind or name): then the caller selects afresh."""
    namespace = vars(module)
    names, classes, found = plan
    if tuple(namespace) != names:
        return None
    holders = []
    for path, members in classes:
        cls = _at(namespace, path)
        if cls is None or tuple(vars(cls)) != members:
            return None
        holders.append(cls)
    roots = None
    targets = []
    for key, kind, number, name, qualname, modname in found:
        holder = module if number < 0 else holders[number]
        if kind == "class" or kind == "property":
            if holder.__qualname__ != qualname or holder.__module__ != modname:
                return None
        if kind == "class":
            if roots is None:
                roots = set(project.packages) | {module.__name__.split(".")[0]}
            init_owner = _package_init_owner(holder, roots)
            if init_owner is None:
                return None
            targets.append(_target((key, kind, holder, "__init__", holder, init_owner)))
            continue
        obj = vars(holder).get(name, _ABSENT)
        if kind == "property":
            if type(obj) is not property:
                return None
        else:
            if type(obj) is FunctionType and "__wrapped__" not in obj.__dict__:
                func = obj if kind == "function" or kind == "method" else None
            elif kind == "staticmethod" or kind == "classmethod":
                func = _unwrapped(obj.__func__) if isinstance(obj, (staticmethod, classmethod)) else None
            elif isinstance(obj, (staticmethod, classmethod)):
                func = None  # select gives it a kind of its own
            else:
                func = _unwrapped(obj)
            if func is None or func.__qualname__ != qualname or func.__module__ != modname:
                return None
        targets.append(_target((key, kind, holder, name, obj, None)))
    return targets


def _at(namespace, path):
    """The class at ``path`` (names through class ``__dict__``\\ s) from a module namespace, or None."""
    obj = None
    for name in path:
        obj = namespace.get(name)
        if not isinstance(obj, type):
            return None
        namespace = vars(obj)
    return obj
