"""The fixtures both test trees share (tests/ and collector/tests/): see tests/support/fixtures.py.

A conftest applies to its own directory only; this one sits above both trees.
"""

pytest_plugins = ["tests.support.fixtures"]
