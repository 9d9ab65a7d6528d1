"""The meta-path finder and chained loader, in-process with a recording callback."""

import importlib
import importlib.machinery
import importlib.util
import sys
import textwrap
import threading
import zipfile

import pytest

from telly_autoinst import finder as finder_module
from telly_autoinst.finder import WatchFinder


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """Write modules under a fresh sys.path entry; forget them afterwards."""
    root = tmp_path / "src"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    before = set(sys.modules)

    def write(files):
        for name, text in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
        importlib.invalidate_caches()
        return root

    yield write
    for name in set(sys.modules) - before:
        del sys.modules[name]


@pytest.fixture
def hook():
    """Install a WatchFinder that chains every watched module to a recording callback (what
    the finder does for the engines that instrument after the module ran); remove it afterwards."""
    installed = []

    def install(*watched, callback=None):
        seen = []
        on_loaded = callback or seen.append
        finder = WatchFinder(watched, lambda spec: finder_module.chain(spec.loader, on_loaded))
        sys.meta_path.insert(0, finder)
        installed.append(finder)
        return finder, seen

    yield install
    for finder in installed:
        if finder in sys.meta_path:
            sys.meta_path.remove(finder)


def test_watched_module_reported_after_exec_with_loader_restored(tree, hook):
    tree({"wpkg/__init__.py": "VALUE = 1\n", "wpkg/mod.py": "def f():\n    return 2\n"})
    _, seen = hook("wpkg")
    import wpkg.mod  # noqa: F401  (the import is the act under test)

    assert [m.__name__ for m in seen] == ["wpkg", "wpkg.mod"]
    assert seen[1].f() == 2
    for module in seen:
        assert type(module.__loader__) is importlib.machinery.SourceFileLoader
        assert module.__spec__.loader is module.__loader__


def test_unwatched_modules_are_ignored(tree, hook):
    tree({"other/__init__.py": ""})
    finder, seen = hook("wpkg")
    assert finder.find_spec("other") is None
    import other  # noqa: F401

    assert seen == []
    assert type(sys.modules["other"].__spec__.loader) is importlib.machinery.SourceFileLoader


def test_module_code_sees_real_loader_while_running(tree, hook):
    tree({"wres/__init__.py": """
        import pkgutil
        LOADER = type(__loader__).__name__
        SPEC_LOADER = type(__spec__.loader).__name__
        DATA = pkgutil.get_data(__name__, "data.txt")
        """, "wres/data.txt": "payload"})
    hook("wres")
    import wres

    assert (wres.LOADER, wres.SPEC_LOADER, wres.DATA) == ("SourceFileLoader", "SourceFileLoader", b"payload")


def test_namespace_package(tree, hook):
    tree({"wns/sub/mod.py": "X = 1\n"})
    _, seen = hook("wns")
    import wns.sub.mod

    assert [m.__name__ for m in seen] == ["wns.sub.mod"]
    assert wns.sub.mod.X == 1
    assert wns.__spec__.submodule_search_locations is not None


def test_zip_import(tmp_path, hook, monkeypatch):
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("wzip/__init__.py", "def f():\n    return 'zipped'\n")
    monkeypatch.syspath_prepend(str(archive))
    _, seen = hook("wzip")
    try:
        import wzip

        assert wzip.f() == "zipped"
        assert [m.__name__ for m in seen] == ["wzip"]
        assert type(wzip.__loader__).__name__ == "zipimporter"
    finally:
        sys.modules.pop("wzip", None)


def test_extension_modules_are_skipped(hook):
    name = "_bz2"
    sys.modules.pop(name, None)
    finder, seen = hook(name)
    spec = finder.find_spec(name)
    if spec is None or not isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
        pytest.skip(f"{name} is not an extension module in this build")
    assert isinstance(spec.loader, importlib.machinery.ExtensionFileLoader)


