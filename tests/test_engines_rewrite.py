"""The in-frame rewrite engine on its import path: the code cache, line numbers, threads, references."""

import dis
import importlib
import os
import py_compile
import sys
import textwrap
import threading
import types
import uuid

import pytest

from telly_autoinst import counters, finder
from telly_autoinst.engines import instrumented_keys, make_engine, rewrite, uncounted_keys
from telly_autoinst.settings import project_settings

SOURCE = '''\
"""A module for the rewrite engine."""
import sys

REGISTRY = []


def register(func):
    REGISTRY.append(func)
    return func


@register
def early(x):
    """Registered before the module finished importing."""
    return x + 1


def where():
    return sys._getframe(1).f_code.co_name


def lines():
    a = 1
    b = 2
    return a + b


def raises():
    raise ValueError("here")


class Counter:
    def __init__(self):
        self.n = 0

    def bump(self):
        self.n += 1
'''


@pytest.fixture
def hooked(tmp_path, monkeypatch):
    """Import a fresh module through a WatchFinder backed by the rewrite engine; a private cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    engine, _ = make_engine("rewrite")
    names = []

    def load(source=SOURCE, name=None, files=None):
        """Import module ``name`` made of ``source``, or package ``name`` made of ``files``
        (relative path -> source)."""
        name = name or f"rw_{uuid.uuid4().hex[:10]}"
        names.append(name)
        path = tmp_path / "src" / f"{name}.py"
        path.parent.mkdir(exist_ok=True)
        for relative, text in ({f"{name}.py": source} if files is None else files).items():
            written = tmp_path / "src" / (relative if files is None else f"{name}/{relative}")
            written.parent.mkdir(parents=True, exist_ok=True)
            text = textwrap.dedent(text)
            if not written.exists() or written.read_text() != text:  # an unchanged file keeps its stamp
                written.write_text(text)
        project = project_settings({"project_id": f"rw-{name}", "packages": [name]}, "tests", environ={},
                                   user_config={})
        hook = finder.WatchFinder({name}, lambda spec: engine.loader_for(spec, project))
        monkeypatch.syspath_prepend(str(path.parent))
        sys.meta_path.insert(0, hook)
        try:
            importlib.invalidate_caches()
            module = importlib.import_module(name)
        finally:
            sys.meta_path.remove(hook)
        return module, project, path

    yield load
    for name in names:
        for loaded in [n for n in sys.modules if n == name or n.startswith(name + ".")]:
            del sys.modules[loaded]


def _plain_code(path):
    with open(path, "rb") as handle:
        return compile(handle.read(), str(path), "exec", dont_inherit=True)


def _functions(code):
    return {c.co_name: c for c in code.co_consts if hasattr(c, "co_code")}


def test_counts_in_frame_with_lines_and_namespace_unchanged(hooked):
    module, project, path = hooked()
    assert module.where() == "test_counts_in_frame_with_lines_and_namespace_unchanged"
    assert module.lines() == 3 and module.early(1) == 2
    with pytest.raises(ValueError) as info:
        module.raises()
    raise_line = SOURCE.splitlines().index('    raise ValueError("here")') + 1
    assert info.traceback[-1].lineno + 1 == raise_line  # pytest's lineno is 0-based
    plain = _functions(_plain_code(path))
    for name in ("early", "where", "lines", "raises"):
        func = getattr(module, name)
        assert func.__code__.co_firstlineno == plain[name].co_firstlineno
        assert {line for _, line in dis.findlinestarts(func.__code__)} == \
            {line for _, line in dis.findlinestarts(plain[name])}
    assert sorted(n for n in vars(module) if not n.startswith("__")) == \
        ["Counter", "REGISTRY", "early", "lines", "raises", "register", "sys", "where"]
    assert module.__spec__.loader.get_code.__qualname__ == "SourceLoader.get_code"  # the real loader again
    assert counters.take(project.project_id) == {
        f"{module.__name__}.where": 1, f"{module.__name__}.lines": 1, f"{module.__name__}.early": 1,
        f"{module.__name__}.raises": 1}


def test_rewritten_code_objects_stay_hashable(hooked):
    # Tools key dicts by code objects (the standard library's ``trace --trackcalls``,
    # line_profiler, debuggers): whatever the engine puts in ``co_consts`` must hash, on warm
    # loads too (so nothing mutable and shared, such as a list, may stand in for the counters).
    for name in (None, "rw_hash"):
        module, _, _ = hooked(name=name)
        codes = [module.where.__code__, module.Counter.bump.__code__, module.Counter.__init__.__code__]
        assert len({code: None for code in codes}) == 3
        sys.modules.pop(module.__name__)
    again, _, _ = hooked(name="rw_hash")  # from the cache
    assert hash(again.where.__code__) == hash(again.where.__code__)


def test_references_taken_during_import_count(hooked):
    module, project, _ = hooked()
    module.REGISTRY[0](5)
    assert module.REGISTRY[0] is module.early
    assert counters.take(project.project_id) == {f"{module.__name__}.early": 1}


def test_exact_under_threads(hooked):
    module, project, _ = hooked()
    counter = module.Counter()

    def work():
        for _ in range(20_000):
            counter.bump()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counters.take(project.project_id) == {f"{module.__name__}.Counter": 1,
                                                 f"{module.__name__}.Counter.bump": 160_000}


def test_warm_import_loads_cached_code_without_rewriting(hooked, monkeypatch):
    module, project, path = hooked(name="rw_warm")
    cached = rewrite.load_code(str(path), rewrite.code_stamp(str(path)))
    assert cached is not None
    sys.modules.pop("rw_warm")

    def no_rewrite(*args):
        raise AssertionError("rewritten although the cache holds the code")

    from telly_autoinst.engines import _rewriter

    monkeypatch.setattr(_rewriter, "rewrite", no_rewrite)
    again, project, _ = hooked(source=path.read_text(), name="rw_warm")
    again.lines()
    assert counters.take(project.project_id)["rw_warm.lines"] == 1
    # Each load has its own slots (marshal shares one list within a load only): the first
    # load's function, still referenced, counts under the same key as the second's.
    module.lines()
    again.lines()
    assert counters.take(project.project_id)["rw_warm.lines"] == 2


def test_warm_import_replays_the_selection_kept_with_the_code(hooked, monkeypatch):
    from telly_autoinst import selection

    hooked(name="rw_planned")
    sys.modules.pop("rw_planned")

    def no_select(*args):
        raise AssertionError("selected again although the cache holds the plan")

    monkeypatch.setattr(selection, "select", no_select)
    again, project, _ = hooked(source=SOURCE, name="rw_planned")
    again.lines()
    assert counters.take(project.project_id)["rw_planned.lines"] == 1


def test_a_plan_that_no_longer_fits_is_selected_afresh(hooked, monkeypatch):
    from telly_autoinst import selection
    from telly_autoinst.engines import rewrite

    hooked(name="rw_replanned")
    sys.modules.pop("rw_replanned")
    monkeypatch.setattr(rewrite, "replay", lambda *args: None)  # as when the namespace differs
    selected = []
    select = selection.select
    monkeypatch.setattr(selection, "select", lambda *args: selected.append(1) or select(*args))
    again, project, _ = hooked(source=SOURCE, name="rw_replanned")
    again.lines()
    assert selected and counters.take(project.project_id)["rw_replanned.lines"] == 1


def test_changed_source_is_rewritten_again(hooked):
    module, project, path = hooked(name="rw_changed")
    sys.modules.pop("rw_changed")
    changed = SOURCE.replace("return a + b", "return a + b + 1")  # another size: another stamp
    again, project, _ = hooked(source=changed, name="rw_changed")
    assert again.lines() == 4


def test_read_only_cache_still_counts(hooked, tmp_path, monkeypatch):
    cache = tmp_path / "ro-cache"
    cache.mkdir()
    cache.chmod(0o500)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    try:
        module, project, path = hooked()
        module.lines()
        assert counters.take(project.project_id) == {f"{module.__name__}.lines": 1}
        assert rewrite.load_code(str(path), rewrite.code_stamp(str(path))) is None or os.geteuid() == 0
    finally:
        cache.chmod(0o700)


def test_syntax_error_is_the_import_systems_own(hooked):
    with pytest.raises(SyntaxError) as info:
        hooked(source="def broken(:\n    pass\n")
    assert info.value.lineno == 1 and info.value.filename.endswith(".py")


ALIASED = '''\
class Ids:
    def __iter__(self):
        return self

    def __next__(self):
        return 1

    next = __next__
'''


def test_private_method_published_under_a_public_alias_counts(hooked):
    """boltons' ``next = __next__``: selection keys it ``Ids.__next__``, as wrapt and monitoring count it."""
    module, project, _ = hooked(ALIASED)
    ids = module.Ids()
    assert next(ids) == 1 and ids.next() == 1
    assert counters.take(project.project_id) == {f"{module.__name__}.Ids.__next__": 2}


