"""The edge-case suite every engine must pass: counts are right and the package behaves as before."""

import abc
import asyncio
import copy
import dataclasses
import functools
import inspect
import json
import multiprocessing
import os
import pickle
import subprocess
import sys
import threading
import types

import pytest

from telly_autoinst.engines import instrumented_keys, uncounted_keys
from telly_autoinst.selection import select
from tests.support.engines import ENGINES, forget_edgecases, instrumented
from tests.support.venvs import ROOT


@pytest.fixture(params=ENGINES)
def edge(request, monkeypatch):
    yield instrumented(monkeypatch, request.param)
    forget_edgecases()


# What the in-frame engine cannot count, and lists as not counted rather than handing to wrapt:
# instantiation through a generated __init__ (dataclasses) or a module-level function reused as one.
NOT_IN_FRAME = {
    "edgecases.core.Point": "generated at run time",
    "edgecases.core.FrozenPoint": "generated at run time",
    "edgecases.meta.Configured": "not defined in a class body",
}


def _in_frame(edge):
    return edge.engine.name == "rewrite"


def test_engine_instruments_exactly_the_selection(edge):
    selected = {t.key for m in (edge.core, edge.meta, edge.aio, edge.exported, edge.pkg)
                for t in select(m, edge.project)}
    uncounted = uncounted_keys(edge.project.project_id)
    if _in_frame(edge):
        assert set(uncounted) == set(NOT_IN_FRAME)
        for key, why in NOT_IN_FRAME.items():
            assert why in uncounted[key]
    else:
        assert uncounted == {}
    counted = selected - set(uncounted)
    assert instrumented_keys(edge.project.project_id) == counted
    assert {k for keys in edge.keys.values() for k in keys} == counted
    # Selection reads the same keys after instrumentation (the dry-run may run at any time).
    assert {t.key for t in select(edge.core, edge.project)} <= selected


def test_module_function_counts_and_returns(edge):
    assert edge.core.add(2, 3) == 5
    assert edge.core.add(b=1, a=2) == 3
    assert edge.take() == {"edgecases.core.add": 2}
    assert edge.take() == {}


def test_names_of_one_object_share_one_counter(edge):
    core, pkg = edge.core, edge.pkg
    assert core.add is core.also_add is pkg.add is pkg.plus
    assert vars(core.Shape)["same_describe"] is vars(core.Shape)["describe"]
    core.add(1, 1), core.also_add(1, 1), pkg.add(1, 1), pkg.plus(1, 1)
    shape = core.Shape("s")
    shape.describe(), shape.same_describe()
    stats = edge.take()
    assert stats["edgecases.core.add"] == 4
    assert stats["edgecases.core.Shape.describe"] == 2


def test_foreign_lambda_and_partial_objects_are_untouched(edge):
    core = edge.core
    assert core.dumps is json.dumps and edge.pkg.loads is json.loads and core.path_join is os.path.join
    assert type(core.square_lambda) is types.FunctionType and core.square_lambda(3) == 9
    assert type(core.add_one) is functools.partial and core.add_one(2) == 3
    keys = instrumented_keys(edge.project.project_id)
    assert not any("lambda" in k or "add_one" in k or "dumps" in k or "loads" in k for k in keys)
    assert "edgecases.core._private" not in keys and core._private() == "private"
    # add_one holds the original add, captured before instrumentation: only sys.monitoring,
    # which changes no object, sees that call.
    assert edge.take() == ({} if edge.engine.name == "wrapt" else {"edgecases.core.add": 1})


def test_exceptions_propagate_unchanged(edge):
    with pytest.raises(ValueError, match="boom") as info:
        edge.core.fail("boom")
    assert type(info.value.__traceback__) is types.TracebackType
    assert info.traceback[-1].name == "fail"
    assert edge.take() == {"edgecases.core.fail": 1}


