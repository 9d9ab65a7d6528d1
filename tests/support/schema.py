"""Validation of reports against config/report.schema.json, shared by the pipeline tests."""

import json

import jsonschema

from tests.support.venvs import ROOT

REPORT_SCHEMA = json.loads((ROOT / "config" / "report.schema.json").read_text())


def validate_report(report):
    """Raise jsonschema.ValidationError unless ``report`` (a dict or JSON bytes) is a valid v1 report."""
    if isinstance(report, (bytes, str)):
        report = json.loads(report)
    jsonschema.Draft202012Validator(REPORT_SCHEMA, format_checker=jsonschema.FormatChecker()).validate(report)
    return report


def read_reports(directory):
    """Every ``*.json`` report a file-storage run wrote into ``directory``, validated, oldest first."""
    from pathlib import Path

    paths = sorted(Path(directory).glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    return [validate_report(p.read_bytes()) for p in paths]


def split_shown(stderr):
    """The JSON documents TELLY_SHOW_ME printed, as exact byte strings, in order."""
    decoder = json.JSONDecoder()
    text = stderr if isinstance(stderr, str) else stderr.decode("ascii", "replace")
    shown = []
    index = text.find("{")
    while index != -1:
        try:
            _, end = decoder.raw_decode(text, index)
        except ValueError:
            index = text.find("{", index + 1)
            continue
        shown.append(text[index:end].encode("ascii") + b"\n")
        index = text.find("{", end)
    return shown
