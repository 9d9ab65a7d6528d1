"""The exit path's JSON encoder writes exactly what ``json.dumps`` writes, for every plain value."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telly_autoinst._jsontext import dumps

_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text()
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner,
                                                                                             max_size=4),
                       max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(_VALUES, st.booleans(), st.sampled_from([None, 0, 2]))
def test_same_text_as_json(value, sort_keys, indent):
    assert dumps(value, sort_keys=sort_keys, indent=indent) == json.dumps(value, sort_keys=sort_keys, indent=indent)


def test_non_bmp_escape_and_controls():
    text = "a\U0001F600\x00\x1f\"\\\u2028é"
    assert dumps([text]) == json.dumps([text])


@pytest.mark.parametrize("bad", [{1: "int key"}, {"set": {1}}, object()])
def test_refuses_what_json_refuses(bad):
    with pytest.raises(TypeError):
        dumps(bad)
