"""Selection: which objects of a module are counted, under which keys, and what is left alone."""

import sys
import textwrap
import types

import pytest

from telly_autoinst.engines._base import Target
from telly_autoinst.engines._base import package_init_owner as _package_init_owner
from telly_autoinst.selection import select
from tests.support.engines import forget_edgecases, import_edgecases, project


@pytest.fixture
def edge(monkeypatch):
    yield types.SimpleNamespace(**{name.rsplit(".", 1)[-1]: m for name, m in import_edgecases(monkeypatch).items()})
    forget_edgecases()


def _module(name, source, **extra):
    """A module object built from source, registered in sys.modules for the test."""
    module = types.ModuleType(name)
    module.__dict__.update(extra)
    exec(compile(textwrap.dedent(source), f"<{name}>", "exec"), vars(module))
    return module


def _keys(module, **table):
    return [t.key for t in select(module, project(**table))]


def test_module_functions_and_classes_defined_here(edge):
    keys = _keys(edge.core)
    for key in ("edgecases.core.add", "edgecases.core.fail", "edgecases.core.describe",
                "edgecases.core.Shape", "edgecases.core.Shape.describe", "edgecases.core.Shape.unit",
                "edgecases.core.Shape.sum_sides", "edgecases.core.Shape.Edge", "edgecases.core.Shape.Edge.double",
                "edgecases.core.Triangle", "edgecases.core.Point", "edgecases.core.FrozenPoint.moved",
                "edgecases.core.Color.label", "edgecases.core.Color.default", "edgecases.core.Plain.hello",
                "edgecases.core.Shape.label", "edgecases.core.Shape.size", "edgecases.core.cached_square",
                "edgecases.core.Shape.cached_sides"):
        assert key in keys
    assert len(keys) == len(set(keys))
    for absent in ("dumps", "path_join", "square_lambda", "add_one", "also_add", "_private", "_hidden",
                   "same_describe", "CALLS", "Color.RED", "_describe_list", "Shape.old_style", "Shape._get_old"):
        assert not any(k.endswith("." + absent) for k in keys), absent


def test_instantiation_keys_need_a_package_init(edge):
    keys = set(_keys(edge.core)) | set(_keys(edge.meta))
    assert {"edgecases.core.Shape", "edgecases.core.Triangle", "edgecases.core.Square", "edgecases.core.Point",
            "edgecases.meta.Registry", "edgecases.meta.PluginA", "edgecases.meta.Locked"} <= keys
    # object.__init__, Enum's, typing.Protocol's: no instantiation key.
    assert not keys & {"edgecases.core.Plain", "edgecases.core.CustomNew", "edgecases.core.Color",
                       "edgecases.meta.SupportsClose", "edgecases.meta.Figure", "edgecases.meta.Tagged"}
    triangle = next(t for t in select(edge.core, project()) if t.key == "edgecases.core.Triangle")
    assert triangle == Target("edgecases.core.Triangle", "class", edge.core.Triangle, "__init__",
                              edge.core.Triangle, edge.core.Shape)


def test_target_kinds_and_places(edge):
    targets = {t.key: t for t in select(edge.core, project())}
    shape = edge.core.Shape
    assert targets["edgecases.core.add"][:4] == ("edgecases.core.add", "function", edge.core, "add")
    assert targets["edgecases.core.Shape.describe"].kind == "method"
    assert targets["edgecases.core.Shape.unit"].kind == "classmethod"
    assert targets["edgecases.core.Shape.sum_sides"].kind == "staticmethod"
    for target in targets.values():
        if target.kind != "class":
            assert vars(target.owner)[target.name] is target.obj
    assert targets["edgecases.core.Shape.Edge.double"].owner is shape.Edge


def test_all_wins_both_ways_and_module_getattr_is_not_called(edge):
    assert _keys(edge.exported) == ["edgecases.exported.shown", "edgecases.exported._shown_private"]
    assert edge.exported.LAZY_LOADS == []


def test_reexports_are_counted_where_defined(edge):
    assert _keys(edge.edgecases) == ["edgecases.version"]


def test_include_and_exclude_patterns(edge):
    assert _keys(edge.core, include=["*.Shape", "*.Shape.*"], exclude=["*.Edge*"]) == [
        "edgecases.core.Shape", "edgecases.core.Shape.describe", "edgecases.core.Shape.unit",
        "edgecases.core.Shape.sum_sides", "edgecases.core.Shape.label", "edgecases.core.Shape.size",
        "edgecases.core.Shape.cached_sides"]
    assert _keys(edge.core, include=["edgecases.core.add"], exclude=["edgecases.core.add"]) == []
    assert _keys(edge.core, exclude=["*"]) == []


def test_closures_lambdas_and_local_classes_are_not_counted():
    module = _module("selmod", """
        def factory():
            def inner():
                pass
            class Local:
                def m(self):
                    pass
            return inner, Local
        inner, Local = factory()
        handler = lambda: None
        class Host:
            method = lambda self: None
            def real(self):
                pass
            def __init__(self):
                pass
            def __repr__(self):
                return "Host"
    """)
    assert _keys(module) == ["selmod.factory", "selmod.Host", "selmod.Host.real"]


