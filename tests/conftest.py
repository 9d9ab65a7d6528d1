"""Session fixtures shared by every test module: real venvs, fresh homes, the PostgreSQL URL."""

import os

import pytest

from tests.support.venvs import FIXTURES, VenvFactory, build_wheel


@pytest.fixture(scope="session")
def venvs(tmp_path_factory):
    """Factory of real venvs into which the project wheel was installed with pip."""
    return VenvFactory(tmp_path_factory.mktemp("venvs"))


@pytest.fixture
def home(tmp_path):
    """A fresh HOME for one subprocess test."""
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def sample_wheels(tmp_path_factory):
    """Wheels of the sample packages under tests/fixtures, built by their own backends."""
    out = tmp_path_factory.mktemp("sample-wheels")
    return {d.name: build_wheel(d, out) for d in sorted(FIXTURES.glob("pkg_*")) if (d / "pyproject.toml").exists()}


@pytest.fixture(scope="session")
def postgres_url():
    """The PostgreSQL server that .ci/run starts; tests that need it skip only outside CI."""
    url = os.environ.get("TELLY_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("TELLY_CI"):
            pytest.fail("TELLY_TEST_POSTGRES_URL is not set although .ci/run should have started PostgreSQL")
        pytest.skip("no PostgreSQL server (run tests/run, which starts one)")
    return url
