"""The report as JUnit XML (``--junit FILE``) for CI: one testcase per check.

A FAIL is a ``<failure>`` whose text holds the exact requests and responses (redacted); a
SKIPPED is ``<skipped>`` with the reason. Each testcase carries its level and spec source as
properties, and its classname is ``amp.conformance.<group>``.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from amp_tools.conformance.model import Outcome, Report

__all__ = ["to_junit"]


def to_junit(report: Report) -> str:
    suite = ET.Element("testsuite", {
        "name": "amp-conformance", "tests": str(len(report.results)),
        "failures": str(report.count(Outcome.FAIL)), "skipped": str(report.count(Outcome.SKIPPED)),
        "errors": "0", "time": f"{report.elapsed_ms / 1000:.3f}"})
    props = ET.SubElement(suite, "properties")
    for name, url in report.targets.items():
        ET.SubElement(props, "property", {"name": f"target.{name}", "value": url})
    for r in report.results:
        case = ET.SubElement(suite, "testcase", {"classname": f"amp.conformance.{r.spec.group}", "name": r.spec.id,
                                                 "time": f"{r.elapsed_ms / 1000:.3f}"})
        cprops = ET.SubElement(case, "properties")
        for key, value in (("level", r.spec.level), ("source", r.spec.source), ("title", r.spec.title)):
            ET.SubElement(cprops, "property", {"name": key, "value": value})
        if r.outcome is Outcome.FAIL:
            fail = ET.SubElement(case, "failure", {"message": f"[{r.spec.level}] {r.reason}",
                                                   "type": f"{r.spec.level}-violation"})
            fail.text = json.dumps([e.as_dict() for e in r.exchanges], indent=2, ensure_ascii=False)
        elif r.outcome is Outcome.SKIPPED:
            ET.SubElement(case, "skipped", {"message": r.reason})
        else:
            ET.SubElement(case, "system-out").text = r.reason
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
