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
