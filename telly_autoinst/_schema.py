"""Checks a package's ``[tool.telly]`` table against the installed ``telly.schema.json``, and nothing else.

The JSON file is the only definition: this module interprets the part of JSON Schema that the
file uses (type, enum, pattern, lengths, items, properties, required, additionalProperties,
minProperties, format "uri") and refuses a schema that uses anything more, so the two cannot
drift apart (a property-based test checks it against ``jsonschema``). It runs where discovery
scans, never on the first watched import: the index stores the verdict.
"""

import os

_ANNOTATIONS = frozenset(("$schema", "$id", "title", "description", "default"))
_KNOWN = _ANNOTATIONS | {"type", "enum", "pattern", "minLength", "maxLength", "items", "properties", "required",
                         "additionalProperties", "minProperties", "format"}
_schema = None


def schema_path(name="telly.schema.json"):
    """A schema file of this installation (the package table's by default): inside the package for a
    wheel, ``config/`` of a checkout."""
    here = os.path.dirname(os.path.abspath(__file__))
    installed = os.path.join(here, "_schemas", name)
    if os.path.isfile(installed):
        return installed
    return os.path.join(os.path.dirname(here), "config", name)


def _load():
    global _schema
    if _schema is None:
        import json

        with open(schema_path(), encoding="utf-8") as handle:
            _schema = json.load(handle)
    return _schema


def table_errors(table):
    """Every way ``table`` breaks the schema, as messages like ``include: expected an array, got 'pkg.*'``."""
    errors: list[str] = []
    _check(_load(), table, "", errors)
    return errors


def _is_type(value, name):
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "array":
        return isinstance(value, list)
    if name == "object":
        return isinstance(value, dict)
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    raise ValueError(f"telly.schema.json uses type {name!r}, which this validator does not know")


_ARTICLE = {"array": "an array", "object": "a table", "string": "a string", "boolean": "true or false",
            "integer": "an integer", "number": "a number"}


def _is_uri(value):
    """RFC 3986 absolute URI: a scheme, ``:``, then only characters a URI may hold, ``%`` escapes well formed."""
    scheme, colon, rest = value.partition(":")
    if not colon or not scheme or not scheme[0].isascii() or not scheme[0].isalpha():
        return False
    if any(not (c.isascii() and (c.isalnum() or c in "+-.")) for c in scheme):
        return False
    allowed = "-._~:/?#[]@!$&'()*+,;=%"
    if any(not (c.isascii() and (c.isalnum() or c in allowed)) for c in rest):
        return False
    parts = rest.split("%")
    hexdigits = "0123456789abcdefABCDEF"
    return all(len(p) >= 2 and p[0] in hexdigits and p[1] in hexdigits for p in parts[1:])


def _where(path):
    return path or "the table"


def _check(schema, value, path, errors):
    unknown = set(schema) - _KNOWN
    if unknown:
        raise ValueError(f"telly.schema.json uses {sorted(unknown)}, which this validator does not know")
    expected = schema.get("type")
    if expected is not None and not _is_type(value, expected):
        errors.append(f"{_where(path)}: expected {_ARTICLE.get(expected, expected)}, got {value!r}")
        return
    if "enum" in schema and not any(value == option and type(value) is type(option) for option in schema["enum"]):
        errors.append(f"{_where(path)}: expected one of {', '.join(repr(o) for o in schema['enum'])}, got {value!r}")
        return
    if isinstance(value, str):
        _check_string(schema, value, path, errors)
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            _check(schema["items"], item, f"{path}[{i}]", errors)
    elif isinstance(value, dict):
        _check_object(schema, value, path, errors)


def _check_string(schema, value, path, errors):
    if len(value) < schema.get("minLength", 0):
        errors.append(f"{_where(path)}: must not be shorter than {schema['minLength']} character(s), got {value!r}")
    elif "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append(f"{_where(path)}: must not be longer than {schema['maxLength']} characters")
    elif "pattern" in schema:
        import re

        if re.search(schema["pattern"], value) is None:
            errors.append(f"{_where(path)}: {value!r} does not match {schema['pattern']}")
    if schema.get("format") == "uri" and not _is_uri(value):
        errors.append(f"{_where(path)}: expected an absolute URL such as \"https://telly.example.org\", got {value!r}")


def _check_object(schema, value, path, errors):
    prefix = f"{path}." if path else ""
    properties = schema.get("properties", {})
    for key in schema.get("required", ()):
        if key not in value:
            errors.append(f"{prefix}{key} is missing; add {key} = \"...\"")
    if len(value) < schema.get("minProperties", 0):
        errors.append(f"{_where(path)}: must have at least {schema['minProperties']} key(s)")
    for key, item in value.items():
        if key in properties:
            _check(properties[key], item, f"{prefix}{key}", errors)
        elif schema.get("additionalProperties", True) is False:
            errors.append(f"{prefix}{key}: unknown key (known: {', '.join(sorted(properties))})")
