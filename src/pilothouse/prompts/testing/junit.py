"""JUnit XML for a scenario suite, the format CI systems read: one <testcase> per case, a <failure> per
case whose assertions failed, an <error> per case whose call failed, and the model's output as system-out.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from pilothouse.prompts.testing.runner import CaseResult, SuiteResult

# Characters XML 1.0 cannot carry at all (model output may contain them).
_INVALID_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: str) -> str:
    return _INVALID_XML.sub("\ufffd", text)


def _testcase(parent: ET.Element, classname: str, case: CaseResult) -> None:
    element = ET.SubElement(
        parent, "testcase", name=_clean(case.name), classname=classname, time=f"{case.duration_s:.3f}"
    )
    if case.error is not None:
        ET.SubElement(element, "error", message=_clean(case.error), type="ExecutionFailed").text = _clean(case.error)
    elif not case.passed:
        failures = case.failures
        lines = [f"{o.assertion}: {o.detail}" for o in failures]
        failure = ET.SubElement(element, "failure", message=_clean(lines[0]), type=failures[0].kind)
        failure.text = _clean("\n".join(lines))
    if case.execution is not None:
        ET.SubElement(element, "system-out").text = _clean(case.execution.output)


def to_junit_xml(suite: SuiteResult, *, name: str | None = None) -> str:
    """The suite as a JUnit XML document (a <testsuites> root holding one <testsuite>)."""
    title = _clean(name or suite.target or "prompt")
    errors = sum(1 for c in suite.cases if c.error is not None)
    failures = suite.failed - errors
    duration = f"{sum(c.duration_s for c in suite.cases):.3f}"
    counts = {"tests": str(suite.total), "failures": str(failures), "errors": str(errors), "time": duration}
    root = ET.Element("testsuites", {"name": title, **counts})
    testsuite = ET.SubElement(root, "testsuite", {"name": title, "skipped": "0", **counts})
    for case in suite.cases:
        _testcase(testsuite, title, case)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