def test_reload_reports_again_with_same_module(tree, hook):
    tree({"wrel.py": "def f():\n    return 1\n"})
    _, seen = hook("wrel")
    import wrel

    importlib.reload(wrel)
    assert len(seen) == 2 and seen[0] is seen[1] is wrel
    assert type(wrel.__loader__) is importlib.machinery.SourceFileLoader


def test_circular_imports(tree, hook):
    tree({
        "wcirc/__init__.py": "from . import a\n",
        "wcirc/a.py": "from . import b\ndef fa():\n    return b.fb()\n",
        "wcirc/b.py": "from . import a\ndef fb():\n    return 'b'\n",
    })
    _, seen = hook("wcirc")
    import wcirc

    assert wcirc.a.fa() == "b"
    assert sorted(m.__name__ for m in seen) == ["wcirc", "wcirc.a", "wcirc.b"]


def test_failing_callback_never_breaks_the_import(tree, hook):
    tree({"wfail.py": "X = 3\n"})

    def explode(module):
        raise RuntimeError("instrumentation bug")

    hook("wfail", callback=explode)
    import wfail

    assert wfail.X == 3


def test_import_error_of_the_module_propagates_unchanged(tree, hook):
    tree({"wbroken.py": "raise ValueError('from the module itself')\n"})
    _, seen = hook("wbroken")
    with pytest.raises(ValueError, match="from the module itself"):
        import wbroken  # noqa: F401
    assert seen == [] and "wbroken" not in sys.modules


def test_missing_watched_module_raises_module_not_found(hook):
    hook("wmissing")
    with pytest.raises(ModuleNotFoundError):
        import wmissing  # noqa: F401


def test_concurrent_imports_from_threads(tree, hook):
    files = {f"wthr/m{i}.py": f"def f():\n    return {i}\n" for i in range(16)}
    files["wthr/__init__.py"] = ""
    tree(files)
    _, seen = hook("wthr")
    barrier = threading.Barrier(8)
    results = {}

    def worker(k):
        barrier.wait()
        for i in range(k, 16, 8):
            results[i] = importlib.import_module(f"wthr.m{i}").f()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "deadlock"
    assert results == {i: i for i in range(16)}
    assert sorted(m.__name__ for m in seen) == sorted(["wthr"] + [f"wthr.m{i}" for i in range(16)])


def test_thread_started_during_module_init_can_import(tree, hook):
    """The ddtrace deadlock: a module's __init__ starts a thread that imports, and waits for it."""
    tree({
        "wdead/__init__.py": """
            import importlib, threading
            RESULT = []
            t = threading.Thread(target=lambda: RESULT.append(importlib.import_module("wdead2").VALUE))
            t.start()
            t.join(20)
            """,
        "wdead2.py": "VALUE = 'imported from a thread'\n",
    })
    hook("wdead", "wdead2")
    import wdead

    assert wdead.RESULT == ["imported from a thread"]


def test_reentrant_finder_below_gets_one_chain(tree, hook):
    """A finder further down that calls importlib.util.find_spec (as wrapt's does) comes back to us."""
    tree({"wre.py": "X = 1\n"})

    class Reentrant:
        busy = False

        def find_spec(self, fullname, path=None, target=None):
            if fullname != "wre" or self.busy:
                return None
            self.busy = True
            try:
                return importlib.util.find_spec(fullname)
            finally:
                self.busy = False

    finder, seen = hook("wre")
    reentrant = Reentrant()
    sys.meta_path.insert(1, reentrant)
    try:
        import wre  # noqa: F401
    finally:
        sys.meta_path.remove(reentrant)
    assert [m.__name__ for m in seen] == ["wre"]


def test_install_is_idempotent_and_uninstall_removes():
    before = list(sys.meta_path)
    try:
        first = finder_module.install({"x"}, lambda m: None)
        second = finder_module.install({"y"}, lambda m: None)
        assert first is second and sys.meta_path[0] is first
        finder_module.uninstall()
        assert not any(isinstance(f, WatchFinder) for f in sys.meta_path)
    finally:
        sys.meta_path[:] = before
