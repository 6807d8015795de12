"""``--format csv``: one row per cluster and finding, for spreadsheets and ad-hoc analysis.

A cluster without findings still gets one row (finding columns empty), so the file lists the
whole fleet. ``desired`` and ``actual`` are JSON (a string is quoted), so ``"true"`` and
``true`` stay distinguishable. Quoting is the csv module's (RFC 4180). Cells that a
spreadsheet would run as a formula (``=``, ``+``, ``@``, or ``-`` not followed by a digit) are
prefixed with ``'``: cluster tags and messages come from many hands (CSV injection).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from typing import Any, TextIO

from fleet.report.common import Report, counting, severity_of

COLUMNS = (
    "sweep_id",
    "cluster_id",
    "cluster_name",
    "cluster_type",
    "subscription_id",
    "resource_group",
    "location",
    "cluster_state",
    "cluster_status",
    "extension_version",
    "extension_in_window",
    "policies",
    "finding_code",
    "finding_severity",
    "finding_counts",
    "finding_policy",
    "finding_resource",
    "finding_path",
    "finding_desired",
    "finding_actual",
    "finding_message",
)


def _safe(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    if text[:1] in ("=", "+", "@", "\t", "\r") or (
        text[:1] == "-" and not (len(text) > 1 and (text[1].isdigit() or text[1] == "."))
    ):
        return "'" + text
    return text


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _bool(value: Any) -> str:
    return "" if value is None else ("true" if value else "false")


def write_csv(report: Report, out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    sweep_id = report["sweep"].get("id", "")
    for c in report["clusters"]:
        policies = ";".join(f"{p['name']}={p['state']}" for p in c.get("policies") or ())
        base = [
            sweep_id,
            c.get("id"),
            c.get("name"),
            c.get("type"),
            c.get("subscriptionId"),
            c.get("resourceGroup"),
            c.get("location"),
            c.get("state"),
            c.get("status"),
            c.get("extensionVersion"),
            _bool(c.get("extensionVersionInWindow")),
            policies,
        ]
        findings: list[Mapping[str, Any]] = list(c.get("findings") or ())
        if not findings:
            writer.writerow([_safe(v) for v in base] + [""] * (len(COLUMNS) - len(base)))
            continue
        for f in findings:
            has_value = f.get("path") is not None
            row = [
                *base,
                f.get("code"),
                severity_of(f),
                _bool(counting(f)),
                f.get("policy"),
                f.get("resource"),
                f.get("path"),
                _json(f.get("desired")) if has_value else "",
                _json(f.get("actual")) if has_value else "",
                f.get("message"),
            ]
            writer.writerow([_safe(v) for v in row])
