"""The finder's hard cases through the real hook, in a fresh interpreter of a real venv."""

import json
import textwrap
import zipfile

import pytest

PROGRAM = """
import bz2, importlib, threading
import nsforced.sub.mod, zipforced, circ
nsforced.sub.mod.f(); zipforced.z(); circ.a.fa()
def work(i):
    importlib.import_module(f"thr.m{i}").g()
threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
[t.start() for t in threads]; [t.join() for t in threads]
print(bz2.decompress(bz2.compress(b"ok")).decode())
"""


@pytest.fixture(scope="module")
def venv(venvs):
    return venvs.get()


def _tree(root):
    files = {
        "nsforced/sub/mod.py": "def f():\n    return 1\n",
        "circ/__init__.py": "from . import a\n",
        "circ/a.py": "from . import b\ndef fa():\n    return b.fb()\n",
        "circ/b.py": "from . import a\ndef fb():\n    return 'b'\n",
        "thr/__init__.py": "",
    }
    files.update({f"thr/m{i}.py": "def g():\n    return 0\n" for i in range(8)})
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    archive = root.parent / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("zipforced/__init__.py", "def z():\n    return 'z'\n")
    return archive


def test_namespace_zip_circular_threads_and_extension(venv, home, tmp_path):
    src = tmp_path / "src"
    archive = _tree(src)
    out = tmp_path / "reports"
    out.mkdir()
    env = {"PYTHONPATH": f"{src}:{archive}", "TELLY_STORAGE_TYPE": "file", "TELLY_LOCAL_STORAGE_PATH": str(out),
           "TELLY_AUTOINST_PACKAGES": "nsforced,zipforced,circ,thr,_bz2"}
    proc = venv.run(["-c", textwrap.dedent(PROGRAM)], home, env=env, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "ok\n", "")
    stats = {json.loads(p.read_text())["project_id"]: json.loads(p.read_text())["stats"] for p in out.glob("*.json")}
    assert stats == {
        "local:nsforced": {"nsforced.sub.mod.f": 1},
        "local:circ": {"circ.a.fa": 1, "circ.b.fb": 1},
        "local:thr": {f"thr.m{i}.g": 1 for i in range(8)},
    }
    # A module imported from a zip archive runs untouched on the default engine, and --dry-run
    # says why it is not counted.
    dry = json.loads(venv.run(["-m", "telly_autoinst", "--dry-run", "--json"], home, env=env).stdout)
    (zipped,) = [d for d in dry["distributions"] if d["packages"] == ["zipforced"]]
    assert zipped["keys"] == [] and [n["key"] for n in zipped["not_counted"]] == ["zipforced.z"]
    assert "zip archive" in zipped["not_counted"][0]["why"]
