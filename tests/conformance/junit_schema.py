"""The common JUnit XML schema CI systems read, as a checker.

The rules are those of Jenkins' junit-10.xsd (jenkinsci/xunit-plugin), the schema pytest's
``junit_family=xunit2`` writes to and GitLab, GitHub and Azure reporters read: which element
may hold which, which attributes each may carry and which it must, and the form of ``time``.
Written out here (no XML-schema library is needed for these few rules).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

_TEXT = frozenset({"type", "message"})
_RERUN = frozenset({"rerunFailure", "rerunError", "flakyFailure", "flakyError"})

#: element -> (allowed attributes, required attributes, allowed children, may hold text)
RULES: dict[str, tuple[frozenset[str], frozenset[str], frozenset[str], bool]] = {
    "testsuites": (
        frozenset({"name", "time", "tests", "failures", "errors"}),
        frozenset(),
        frozenset({"testsuite"}),
        False,
    ),
    "testsuite": (
        frozenset(
            {
                "name",
                "tests",
                "failures",
                "errors",
                "group",
                "time",
                "skipped",
                "timestamp",
                "hostname",
                "id",
                "package",
                "file",
                "log",
                "url",
            }
        ),
        frozenset({"name", "tests", "failures", "errors"}),
        frozenset({"testsuite", "properties", "testcase", "system-out", "system-err"}),
        False,
    ),
    "properties": (frozenset(), frozenset(), frozenset({"property"}), False),
    "property": (frozenset({"name", "value"}), frozenset({"name", "value"}), frozenset(), False),
    "testcase": (
        frozenset({"name", "time", "classname", "group"}),
        frozenset({"name"}),
        frozenset({"skipped", "error", "failure", "system-out", "system-err"}) | _RERUN,
        False,
    ),
    "failure": (_TEXT, frozenset(), frozenset(), True),
    "error": (_TEXT, frozenset(), frozenset(), True),
    "skipped": (_TEXT, frozenset(), frozenset(), True),
    "system-out": (frozenset(), frozenset(), frozenset(), True),
    "system-err": (frozenset(), frozenset(), frozenset(), True),
}

#: junit-10.xsd's SUREFIRE_TIME, for the ``time`` of testsuites and testsuite.
SUREFIRE_TIME = re.compile(r"(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]*)?")


def violations(root: ET.Element) -> list[str]:
    """Every way the document rooted at ``root`` breaks the schema (empty: valid)."""
    problems: list[str] = []
    if root.tag not in ("testsuites", "testsuite"):
        problems.append(f"root element <{root.tag}>")

    def visit(element: ET.Element, path: str) -> None:
        rule = RULES.get(element.tag)
        if rule is None:
            problems.append(f"{path}: unknown element")
            return
        allowed, required, children, text = rule
        for name in set(element.attrib) - allowed:
            problems.append(f"{path}: attribute {name!r} not allowed")
        for name in required - set(element.attrib):
            problems.append(f"{path}: attribute {name!r} missing")
        time = element.attrib.get("time")
        if element.tag in ("testsuites", "testsuite") and time is not None and not SUREFIRE_TIME.fullmatch(time):
            problems.append(f"{path}: time {time!r}")
        if not text and (element.text or "").strip():
            problems.append(f"{path}: text not allowed")
        for child in element:
            if child.tag not in children:
                problems.append(f"{path}: <{child.tag}> not allowed here")
            else:
                visit(child, f"{path}/{child.tag}[@name={child.get('name')!r}]")

    visit(root, root.tag)
    return problems


def counts_agree(root: ET.Element) -> list[str]:
    """Every testsuite whose tests/failures/errors/skipped counts do not match its testcases."""
    problems = []
    for suite in root.iter("testsuite"):
        cases = suite.findall("testcase")
        actual = {
            "tests": len(cases),
            "failures": sum(tc.find("failure") is not None for tc in cases),
            "errors": sum(tc.find("error") is not None for tc in cases),
            "skipped": sum(tc.find("skipped") is not None for tc in cases),
        }
        for key, value in actual.items():
            if suite.get(key, "0") != str(value):
                problems.append(f"{suite.get('name')}: {key}={suite.get(key)}, counted {value}")
    return problems
