"""The example `tokenopt analyze --json` report under tests/fixtures, and its schema.

`tests/fixtures/analyze_report.schema.json` is a copy of the schema the analysis ships
(langchain_tokenopt/data/analyze_report.schema.json on the analysis branch); the example
is a realistic report of a 2,951-request log with mixed models, an unpriced model, a
sub-cent saving and skipped records, checked against that schema by the tests.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EXAMPLE_REPORT_PATH = FIXTURES / "analyze_report_example.json"
SCHEMA_PATH = FIXTURES / "analyze_report.schema.json"

_EXAMPLE: dict[str, Any] = json.loads(EXAMPLE_REPORT_PATH.read_text(encoding="utf-8"))


def example_report() -> dict[str, Any]:
    """A fresh deep copy of the example report, free to change in a test."""
    return copy.deepcopy(_EXAMPLE)


def schema_errors(report: Any) -> list[str]:
    """Every way `report` breaks the report schema (empty when it conforms)."""
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(report)
    ]


def hostile_report() -> dict[str, Any]:
    """The example with markup in every string that comes from a log."""
    report = example_report()
    report["sources"] = ["<title>x</title>.jsonl"]
    report["models"][0]["model"] = "<script>console.error('xss-model')</script>"
    report["conversations_top"][0]["id"] = '"><img src=x onerror="console.error(1)">'
    report["conversations_top"][0]["models"] = ["<script>console.error('xss-conv')</script>"]
    report["levers"][0]["note"] = "<b>bold</b> & <i>co</i>"
    report["levers"][1]["details"]["tiers"] = {"<svg onload=alert(1)>": "x"}
    report["overlaps"][0]["note"] = "</li></ul><script>console.error('xss-note')</script>"
    report["skipped"]["examples"] = ["log.jsonl, line 1: field '</code><script>alert(1)</script>'"]
    report["calls"]["model"][0] = "<script>console.error('xss-call')</script>"
    return report
