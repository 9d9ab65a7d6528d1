"""tools/import_graph.py finds cycles (deferred ones too), and the start-up path stays free of typing."""

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Imported at interpreter start, or when the finder's stand-in wakes: typing and __future__ would cost
# every program that imports anything from outside the standard library.
STARTUP = ["telly_autoinst/__init__.py", "_telly_autoinst_bootstrap.py", "_telly_autoinst_stdlib.py",
           "telly_autoinst/_wake.py", "telly_autoinst/_env.py", "telly_autoinst/index.py", "telly_autoinst/finder.py"]


@pytest.fixture(scope="module")
def import_graph():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "tools" / "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def package(tmp_path):
    def write(files):
        for name, text in files.items():
            path = tmp_path / "telly_autoinst" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return str(tmp_path)

    return write


def test_deferred_back_edge_is_a_cycle(import_graph, package, capsys):
    root = package({
        "__init__.py": "",
        "a.py": "from . import b\n",
        "b.py": "def later():\n    from .a import thing\n",
        "c.py": "import telly_autoinst.a\n",
    })
    assert import_graph.main(["--root", root]) == 1
    out, err = capsys.readouterr()
    assert "a -> b\n" in out
    assert "b -> a (deferred)\n" in out
    assert "c -> a\n" in out
    assert err == "import cycle among a, b: a -> b -> a\n"


def test_acyclic_tree_passes_and_ignores_type_checking(import_graph, package, capsys):
    root = package({
        "__init__.py": "",
        "a.py": "from . import b\n",
        "b.py": "TYPE_CHECKING = False\nif TYPE_CHECKING:\n    from .a import A\nelse:\n    import os\n",
        "engines/__init__.py": "def make():\n    from . import one\n",
        "engines/one.py": "from .. import b\n",
    })
    assert import_graph.main(["--root", root]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "b -> -\n" in out
    assert "engines -> engines.one (deferred)\n" in out
    assert "engines.one -> b\n" in out
    assert out.endswith("no import cycle among 5 client modules\n")


def test_cycle_through_a_package_and_its_plugin(import_graph, package, capsys):
    # A plug-in importing its base class from the package that picks the plug-in is a cycle too.
    root = package({
        "__init__.py": "",
        "engines/__init__.py": "class Engine:\n    pass\ndef make():\n    from .one import One\n",
        "engines/one.py": "from . import Engine\n",
    })
    assert import_graph.main(["--root", root, "--quiet"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "import cycle among engines, engines.one: engines -> engines.one -> engines\n"


def test_three_module_loop_is_named_in_order(import_graph, package, capsys):
    root = package({
        "__init__.py": "",
        "a.py": "from . import b\n",
        "b.py": "from . import c\n",
        "c.py": "def f():\n    from . import a\n",
    })
    assert import_graph.main(["--root", root, "--quiet"]) == 1
    assert capsys.readouterr().err == "import cycle among a, b, c: a -> b -> c -> a\n"


def test_unparsable_file_is_reported(import_graph, package, capsys):
    root = package({"__init__.py": "", "a.py": "def (:\n"})
    assert import_graph.main(["--root", root]) == 2
    assert "cannot parse" in capsys.readouterr().err


def _imported_names(path):
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.partition(".")[0])
    return names


# Loaded by the first watched import (default engine) and the exit hand-off: each module-level
# `from __future__ import annotations` there imported the __future__ module (issue 8).
WATCHED_IMPORT_AND_EXIT = ["finder.py", "settings.py", "discovery.py", "_record.py", "errors.py", "_env.py",
                           "consent.py", "facts.py", "counters.py", "selection.py", "engines/__init__.py",
                           "engines/_base.py", "engines/rewrite.py",
                           "pipeline.py", "_launch.py", "_statefile.py", "spool.py",
                           "transport.py"]


def _run_time_imported_names(path):
    """Like _imported_names, leaving out what `if TYPE_CHECKING:` blocks import (never at run time)."""
    names = set()
    pending = list(ast.parse(path.read_text()).body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.partition(".")[0])
        pending.extend(ast.iter_child_nodes(node))
    return names


@pytest.mark.parametrize("name", WATCHED_IMPORT_AND_EXIT)
def test_watched_import_and_exit_paths_import_neither_typing_nor_future_at_run_time(name):
    imported = _run_time_imported_names(ROOT / "telly_autoinst" / name)
    assert not imported & {"typing", "__future__", "typing_extensions"}


def test_the_run_time_check_sees_imports_outside_type_checking_blocks(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("TYPE_CHECKING = False\nif TYPE_CHECKING:\n    import typing\n"
                      "def f():\n    from __future__ import annotations\n")
    assert _run_time_imported_names(module) == {"__future__"}


@pytest.mark.parametrize("name", STARTUP)
def test_startup_path_imports_neither_typing_nor_future(name):
    imported = _imported_names(ROOT / name)
    assert not imported & {"typing", "__future__", "typing_extensions"}


def test_startup_modules_leave_typing_unloaded():
    # The static check above, confirmed at run time: with site disabled nothing else loads typing.
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "import _telly_autoinst_bootstrap, _telly_autoinst_stdlib, telly_autoinst._wake, telly_autoinst.index, "
        "telly_autoinst.finder; "
        "print(sorted(m for m in ('typing', '__future__') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-S", "-c", code, str(ROOT)], capture_output=True, text=True, check=True)
    assert out.stdout == "[]\n"
