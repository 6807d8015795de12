"""Drift age and attribution in the reports: how long each finding has been seen (from the
history's first-seen ledger) and who last modified its resource, in JSON, Markdown and the
HTML drill-down (headless Chromium); ``FOREIGN_WRITER`` is a warning that counts for nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from fleet.report.common import age
from fleet.report.render import render_text
from tests.report.conftest import Recorded
from tests.report.test_browser import Page, browser  # noqa: F401 (a fixture)

BRANCH = "/properties/gitRepository/repositoryRef/branch"
NEW = "/properties/kustomizations/apps/path"


def _drift(report: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in report["clusters"] if c["name"] == "aks-cfg-drift")


def test_the_recorded_json_has_first_seen_and_last_modified(recorded: Recorded) -> None:
    found = {f["path"]: f for f in _drift(recorded.report)["findings"]}
    # Drifted since the first of the three sweeps; the kustomization path is new in this one.
    assert found[BRANCH]["firstSeen"] == "2026-11-23T06:00:00Z"
    assert found[NEW]["firstSeen"] == recorded.report["sweep"]["startedAt"]
    assert found[BRANCH]["lastModified"] == {
        "by": "ops@contoso.com",
        "byType": "User",
        "at": "2026-11-22T09:30:00Z",
    }
    failed = next(c for c in recorded.report["clusters"] if c["name"] == "aks-cfg-failed")
    fw = next(f for f in failed["findings"] if f["code"] == "FOREIGN_WRITER")
    assert fw["severity"] == "warning" and fw["lastModified"]["by"] == "ops@contoso.com"
    assert "FOREIGN_WRITER" not in recorded.report["summary"]["byFinding"]  # never counts


def test_age_wording() -> None:
    at = "2026-11-25T06:00:00Z"
    assert age("2026-11-22T05:00:00Z", at) == "3 d"
    assert age("2026-11-25T01:00:00Z", at) == "5 h"
    assert age("2026-11-25T05:48:00Z", at) == "12 min"
    assert age(at, at) == "new"
    assert age(None, at) == "" and age("not a time", at) == ""


def test_markdown_shows_age_and_writer(recorded: Recorded) -> None:
    md = render_text("md", recorded.report, recorded.context)
    details = md.split("### aks-cfg-drift", 1)[1].split("\n### ", 1)[0]
    branch = next(line for line in details.splitlines() if "repositoryRef/branch" in line)
    assert "| 2 d | ops@contoso.com \\(User\\), 2026-11-22 09:30 UTC |" in branch
    path = next(line for line in details.splitlines() if "kustomizations/apps/path" in line)
    assert "| new |" in path
    listing = md.split("## Clusters not compliant\n", 1)[1].split("\n## ", 1)[0]
    row = next(line for line in listing.splitlines() if line.startswith("| aks-cfg-drift |"))
    assert "| 2 d |" in row  # the oldest of its counting findings


def test_the_html_drill_down_shows_age_and_writer(
    browser: Any,  # noqa: F811
    recorded: Recorded,
    tmp_path: Path,
) -> None:
    path = tmp_path / "report.html"
    path.write_text(render_text("html", recorded.report, recorded.context), encoding="utf-8")
    view = Page(browser, path, "")
    page = view.page
    page.fill("#f-q", "aks-cfg-drift")
    expect(view.rows()).to_have_count(1)
    page.click("#rows button[data-row]")
    ages = page.locator("#drill-body .finding .age").all_text_contents()
    assert "drifted for 2 d (since 2026-11-23 06:00 UTC)" in ages
    assert "new in this sweep" in ages
    writers = page.locator("#drill-body .finding .by").all_text_contents()
    assert "last modified by ops@contoso.com (User), 2026-11-22 09:30 UTC" in writers
    assert view.errors == []
