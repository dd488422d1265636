"""The report as JSON (``--json``): every check with its level, source, outcome and evidence."""

from __future__ import annotations

import json

from amp_tools.conformance.model import Report

__all__ = ["to_json"]


def to_json(report: Report) -> str:
    return json.dumps(report.as_dict(), indent=2, ensure_ascii=False)