def test_init_owner_skips_foreign_initializers():
    module = _module("selmod2", """
        import threading
        class Worker(threading.Thread):
            def work(self):
                pass
        class Base:
            def __init__(self):
                pass
        class Mixed(threading.Thread, Base):
            pass
    """)
    keys = _keys(module)
    assert "selmod2.Worker" not in keys and "selmod2.Worker.work" in keys
    assert _package_init_owner(module.Mixed, {"selmod2"}) is module.Base
    assert _package_init_owner(module.Worker, {"selmod2"}) is None


def test_hostile_attributes_are_skipped():
    class Hostile:
        def __getattribute__(self, name):
            raise RuntimeError(name)

    module = _module("selmod3", """
        def ok():
            pass
    """, hostile=Hostile())
    assert _keys(module) == ["selmod3.ok"]


def test_selection_changes_nothing(edge):
    before = dict(vars(edge.core)), {k: dict(vars(v)) for k, v in vars(edge.core).items() if isinstance(v, type)}
    first = select(edge.core, project())
    assert select(edge.core, project()) == first
    after = dict(vars(edge.core)), {k: dict(vars(v)) for k, v in vars(edge.core).items() if isinstance(v, type)}
    assert before == after and "selmod" not in sys.modules


def test_uncounted_lists_classes_without_a_package_init_and_the_packages_c_functions(edge):
    from telly_autoinst.selection import uncounted

    found = dict(uncounted(edge.core, project()))
    assert "no __init__ of the package runs" in found["edgecases.core.Plain"]
    assert "edgecases.core.Color" in found and "edgecases.core.Shape" not in found
    assert not set(found) & set(_keys(edge.core))  # nothing is both counted and listed
    # A C function in __all__: the package's own (here "math" stands for a C extension of it).
    fast = _module("fastpkg", "from math import sqrt\n__all__ = ['sqrt']\n")
    assert dict(uncounted(fast, project(packages=["fastpkg", "math"]))) == {
        "fastpkg.sqrt": "it is a C function: there is no Python code to count in"}
    assert uncounted(fast, project(packages=["fastpkg"])) == []  # someone else's C function


def test_methods_of_a_class_published_under_the_package_name_are_keyed_under_it():
    """httpx sets ``__module__ = "httpx"`` on its exported classes; their methods keep ``httpx._client``."""
    inner = _module("pubpkg._client", """
        class Client:
            def __init__(self):
                pass

            def get(self):
                return 1
    """)
    outer = _module("pubpkg", "", Client=inner.Client, __all__=["Client"])
    inner.Client.__module__ = "pubpkg"
    assert _keys(outer, packages=["pubpkg"]) == ["pubpkg.Client", "pubpkg.Client.get"]
    assert _keys(inner, packages=["pubpkg"]) == []


# -- plans: a selection kept with the cached code and replayed ----------------------------------


def _plan_round_trip(module, proj):
    import marshal

    from telly_autoinst.selection import plan_of

    targets = select(module, proj)
    plan = plan_of(module, targets)
    assert plan is not None
    return targets, marshal.loads(marshal.dumps(plan))  # as the code cache keeps it


def _replayed_targets(module, replayed):
    """A replay's targets, its groups of plain functions made targets as ``_arm`` would make them."""
    from telly_autoinst.engines._base import make_target

    targets, plain = replayed
    for holder, names, functions, keys in plain:
        kind = "function" if holder is module else "method"
        targets += [make_target((key, kind, holder, name, function, None))
                    for name, function, key in zip(names, functions, keys)]
    return targets


def test_a_replayed_plan_finds_what_select_finds(edge):
    from telly_autoinst.engines.rewrite import replay

    proj = project()
    for module in (edge.core, edge.meta):
        targets, plan = _plan_round_trip(module, proj)
        replayed = _replayed_targets(module, replay(module, proj, plan))
        assert len(replayed) == len(targets) and {t.key: t for t in replayed} == {t.key: t for t in targets}
        assert plan[3], "the plain functions are kept by holder"


@pytest.mark.parametrize("change", ["new name", "method replaced", "module reassigned", "member added",
                                    "qualname changed", "class replaced"])
def test_a_plan_whose_namespace_changed_is_not_replayed(change):
    from telly_autoinst.engines.rewrite import replay

    source = """
        def hello(a):
            return a

        class Greeter:
            def __init__(self):
                pass

            def greet(self):
                return 1

            @staticmethod
            def shout():
                return 2

            @property
            def size(self):
                return 3
        """
    module = _module("plannedmod", source)
    proj = project(project_id="p", packages=["plannedmod"])
    targets, plan = _plan_round_trip(module, proj)
    assert {t.key for t in targets} == {"plannedmod.hello", "plannedmod.Greeter", "plannedmod.Greeter.greet",
                                        "plannedmod.Greeter.shout", "plannedmod.Greeter.size"}
    namespace = vars(module)
    greeter = namespace["Greeter"]
    if change == "new name":
        namespace["extra"] = namespace["hello"]
    elif change == "method replaced":
        greeter.greet = staticmethod(greeter.shout)
    elif change == "module reassigned":
        namespace["hello"].__module__ = "elsewhere"
    elif change == "member added":
        greeter.louder = lambda self: 4
    elif change == "qualname changed":
        namespace["hello"].__qualname__ = "renamed"
    else:
        namespace["Greeter"] = type("Greeter", (), {"__module__": "plannedmod"})
    assert replay(module, proj, plan) is None