def test_dataclasses(edge):
    core = edge.core
    point = core.Point(1, 2)
    assert [f.name for f in dataclasses.fields(core.Point)] == ["x", "y"]
    assert dataclasses.asdict(point) == {"x": 1, "y": 2} and point == core.Point(1, 2)
    assert dataclasses.replace(point, y=5) == core.Point(1, 5)
    frozen = core.FrozenPoint(1, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        frozen.x = 3
    assert frozen.moved(2) == core.FrozenPoint(3, 2)
    assert point.norm1() == 3
    instances = {} if _in_frame(edge) else {"edgecases.core.Point": 4, "edgecases.core.FrozenPoint": 3}
    assert edge.take() == {**instances, "edgecases.core.FrozenPoint.moved": 1, "edgecases.core.Point.norm1": 1}
    assert type(vars(core.Point)["__init__"]) is types.FunctionType or not _in_frame(edge)


def test_enum(edge):
    Color = edge.core.Color
    assert list(Color) == [Color.RED, Color.GREEN] and len(Color) == 2
    assert Color(1) is Color.RED and Color["GREEN"] is Color.GREEN
    assert type(Color.RED) is Color and isinstance(Color.RED, Color)
    assert Color.RED.label() == "red" and Color.default() is Color.RED
    assert pickle.loads(pickle.dumps(Color.GREEN)) is Color.GREEN
    assert edge.take() == {"edgecases.core.Color.label": 1, "edgecases.core.Color.default": 1}


def test_classes_are_not_proxied(edge):
    core = edge.core
    shape = core.Shape("a")
    assert type(core.Shape) is type and type(shape) is core.Shape
    assert isinstance(shape, core.Shape) and issubclass(core.Square, core.Shape)
    clone = pickle.loads(pickle.dumps(shape))
    assert type(clone) is core.Shape and clone.name == "a"
    assert copy.deepcopy(shape).name == "a" and copy.copy(shape).name == "a"
    assert core.Shape.__mro__ == (core.Shape, object)
    assert edge.take() == {"edgecases.core.Shape": 1}


def test_method_kinds(edge):
    core = edge.core
    shape = core.Shape("s")
    assert shape.describe() == "s with 0 sides"
    assert core.Shape.describe(shape) == "s with 0 sides"
    assert core.Shape.unit().name == "unit" and shape.unit().name == "unit"
    assert core.Shape.sum_sides(shape, core.Square(1)) == 4 and shape.sum_sides() == 0
    assert shape.label == "S"  # properties work and are counted (see below)
    assert shape._hidden() == "hidden"
    assert edge.take() == {
        "edgecases.core.Shape": 3, "edgecases.core.Square": 1,
        "edgecases.core.Shape.describe": 2, "edgecases.core.Shape.unit": 2,
        "edgecases.core.Shape.sum_sides": 2, "edgecases.core.Shape.label": 1,
    }


def test_nested_classes(edge):
    edge_ = edge.core.Shape.Edge(2)
    assert edge_.double() == 4 and type(edge_) is edge.core.Shape.Edge
    assert edge.take() == {"edgecases.core.Shape.Edge": 1, "edgecases.core.Shape.Edge.double": 1}


def test_instantiation_is_counted_under_the_class_created(edge):
    core = edge.core
    core.Triangle("t")  # inherits Shape.__init__
    core.Square(2)  # own __init__ calling super().__init__()
    shape = core.Shape("x")
    core.Shape.__init__(shape, "y")  # observed like Shape("y"): the documented cost of observing __init__

    class UserSquare(core.Square):  # outside the package, own __init__
        def __init__(self, side):
            super().__init__(side)

    class UserTriangle(core.Triangle):  # outside the package, no __init__
        pass

    UserSquare(1), UserTriangle("u")
    stats = edge.take()
    assert stats == {"edgecases.core.Triangle": 2, "edgecases.core.Square": 2, "edgecases.core.Shape": 2}


def test_initializers_from_other_modules_and_private_bases(edge):
    meta = edge.meta
    assert meta.Hexagon("h").describe() == "h with 6 sides" and meta.Parcel(2).weight() == 4
    assert meta.Shape is edge.core.Shape  # a re-export: counted where defined only
    assert edge.take() == {"edgecases.meta.Hexagon": 1, "edgecases.meta.Parcel": 1,
                           "edgecases.meta.Parcel.weight": 1, "edgecases.core.Shape.describe": 1}


def test_one_function_as_several_initializers_or_as_function_and_initializer(edge):
    meta = edge.meta
    assert meta.Twin(1).n == 1 and meta.TwinAlias(2).n == 2 and meta.TwinAlias().n == 0
    assert meta.Configured(3).n == 3
    plain = types.SimpleNamespace()
    meta.setup(plain, 4)
    assert plain.n == 4
    # In frame, `setup` counts each run of its body, also the one as Configured's __init__.
    setup_runs = 2 if edge.engine.name == "rewrite" else 1
    configured = {} if _in_frame(edge) else {"edgecases.meta.Configured": 1}
    assert edge.take() == {"edgecases.meta.Twin": 1, "edgecases.meta.TwinAlias": 2,
                           **configured, "edgecases.meta.setup": setup_runs}


def test_classes_without_package_init_keep_their_behaviour(edge):
    core = edge.core
    assert core.CustomNew(1, 2).total() == 3
    assert core.Plain().hello() == "hello"
    with pytest.raises(TypeError, match="Plain\\(\\) takes no arguments"):
        core.Plain(1)
    assert "__init__" not in vars(core.Plain) and "__init__" not in vars(core.CustomNew)
    keys = instrumented_keys(edge.project.project_id)
    assert "edgecases.core.Plain" not in keys and "edgecases.core.CustomNew" not in keys
    assert edge.take() == {"edgecases.core.CustomNew.total": 1, "edgecases.core.Plain.hello": 1}


def test_singledispatch(edge):
    describe = edge.core.describe
    assert (describe(1), describe([1]), describe("x")) == ("int", "list", "object")

    @describe.register(float)
    def _(obj):
        return "float"

    assert describe(1.5) == "float" and describe.dispatch(float) is _
    assert set(describe.registry) >= {object, int, list, float}
    # In frame, the key counts runs of the body defined under it: the other implementations
    # registered with singledispatch are functions of their own (named `_`, never counted).
    assert edge.take() == {"edgecases.core.describe": 1 if edge.engine.name == "rewrite" else 4}


def test_functions_decorated_with_wraps(edge):
    core = edge.core
    assert core.decorated_one(1) == 2 and core.decorated_two(1) == 3 and core.decorated_two(0) == 2
    assert core.decorated_one.__name__ == "decorated_one"
    assert edge.take() == {"edgecases.core.decorated_one": 1, "edgecases.core.decorated_two": 2}


def test_abcs(edge):
    meta = edge.meta
    rect = meta.Rect(2, 3)
    assert rect.twice() == 12 and isinstance(rect, meta.Figure)
    with pytest.raises(TypeError):
        meta.Figure()
    assert meta.Figure.area.__isabstractmethod__ and meta.Figure.__abstractmethods__ == frozenset({"area"})

    class Incomplete(meta.Figure):
        pass

    with pytest.raises(TypeError):
        Incomplete()

    class Virtual:
        def area(self):
            return 1

    meta.Figure.register(Virtual)
    assert issubclass(Virtual, meta.Figure) and isinstance(Virtual(), abc.ABC)
    assert edge.take() == {"edgecases.meta.Rect": 1, "edgecases.meta.Figure.twice": 1,
                           "edgecases.meta.Rect.area": 1}


def test_protocols(edge):
    meta = edge.meta
    resource = meta.Resource()
    assert isinstance(resource, meta.SupportsClose) and not isinstance(object(), meta.SupportsClose)
    resource.close()
    assert resource.closed
    assert edge.take() == {"edgecases.meta.Resource": 1, "edgecases.meta.Resource.close": 1}


def test_generics(edge):
    Box = edge.meta.Box
    box = Box[int](3)
    assert box.get() == 3 and type(box) is Box and box.__orig_class__ == Box[int]
    assert Box.__parameters__ and Box[str] is not Box
    assert edge.take() == {"edgecases.meta.Box": 1, "edgecases.meta.Box.get": 1}


def test_init_subclass_and_restrictive_metaclass(edge):
    meta = edge.meta

    class PluginB(meta.Registry):
        pass

    assert meta.Registry.plugins[-1] == "PluginB" and PluginB().run() == "PluginB"
    assert meta.PluginA().run() == "PluginA"
    locked = meta.Locked(1)
    assert locked.ping() == "pong"
    with pytest.raises(AttributeError, match="frozen"):
        meta.Locked.anything = 1
    assert meta.TaggedThing.describe_class() == "class TaggedThing tagged taggedthing"
    assert meta.TaggedThing(2).n == 2
    assert edge.take() == {
        "edgecases.meta.Registry": 1, "edgecases.meta.PluginA": 1, "edgecases.meta.Registry.run": 2,
        "edgecases.meta.Locked": 1, "edgecases.meta.Locked.ping": 1,
        "edgecases.meta.Tagged.describe_class": 1, "edgecases.meta.TaggedThing": 1,
    }


def test_inspect(edge):
    core, aio = edge.core, edge.aio
    shape = core.Shape("s")
    assert str(inspect.signature(core.add)) == "(a, b)"
    assert str(inspect.signature(core.Shape)) == "(name)"
    assert str(inspect.signature(core.Triangle)) == "(name)"
    assert str(inspect.signature(core.Square)) == "(side)"
    assert str(inspect.signature(core.Point)) == "(x: int, y: int = 0) -> None"
    assert str(inspect.signature(core.Shape.unit)) == "()"
    assert str(inspect.signature(shape.describe)) == "()"
    assert str(inspect.signature(core.Shape.sum_sides)) == "(*shapes)"
    assert inspect.isfunction(core.add) and inspect.ismethod(shape.describe)
    assert inspect.iscoroutinefunction(aio.fetch) and inspect.iscoroutinefunction(aio.Service().call)
    assert inspect.isasyncgenfunction(aio.ticker) and inspect.isgeneratorfunction(aio.countdown)
    assert inspect.isgeneratorfunction(aio.Service.stream)
    assert core.add.__name__ == "add" and core.add.__doc__ is None and core.square.__doc__.startswith("A module")


def test_async_functions_and_generators(edge):
    aio = edge.aio

    async def main():
        service = aio.Service()
        results = [await aio.fetch(2), await service.call(5)]
        results.append([i async for i in aio.ticker(3)])
        with pytest.raises(KeyError):
            await service.failing()
        return results

    assert asyncio.run(main()) == [4, 5, [0, 1, 2]]
    assert edge.take() == {"edgecases.aio.fetch": 1, "edgecases.aio.ticker": 1, "edgecases.aio.Service": 1,
                           "edgecases.aio.Service.call": 1, "edgecases.aio.Service.failing": 1}


def test_generators_stay_lazy(edge):
    aio = edge.aio
    gen = aio.countdown(2)
    assert aio.STARTED == [] and inspect.isgenerator(gen)
    assert list(gen) == [2, 1] and aio.STARTED == [2]
    assert list(aio.Service().stream(2)) == [0, 1]
    assert edge.take() == {"edgecases.aio.countdown": 1, "edgecases.aio.Service": 1,
                           "edgecases.aio.Service.stream": 1}


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_and_copy_of_functions_and_methods(edge, protocol):
    core = edge.core
    assert pickle.loads(pickle.dumps(core.square, protocol)) is core.square
    assert copy.deepcopy(core.square) is core.square and copy.copy(core.square) is core.square
    shape = core.Shape("p")
    bound = pickle.loads(pickle.dumps(shape.describe, protocol))
    assert bound() == "p with 0 sides" and type(bound.__self__) is core.Shape
    assert copy.deepcopy(shape.describe)() == "p with 0 sides" and copy.copy(shape.describe)() == "p with 0 sides"
    assert pickle.loads(pickle.dumps(core.Shape.unit, protocol))().name == "unit"
    assert pickle.loads(pickle.dumps(core.Shape.sum_sides, protocol))(shape) == 0
    assert pickle.loads(pickle.dumps(core.Color.RED.label, protocol))() == "red"
    stats = edge.take()
    assert stats["edgecases.core.Shape.describe"] == 3 and stats["edgecases.core.Shape.unit"] == 1


def test_multiprocessing_spawn_pickles_module_functions(edge):
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        assert pool.map(edge.core.square, [1, 2, 3]) == [1, 4, 9]
    process = context.Process(target=edge.core.add, args=(1, 2))
    process.start()
    process.join(60)
    assert process.exitcode == 0


def test_counts_are_exact_under_threads(edge):
    add, shape = edge.core.add, edge.core.Shape("t")
    barrier = threading.Barrier(8)

    def work():
        barrier.wait()
        for _ in range(25_000):
            add(1, 2)
            shape.describe()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert edge.take() == {"edgecases.core.Shape": 1, "edgecases.core.add": 200_000,
                           "edgecases.core.Shape.describe": 200_000}


def test_repeated_instrument_and_reload_never_double_count(edge):
    import importlib

    assert edge.engine.instrument(edge.core, edge.project) == []
    edge.core.add(1, 1)
    assert edge.take() == {"edgecases.core.add": 1}
    core = importlib.reload(edge.core)
    keys = edge.engine.instrument(core, edge.project)
    assert "edgecases.core.add" in keys and edge.engine.instrument(core, edge.project) == []
    core.add(1, 1), core.Shape("r").describe(), core.Triangle("t")
    assert edge.take() == {"edgecases.core.add": 1, "edgecases.core.Shape": 1,
                           "edgecases.core.Shape.describe": 1, "edgecases.core.Triangle": 1}


def test_include_exclude_patterns(monkeypatch):
    for engine in ("wrapt",) + (("monitoring",) if sys.version_info >= (3, 12) else ()):
        edge = instrumented(monkeypatch, engine, include=["edgecases.core.*"],
                            exclude=["edgecases.core.Shape.*", "*.fail"])
        keys = instrumented_keys(edge.project.project_id)
        assert "edgecases.core.add" in keys and "edgecases.core.Shape" in keys
        assert not any(k.startswith(("edgecases.meta.", "edgecases.core.Shape.")) for k in keys)
        assert "edgecases.core.fail" not in keys
        edge.core.Shape("s").describe(), edge.meta.Locked(1).ping(), edge.core.Triangle("t")
        assert edge.take() == {"edgecases.core.Shape": 1, "edgecases.core.Triangle": 1}
        forget_edgecases()


def test_properties_count_every_accessor_under_one_key(edge):
    shape = edge.core.Shape("s")
    assert shape.label == "S" and shape.size == 0
    shape.size = 5
    assert shape.size == 5
    del shape.size
    assert shape.size == 0 and shape.old_style == "old"
    assert isinstance(vars(edge.core.Shape)["size"], property) and edge.core.Shape.size.__doc__.startswith("A prop")
    assert edge.take() == {"edgecases.core.Shape": 1, "edgecases.core.Shape.label": 1, "edgecases.core.Shape.size": 5}


def test_lru_cache_keeps_its_cache_and_counts_under_the_function_key(edge):
    core = edge.core
    assert [core.cached_square(3), core.cached_square(3), core.cached_square(4)] == [9, 9, 16]
    assert core.cached_square.cache_info().hits == 1 and core.cached_square.__wrapped__(2) == 4
    shape = core.Square("sq")
    assert shape.cached_sides() == shape.cached_sides() == 4
    stats = edge.take()
    # wrapt wraps the cache (every call through it); in frame, the body runs on misses and on
    # calls of __wrapped__ (the monitoring engine hands wrapped functions to wrapt).
    in_frame = edge.engine.name == "rewrite"
    assert stats["edgecases.core.cached_square"] == 3
    assert stats["edgecases.core.Shape.cached_sides"] == (1 if in_frame else 2)


_FORK_WHILE_LOCKED = """
import gc, os, threading, types, weakref
from telly_autoinst.engines.{module} import {engine}
from telly_autoinst.settings import project_settings
engine = {engine}()
held, release = threading.Event(), threading.Event()
def hold():
    with engine._lock:  # another thread is in the middle of instrumenting a module
        held.set()
        release.wait()
threading.Thread(target=hold, daemon=True).start()
held.wait()
child = os.fork()
if child == 0:
    module = types.ModuleType("forked_mod")
    exec("def f():\\n    return 1\\n", vars(module))
    keys = engine.instrument(module, project_settings({{"project_id": "p", "packages": ["forked_mod"]}}, "t",
                                                      environ={{}}, user_config={{}}))
    os._exit(0 if keys == {keys!r} else 3)
release.set()
_, status = os.waitpid(child, 0)
# The fork handler holds the engine weakly: an engine holds every function and class it counts.
alive = weakref.ref(engine)
del engine
gc.collect()
print(os.waitstatus_to_exitcode(status), alive() is None)
"""


# The rewrite engine counts only what its module's source defines: a module made by exec has nothing.
@pytest.mark.parametrize("module, engine, keys", [("wrapping", "WraptEngine", ["forked_mod.f"]),
                                                  ("rewrite", "RewriteEngine", [])], ids=["wrapt", "rewrite"])
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_fork_while_an_engine_is_locked_leaves_the_child_a_free_lock_and_the_engine_collectable(
        tmp_path, module, engine, keys):
    script = _FORK_WHILE_LOCKED.format(module=module, engine=engine, keys=keys)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0", "True"]
