"""JSON text for what the exit path writes (the report, the spool header), without importing ``json``.

``import json`` pulls in ``re`` and costs about 10 ms, which a program would pay at every exit
only because it used a watched package. Reports and spool headers hold nothing but dicts with
string keys, lists, strings, integers, floats, booleans and None, so a short encoder suffices.
Its output is byte for byte that of ``json.dumps(value, sort_keys=..., indent=...,
ensure_ascii=True)`` with the default separators (a property test checks it against ``json``).
Reading JSON stays with ``json``: only the sender and the CLI read, never the host's exit.
"""

_ESCAPES = {i: f"\\u{i:04x}" for i in [*range(0x20), 0x7F]}
_ESCAPES.update({ord('"'): '\\"', ord("\\"): "\\\\", ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t",
                 ord("\b"): "\\b", ord("\f"): "\\f"})


def _string(text):
    if text.isascii():
        return '"' + text.translate(_ESCAPES) + '"'
    out = []
    for char in text:
        code = ord(char)
        if code < 0x80:
            out.append(char.translate(_ESCAPES))
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:  # a UTF-16 surrogate pair, as json writes it
            code -= 0x10000
            out.append(f"\\u{0xD800 | (code >> 10):04x}\\u{0xDC00 | (code & 0x3FF):04x}")
    return '"' + "".join(out) + '"'


def _float(value):
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


def dumps(value, sort_keys=False, indent=None):
    """``json.dumps(value, sort_keys=sort_keys, indent=indent)`` for plain data; TypeError otherwise."""
    parts: list[str] = []
    _encode(value, parts, sort_keys, None if indent is None else " " * indent, 0)
    return "".join(parts)


def _encode(value, parts, sort_keys, step, depth):
    if value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif isinstance(value, str):
        parts.append(_string(value))
    elif isinstance(value, int):
        parts.append(int.__repr__(value))
    elif isinstance(value, float):
        parts.append(_float(value))
    elif isinstance(value, dict):
        items = list(value.items())
        if not items:
            parts.append("{}")
            return
        for key, _ in items:
            if not isinstance(key, str):
                raise TypeError(f"keys must be str, not {type(key).__name__}")
        if sort_keys:
            items.sort(key=lambda item: item[0])
        open_, sep, close = _layout(step, depth)
        parts.append("{" + open_)
        for i, (key, item) in enumerate(items):
            if i:
                parts.append(sep)
            parts.append(_string(key) + ": ")
            _encode(item, parts, sort_keys, step, depth + 1)
        parts.append(close + "}")
    elif isinstance(value, (list, tuple)):
        if not value:
            parts.append("[]")
            return
        open_, sep, close = _layout(step, depth)
        parts.append("[" + open_)
        for i, item in enumerate(value):
            if i:
                parts.append(sep)
            _encode(item, parts, sort_keys, step, depth + 1)
        parts.append(close + "]")
    else:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _layout(step, depth):
    """What follows an opening bracket, what separates items, what precedes the closing one."""
    if step is None:
        return "", ", ", ""
    inner = "\n" + step * (depth + 1)
    return inner, "," + inner, "\n" + step * depth
