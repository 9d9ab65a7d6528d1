"""The version is written once (telly_autoinst/__init__.py): every other artifact must agree with it."""

import json
import re

import telly_autoinst
from tests.support.venvs import ROOT


def test_the_npm_package_has_the_python_clients_version():
    assert json.loads((ROOT / "node" / "package.json").read_text())["version"] == telly_autoinst.__version__


def test_the_collector_reads_its_version_and_client_pin_from_the_client():
    # The collector's build hook parses the client's version line with this pattern: a change of
    # the line's shape must not make it fall through to the sdist's PKG-INFO in a checkout.
    hook = (ROOT / "collector" / "hatch_build.py").read_text()
    assert 'r\'^__version__ = "([^"]+)"$\'' in hook
    init = (ROOT / "telly_autoinst" / "__init__.py").read_text()
    assert re.search(r'^__version__ = "([^"]+)"$', init, re.M).group(1) == telly_autoinst.__version__
    assert 'f"telly_autoinst=={version}"' in hook
