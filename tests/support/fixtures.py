"""Fixtures shared by every test module of both trees: a temporary home for every test, real venvs
(the factory, and the venvs of sample packages that several modules use), fresh homes for
subprocesses, the PostgreSQL URL (loaded by the conftest.py at the root)."""

import os

import pytest

from tests.support.venvs import FIXTURES, VenvFactory, build_wheel, point_home_at


@pytest.fixture(scope="session", autouse=True)
def _isolated_session_home(tmp_path_factory):
    """The session's fixtures (venv and wheel builds, downloads) run before any test's own HOME."""
    with pytest.MonkeyPatch.context() as patch:
        point_home_at(tmp_path_factory.mktemp("session-home"), patch.setenv)
        yield


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """HOME and XDG_* in a temporary directory for every test, so nothing reaches the real home.

    Tests that start programs pass a ``home`` of their own (``clean_env``); this covers the test
    process itself and anything that inherits its environment.
    """
    point_home_at(tmp_path_factory.mktemp("home"), monkeypatch.setenv)


@pytest.fixture(scope="session")
def test_cache(tmp_path_factory):
    """Where venvs and wheels are kept by their content: ``TELLY_TEST_CACHE`` (tests/run shares one
    across its interpreter runs), else a directory of this session's."""
    configured = os.environ.get("TELLY_TEST_CACHE")
    return configured if configured else tmp_path_factory.mktemp("test-cache")


@pytest.fixture(scope="session")
def venvs(test_cache, tmp_path_factory):
    """Factory of real venvs into which the project wheel was installed (see tests/support/venvs.py)."""
    return VenvFactory(test_cache, tmp_path_factory.mktemp("venvs"))


@pytest.fixture
def home(tmp_path):
    """A fresh HOME for one subprocess test."""
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def sample_wheels(test_cache):
    """Wheels of the sample packages under tests/fixtures, built by their own backends."""
    return {d.name: build_wheel(d, test_cache) for d in sorted(FIXTURES.glob("pkg_*"))
            if (d / "pyproject.toml").exists()}


# The venvs of sample packages that several modules use. Each is a shared venv (VenvFactory.get):
# tests must not install into it or uninstall from it. venvs.get keys a venv by its content, so it
# is built once per session (or per TELLY_TEST_CACHE) whichever module asks first; module scope, as
# the modules' own fixtures had, gives each module its own Venv object (tests/test_index.py changes
# its ``python`` for a while).
def _samples_venv(venvs, sample_wheels, *packages):
    """The shared venv with the sample wheels of PACKAGES (directories under tests/fixtures)."""
    return venvs.get(extra=[sample_wheels[name] for name in packages])


@pytest.fixture(scope="module")
def hatch_venv(venvs, sample_wheels):
    """A venv with sample_hatch (tests/fixtures/pkg_hatch): it counts HATCH_PROGRAM (tests/support/hook.py)."""
    return _samples_venv(venvs, sample_wheels, "pkg_hatch")


@pytest.fixture(scope="module")
def st_hatch_venv(venvs, sample_wheels):
    """A venv with sample_st and sample_hatch: a wheel of each backend, setuptools and hatchling."""
    return _samples_venv(venvs, sample_wheels, "pkg_setuptools", "pkg_hatch")


@pytest.fixture(scope="module")
def discovery_venv(venvs, sample_wheels):
    """A venv with what discovery tells apart: both backends' opted-in wheels, sample_plain (not opted
    in) and sample_bad (a malformed table)."""
    return _samples_venv(venvs, sample_wheels, "pkg_setuptools", "pkg_hatch", "pkg_plain", "pkg_badconfig")


@pytest.fixture(scope="session")
def postgres_url():
    """The PostgreSQL server that .ci/run starts; tests that need it skip only outside CI."""
    url = os.environ.get("TELLY_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("TELLY_CI"):
            pytest.fail("TELLY_TEST_POSTGRES_URL is not set although .ci/run should have started PostgreSQL")
        pytest.skip("no PostgreSQL server (run tests/run, which starts one)")
    return url