def test_damaged_cache_entry_is_a_miss(hooked):
    """Flipped bits anywhere past the checksum, the stamp left intact, are a miss: never marshal'ed."""
    module, project, path = hooked(name="rw_damaged")
    current = rewrite.code_stamp(str(path))
    (entry,) = [os.path.join(d, f) for d, _, files in os.walk(os.environ["XDG_CACHE_HOME"]) for f in files
                if f.endswith(".bin")]
    good = open(entry, "rb").read()
    assert rewrite.load_code(str(path), current) is not None
    # A letter of a name in the code: still valid marshal data, so unchecked it loads other code.
    at = good.rindex(b"lines")
    for offset, bit in [(at, 0x01), (at + 1, 0x20), (len(good) - 1, 0x01), (len(good) // 2, 0x04)]:
        damaged = bytearray(good)
        damaged[offset] ^= bit
        with open(entry, "wb") as handle:
            handle.write(damaged)
        assert rewrite.load_code(str(path), current) is None, offset


def test_a_changed_rewriter_never_reuses_old_entries(hooked, tmp_path, monkeypatch):
    """The cache's format is the rewriter's own source: an edit of it (a development build) is a miss."""
    module, project, path = hooked(name="rw_format")
    before = rewrite.code_stamp(str(path))
    assert rewrite.load_code(str(path), before) is not None
    # The same package files, with the rewriter edited (a comment is enough: it is a new build).
    engines = tmp_path / "engines-copy"
    engines.mkdir()
    here = os.path.dirname(rewrite.__file__)
    for name in ("_rewriter.py", "rewrite.py", "_base.py"):
        text = open(os.path.join(here, name)).read()
        (engines / name).write_text(text + ("\n# edited\n" if name == "_rewriter.py" else ""))
    monkeypatch.setattr(rewrite, "__file__", str(engines / "rewrite.py"))
    monkeypatch.setattr(rewrite, "_format", None)
    after = rewrite.code_stamp(str(path))
    assert after[0] != before[0] and after[1:] == before[1:]
    assert rewrite.load_code(str(path), after) is None


VARARGS_INIT = '''\
class Namespace:
    def __init__(*args, **kwargs):
        self, args = args[0], args[1:]
        self.__attrs = dict(*args, **kwargs)


class Child(Namespace):
    pass
'''


def test_init_without_a_named_first_parameter_is_counted_in_frame(hooked):
    """jinja2's ``Namespace.__init__(*args, **kwargs)``: observed through ``*args[:1]``, never by wrapt."""
    module, project, _ = hooked(VARARGS_INIT)
    init = vars(module.Namespace)["__init__"]
    module.Namespace(a=1), module.Child({"b": 2})
    with pytest.raises(IndexError):  # the body's own error, not one of the observer's
        init()
    assert vars(module.Namespace)["__init__"] is init and type(init) is types.FunctionType
    assert counters.take(project.project_id) == {f"{module.__name__}.Namespace": 1, f"{module.__name__}.Child": 1}
    assert uncounted_keys(project.project_id) == {}


ALIAS_IN_ANOTHER_BLOCK = '''\
import sys


def _batched(iterable, n):
    return [iterable[i:i + n] for i in range(0, len(iterable), n)]


if sys.version_info >= (4,):
    def batched(iterable, n):
        return _batched(iterable, n)
else:
    batched = _batched
'''


def test_private_function_published_in_another_block_counts(hooked):
    """more-itertools' ``else: batched = _batched``: counted in frame, under the key selection gives."""
    module, project, _ = hooked(ALIAS_IN_ANOTHER_BLOCK)
    assert module.batched([1, 2, 3], 2) == [[1, 2], [3]]
    assert type(module.batched) is types.FunctionType
    assert counters.take(project.project_id) == {f"{module.__name__}._batched": 1}
    assert uncounted_keys(project.project_id) == {}


REASSIGNED_MODULE = {
    "__init__.py": '''\
        from ._api import get, create_context
        from ._models import Client

        __all__ = ["get", "create_context", "Client"]
        for _name in __all__:
            globals()[_name].__module__ = __name__
        ctx = create_context()
    ''',
    "_api.py": '''\
        __all__ = ["get", "create_context"]


        def get(url):
            return "got " + url


        def create_context():
            return {}
    ''',
    "_models.py": '''\
        class Client:
            def __init__(self):
                self.open = True

            def send(self):
                return get("x")


        from ._api import get
    ''',
}


def test_reassigned_module_counts_once_under_the_public_key(hooked):
    """httpx sets ``__module__ = "httpx"`` on its exports: one counter, reported under ``httpx.get``."""
    package, project, _ = hooked(files=REASSIGNED_MODULE)
    name = package.__name__
    assert package.get("a") == "got a" and package.Client().send() == "got x"
    package.create_context()
    assert counters.take(project.project_id) == {
        f"{name}.get": 2, f"{name}.Client": 1, f"{name}.Client.send": 1,
        # the call made while the package ran counts too: the counter was already reported
        f"{name}.create_context": 2}
    assert instrumented_keys(project.project_id) == {f"{name}.get", f"{name}.create_context", f"{name}.Client",
                                                     f"{name}.Client.send"}
    assert type(package.get) is types.FunctionType


GENERATED_INIT = '''\
import dataclasses


@dataclasses.dataclass
class Point:
    x: int

    def norm(self):
        return abs(self.x)


class Plain:
    def hello(self):
        return "hello"
'''


def test_generated_init_is_listed_as_not_counted_and_never_wrapped(hooked):
    module, project, _ = hooked(GENERATED_INIT)
    init = vars(module.Point)["__init__"]
    assert type(init) is types.FunctionType
    assert module.Point(-2).norm() == 2
    assert counters.take(project.project_id) == {f"{module.__name__}.Point.norm": 1}
    why = uncounted_keys(project.project_id)
    assert list(why) == [f"{module.__name__}.Point"] and "generated at run time" in why[f"{module.__name__}.Point"]


def test_pyc_only_module_is_listed_as_not_counted(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    name = f"rw_pyc_{uuid.uuid4().hex[:8]}"
    source = tmp_path / "build" / f"{name}.py"
    source.parent.mkdir()
    source.write_text("def shout(text):\n    return text.upper()\n")
    compiled = tmp_path / "site" / f"{name}.pyc"
    compiled.parent.mkdir()
    py_compile.compile(str(source), cfile=str(compiled), doraise=True)
    source.unlink()
    monkeypatch.syspath_prepend(str(compiled.parent))
    try:
        module = importlib.import_module(name)
        project = project_settings({"project_id": f"rw-{name}", "packages": [name]}, "tests", environ={},
                                   user_config={})
        engine, _ = make_engine("rewrite")
        assert engine.instrument(module, project) == []
        assert module.shout("a") == "A" and type(module.shout) is types.FunctionType
        assert counters.take(project.project_id) == {}
        assert ".pyc only" in uncounted_keys(project.project_id)[f"{name}.shout"]
    finally:
        sys.modules.pop(name, None)


DOCSTRING_ONLY = '''\
def stub():
    """Only a docstring."""


class Base:
    @staticmethod
    def hook():
        """Subclasses override this."""
'''


def _line_events(func):
    events = []
    code = func.__code__

    def trace(frame, event, arg):
        if frame.f_code is code:
            events.append((event, frame.f_lineno))
        return trace

    sys.settrace(trace)
    try:
        func()
    finally:
        sys.settrace(None)
    return events


def test_docstring_only_body_stops_where_the_unwatched_function_stops(hooked, tmp_path):
    """pdb stepping into ``def stub(): "doc"`` stops on the same line as without the hook."""
    module, project, path = hooked(DOCSTRING_ONLY)
    plain = {}
    exec(_plain_code(path), plain)
    assert _line_events(module.stub) == _line_events(plain["stub"])
    assert _line_events(module.Base.hook) == _line_events(plain["Base"].hook)
    assert counters.take(project.project_id) == {f"{module.__name__}.stub": 1, f"{module.__name__}.Base.hook": 1}


def test_no_cache_neither_reads_nor_writes_rewritten_code(hooked, monkeypatch):
    module, project, path = hooked(name="rw_nocache")
    current = rewrite.code_stamp(str(path))
    assert rewrite.load_code(str(path), current) is not None
    monkeypatch.setenv("TELLY_NO_CACHE", "1")
    monkeypatch.setattr(rewrite, "_no_cache", None)  # read once per process: this is a new "process"
    assert rewrite.load_code(str(path), current) is None  # the entry is there, and not read
    cache = os.environ["XDG_CACHE_HOME"]
    before = sorted((p, os.stat(os.path.join(d, p)).st_mtime_ns) for d, _, files in os.walk(cache) for p in files)
    sys.modules.pop("rw_nocache")
    source = path.read_text().replace("return a + b", "return a + b + 0")  # another stamp: a miss anyway
    again, project, _ = hooked(source=source, name="rw_nocache")
    again.lines()
    assert counters.take(project.project_id)["rw_nocache.lines"] == 1
    after = sorted((p, os.stat(os.path.join(d, p)).st_mtime_ns) for d, _, files in os.walk(cache) for p in files)
    assert after == before  # nothing written


HAND_MADE_CONSTANT = '''\
def hello():
    return 1


def odd():
    return 2


# Code made by hand where the counter would be: an unhashable constant (a list) at co_consts[1].
odd.__code__ = odd.__code__.replace(co_consts=(None, [], *odd.__code__.co_consts[2:]))
'''


def test_code_made_by_hand_is_not_counted_and_spoils_nothing_else(hooked):
    for _ in range(2):  # cold (selected afresh), then warm (the kept plan replayed, armed by class)
        module, project, _ = hooked(HAND_MADE_CONSTANT, name="rw_hand_made")
        sys.modules.pop("rw_hand_made")
        assert module.hello() == 1
        assert counters.take(project.project_id) == {"rw_hand_made.hello": 1}
        assert "rw_hand_made.odd" in uncounted_keys(project.project_id)
