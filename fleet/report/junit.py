"""``--format junit``: JUnit XML, so CI systems show compliance as test results.

One ``<testsuite>`` per policy, one ``<testcase>`` per cluster and policy: ``classname`` is the
policy, ``name`` the cluster. A case's outcome follows the policy's state on the cluster:

- compliant → passed (warning/info findings, if any, in ``<system-out>``);
- noncompliant, conflicting → ``<failure type="noncompliant|conflicting">`` with every finding
  (code, resource, path, desired, actual, message) in the body;
- error → ``<error type="error">`` (the cluster could not be read: not a test failure);
- unknown, exempt → ``<skipped>`` with the reason (unreachable/stopped; the exemption).

Findings that belong to no policy go to a ``(unowned)`` suite, failing only when one counts.
Cluster names repeat across resource groups; such names get ``resourceGroup/name`` so every
case is distinct (and stays stable from sweep to sweep). The full ARM id is in
``<system-out>`` of every case. Time is 0: a sweep does not time clusters one by one.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any, TextIO

from fleet.report.common import UNOWNED, Cluster, Report, counting, severity_of, show

_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _x(value: Any) -> str:
    """Text XML 1.0 can carry (control characters removed; ElementTree escapes the rest)."""
    return _INVALID_XML.sub("", "" if value is None else str(value))


def _finding_text(f: Mapping[str, Any]) -> str:
    lines = [
        f"[{severity_of(f)}] {f.get('code')}: {f.get('message', '')}",
        f"  resource: {f.get('resource')}",
    ]
    if f.get("path") is not None:
        lines += [
            f"  path:     {f.get('path')}",
            f"  desired:  {show(f.get('desired'), 500)}",
            f"  actual:   {show(f.get('actual'), 500)}",
        ]
    return "\n".join(lines)


def _case(
    cluster: Cluster,
    name: str,
    policy: str,
    state: str,
    reason: str | None,
    findings: list[Mapping[str, Any]],
) -> tuple[ET.Element, str]:
    case = ET.Element("testcase", {"classname": _x(policy), "name": _x(name), "time": "0"})
    scored = [f for f in findings if counting(f)]
    info = [f for f in findings if not counting(f)]
    outcome = "passed"
    if state in ("noncompliant", "conflicting") or (policy == UNOWNED and scored):
        kind = state if state in ("noncompliant", "conflicting") else "noncompliant"
        codes = ", ".join(sorted({str(f.get("code")) for f in scored})) or kind
        el = ET.SubElement(case, "failure", {"type": kind, "message": _x(f"{kind}: {codes}")})
        el.text = _x("\n\n".join(_finding_text(f) for f in scored))
        outcome = "failure"
    elif state == "error":
        codes = ", ".join(sorted({str(f.get("code")) for f in scored})) or "error"
        el = ET.SubElement(case, "error", {"type": "error", "message": _x(f"error: {codes}")})
        el.text = _x("\n\n".join(_finding_text(f) for f in scored))
        outcome = "error"
    elif state in ("unknown", "exempt"):
        if state == "exempt":
            message = f"exempt: {reason or 'exempted'}"
        else:
            message = "unknown: " + (
                "; ".join(str(f.get("message", "")) for f in scored) or "not judged"
            )
        ET.SubElement(case, "skipped", {"message": _x(message)})
        outcome = "skipped"
    out = [
        f"cluster: {cluster.get('id')}",
        f"state: {cluster.get('state')} (policy {policy}: {state})",
    ]
    if info:
        out.append("not counted:")
        out += [_finding_text(f) for f in info]
    ET.SubElement(case, "system-out").text = _x("\n".join(out))
    return case, outcome


def write_junit(report: Report, out: TextIO) -> None:
    sweep = report["sweep"]
    suites: dict[str, list[tuple[ET.Element, str]]] = defaultdict(list)
    # One pass over the clusters (a database cursor): repeated names are fixed at the end.
    named: dict[str, list[tuple[str, str, list[ET.Element]]]] = defaultdict(list)
    for c in report["clusters"]:
        name = str(c.get("name", ""))
        by_policy: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        for f in c.get("findings") or ():
            by_policy[f.get("policy") or UNOWNED].append(f)
        mine: list[ET.Element] = []
        for p in c.get("policies") or ():
            case = _case(
                c, name, p["name"], str(p["state"]), p.get("reason"), by_policy.pop(p["name"], [])
            )
            suites[p["name"]].append(case)
            mine.append(case[0])
        unowned = by_policy.pop(UNOWNED, [])
        if unowned:
            case = _case(c, name, UNOWNED, "compliant", None, unowned)
            suites[UNOWNED].append(case)
            mine.append(case[0])
        named[name].append((str(c.get("id", "")).lower(), str(c.get("resourceGroup", "")), mine))
    for name, entries in named.items():
        if len({key for key, _, _ in entries}) > 1:
            for _, group, elements in entries:
                for element in elements:
                    element.set("name", _x(f"{group}/{name}"))
    root = ET.Element("testsuites", {"name": f"fleet compliance {sweep.get('id', '')}"})
    totals: Counter[str] = Counter()
    for policy in sorted(suites):
        cases = suites[policy]
        counts = Counter(outcome for _, outcome in cases)
        suite = ET.SubElement(
            root,
            "testsuite",
            {
                "name": _x(policy),
                "tests": str(len(cases)),
                "failures": str(counts["failure"]),
                "errors": str(counts["error"]),
                "skipped": str(counts["skipped"]),
                "time": "0",
                "timestamp": _x(
                    str(sweep.get("finishedAt") or sweep.get("startedAt") or "")
                ).removesuffix("Z"),
                "hostname": "fleet",
            },
        )
        props = ET.SubElement(suite, "properties")
        for key in ("id", "policyRevision", "engine", "inventory"):
            ET.SubElement(
                props, "property", {"name": f"sweep.{key}", "value": _x(sweep.get(key, ""))}
            )
        for element, _ in cases:
            suite.append(element)
        totals.update(counts)
        totals["tests"] += len(cases)
    root.set("tests", str(totals["tests"]))
    root.set("failures", str(totals["failure"]))
    root.set("errors", str(totals["error"]))
    root.set("skipped", str(totals["skipped"]))
    root.set("time", "0")
    ET.indent(root)
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(ET.tostring(root, encoding="unicode"))
    out.write("\n")
