"""The public API is exactly ``__all__``, and each name resolves."""

import pytest

import telly_autoinst


def test_all_names_resolve():
    for name in telly_autoinst.__all__:
        assert getattr(telly_autoinst, name) is not None


def test_public_names_are_exactly_all():
    public = {n for n in dir(telly_autoinst) if not n.startswith("_")}
    submodules = {n for n in public if isinstance(getattr(telly_autoinst, n), type(telly_autoinst))}
    assert public - submodules == set(telly_autoinst.__all__)


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        telly_autoinst.no_such_name  # noqa: B018  (the attribute access is the act under test)
