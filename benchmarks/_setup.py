"""The venvs the cases share, each built on first use and at most once per run of the suite.

A "pair" is two venvs with the same packages installed (by uv, or pip without it), the telly_autoinst wheel
included; in the ``bare`` one the ``telly_autoinst.pth`` is deleted afterwards, so the two differ
only in whether the hook runs at interpreter start.
"""

import functools
import shutil
import tempfile
from pathlib import Path

from benchmarks import _generate, _packages, _table
from tests.support.venvs import VenvFactory, build_wheel, clean_env

TELLY_ORIGINAL = "telly==0.9.3"
REAL_PACKAGE = "click==8.1.8"


class Pair:
    """Two otherwise identical venvs: ``hooked`` runs the .pth, ``bare`` has none."""

    def __init__(self, hooked, bare):
        self.hooked, self.bare = hooked, bare


class Lab:
    """Builds, caches and finally removes everything the cases need."""

    def __init__(self, base=None, python=None, engine=None):
        self.python = python  # interpreter for every venv; None: the one running the suite
        self.engine = engine  # TELLY_ENGINE for the hooked children; None: unset, the client's default
        self._owned = base is None
        self.base = Path(base) if base else Path(tempfile.mkdtemp(prefix="telly-bench-"))
        self.factory = VenvFactory(self.base, self.base / "venvs")
        self._homes = 0

    @functools.cached_property
    def wheels(self):
        sources = self.base / "sources"
        return {
            _generate.GEN: build_wheel(_generate.write_gen(sources), self.base),
            _generate.CALLS: build_wheel(_generate.write_calls(sources), self.base),
        }

    def _pair(self, extra):
        hooked = self.factory.new(python=self.python, extra=extra)
        bare = self.factory.new(python=self.python, extra=extra)
        (bare.site_packages / "telly_autoinst.pth").unlink()
        return Pair(hooked, bare)

    @functools.cached_property
    def small(self):
        """One watched package (the tiny one) installed: start-up, per-call and thread cases."""
        return self._pair([str(self.wheels[_generate.CALLS])])

    @functools.cached_property
    def imports(self):
        """The generated watched package and a real package (forced in by the case)."""
        return self._pair([str(self.wheels[_generate.GEN]), REAL_PACKAGE])

    @functools.cached_property
    def packages(self):
        """The real packages of the whole-run rows (benchmarks/_packages.py), each forced in by the case."""
        return self._pair([package.requirement for package in _packages.PACKAGES])

    @functools.cached_property
    def import_sys_only(self):
        """A venv like ``packages.bare`` whose ``telly_autoinst.pth`` only runs ``import sys``: what
        any ``.pth`` file costs ``site``, the anchor of the start-up row on 3.12 and later."""
        venv = self.factory.new(python=self.python, extra=[p.requirement for p in _packages.PACKAGES])
        pth = venv.site_packages / "telly_autoinst.pth"
        # A new file, not the installed one rewritten: uv hard-links installed files to its cache,
        # so writing through the link would change every venv's .pth, the hooked one's too.
        pth.unlink()
        pth.write_text("import sys\n")
        return venv

    @functools.cached_property
    def original(self):
        """The original Telly client in a venv of its own, without telly_autoinst."""
        return self.factory.new(python=self.python, extra=[TELLY_ORIGINAL], with_telly=False)

    def home(self):
        """A fresh HOME directory."""
        self._homes += 1
        path = self.base / "homes" / str(self._homes)
        path.mkdir(parents=True)
        return path

    def env(self, home, **extra):
        """A clean child environment (no TELLY_*/CI leaking in) with HOME, the engine and EXTRA.

        Bytecode is written, as in a user's venv: the venvs are the lab's own, and a module no
        install compiled (the ``_virtualenv.py`` of a 3.9 venv that uv made) would otherwise be
        compiled at every start, a cost the same in both venvs that would flatten every ratio.
        """
        return clean_env(home, TELLY_ENGINE=self.engine, PYTHONDONTWRITEBYTECODE=None, **extra)

    def close(self):
        if self._owned:
            shutil.rmtree(self.base, ignore_errors=True)


def script(lab, name, text):
    """Write a benchmark script to a file: a real program runs from files, not ``-c`` strings."""
    path = lab.base / "scripts" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def per_python(versions, lab, folder, measure):
    """The rows of ``measure(version, base)`` for each of VERSIONS, under ``lab`` (a fresh Lab,
    removed afterwards, when None); one Python's failure becomes a row and hides no other's."""
    own = lab is None
    lab = lab or Lab()
    try:
        rows = []
        for version in versions:
            try:
                rows += measure(version, lab.base / folder)
            except Exception as exc:
                rows.append(_table.missing(f"{folder.replace('_', ' ')}, Python {version}", "", "",
                                           f"failed: {type(exc).__name__}: {exc}"))
        return rows
    finally:
        if own:
            lab.close()
