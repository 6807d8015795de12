"""One entry point for every report format: ``render(fmt, report, out, context)``.

Formats: json, csv, md, html, policyreport, junit, prometheus (docs/contracts.md, Command line).
Each renderer streams to a text file object; ``render_text`` returns a string for small reports and
tests.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TextIO

from fleet.report.common import Context, Report
from fleet.report.html import write_html
from fleet.report.jsonout import write_json
from fleet.report.junit import write_junit
from fleet.report.markdown import write_markdown
from fleet.report.metrics import write_metrics
from fleet.report.policyreport import write_policyreport
from fleet.report.tabular import write_csv

FORMATS: tuple[str, ...] = ("json", "csv", "md", "html", "policyreport", "junit", "prometheus")
#: Formats that read only the sweep and the summary (not the clusters).
SUMMARY_ONLY = frozenset({"prometheus"})
#: Formats that use the comparison with the previous sweep and the trend.
USES_HISTORY = frozenset({"md", "html"})

Writer = Callable[[Report, TextIO, Context], None]

_WRITERS: dict[str, Writer] = {
    "json": lambda r, o, c: write_json(r, o),
    "csv": lambda r, o, c: write_csv(r, o),
    "md": write_markdown,
    "html": write_html,
    "policyreport": write_policyreport,
    "junit": lambda r, o, c: write_junit(r, o),
    "prometheus": write_metrics,
}


def render(fmt: str, report: Report, out: TextIO, context: Context | None = None) -> None:
    try:
        writer = _WRITERS[fmt]
    except KeyError:
        raise ValueError(
            f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}"
        ) from None
    writer(report, out, context or Context())


def render_text(fmt: str, report: Report, context: Context | None = None) -> str:
    buf = io.StringIO()
    render(fmt, report, buf, context)
    return buf.getvalue()
