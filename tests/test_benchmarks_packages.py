"""benchmarks/_packages.py: the whole-run rows watch the packages the default engine is tested on."""

import ast

from benchmarks import _packages
from tests import test_engines_packages


def test_the_whole_run_set_is_the_tested_set():
    assert {package.name for package in _packages.PACKAGES} == set(test_engines_packages.PACKAGES)
    watched = {module for package in _packages.PACKAGES for module in package.watched.split(",")}
    assert watched == set(test_engines_packages.MODULES.split(","))
    assert set(_packages.WITH_TARGETS) <= {package.name for package in _packages.PACKAGES}


def test_each_program_imports_the_package_it_watches():
    for package in _packages.PACKAGES:
        imported = {alias.name.split(".")[0] for node in ast.walk(ast.parse(package.program))
                    if isinstance(node, (ast.Import, ast.ImportFrom))
                    for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module)])}
        assert imported & set(package.watched.split(",")), package.name
        assert package.requirement.split("==")[0] == package.name
