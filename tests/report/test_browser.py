"""The HTML report in headless Chromium: it loads without console errors, the cluster table
filters, searches, sorts and pages, a cluster's drill-down shows its field diffs, links into
the table work, and a screenshot lands in tests/artifacts/report.png for a person to look at.

Needs Debian's chromium (``apt-get install chromium``); without it the test is skipped locally
and fails in CI (``FLEET_CI=1``).
"""

from __future__ import annotations

import copy
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from fleet.report.render import render_text
from tests.report.conftest import Recorded

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("FLEET_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        if os.environ.get("FLEET_CI"):
            pytest.fail(
                f"chromium is required in CI ({CHROMIUM} not found; apt-get install chromium)"
            )
        pytest.skip(f"chromium not found at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Page:
    """A loaded report page that records console errors and failed requests."""

    def __init__(self, browser: Any, path: Path, fragment: str = "") -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on(
            "console",
            lambda m: self.errors.append(m.text) if m.type in ("error", "warning") else None,
        )
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(path.as_uri() + fragment)
        self.page.wait_for_selector("html[data-ready=true]", timeout=30_000)

    def rows(self) -> Any:
        return self.page.locator("#rows th[scope=row]")

    def names(self) -> list[str]:
        return [str(n) for n in self.page.locator("#rows th[scope=row] button").all_text_contents()]

    def count(self) -> str:
        return str(self.page.locator("#count").text_content())


@pytest.fixture(scope="module")
def report_file(recorded: Recorded, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(render_text("html", recorded.report, recorded.context), encoding="utf-8")
    return path


def test_the_report_works_in_chromium(browser: Any, report_file: Path, recorded: Recorded) -> None:
    view = Page(browser, report_file)
    page = view.page
    assert view.count() == "Showing 1–30 of 30 matching clusters (30 in total)"
    first = view.names()
    assert len(first) == 30
    assert first[0] == "aks-read-error"  # worst state first by default

    # Search (debounced): fewer rows, and the ones that match.
    page.fill("#f-q", "cfg")
    expect(view.rows()).not_to_have_count(30)  # waits out the debounce
    found = view.names()
    assert found and all("cfg" in n for n in found), found
    page.fill("#f-q", "rg-edge offline")  # several words: all must match
    expect(view.rows()).to_have_count(1)
    assert view.names() == ["arc-offline"]
    page.click("#f-reset")
    expect(view.rows()).to_have_count(30)

    # Filters: by state, finding code, subscription, policy.
    page.select_option("#f-state", "noncompliant")
    assert len(view.names()) == 12
    page.select_option("#f-code", "FLUX_CONFIG_DRIFT")
    assert sorted(view.names()) == ["aks-cfg-drift", "aks-two-policies"]
    page.select_option("#f-state", "")
    page.select_option("#f-code", "")
    page.select_option("#f-policy", "team-apps")
    assert sorted(view.names()) == ["aks-conflict", "aks-two-policies"]
    page.select_option("#f-policy", "")
    dev = recorded.report["summary"]["bySubscription"]["00000000-0000-0000-0000-000000000003"]
    page.select_option("#f-sub", "00000000-0000-0000-0000-000000000003")
    assert len(view.names()) == sum(dev.values())
    page.select_option("#f-state", "action")
    assert len(view.names()) == dev["noncompliant"] + dev["conflicting"] + dev["error"]
    page.click("#f-reset")

    # Sort: a header click changes the order and says so to assistive technology.
    before = view.names()
    page.click("button[data-sort=name]")
    by_name = view.names()
    assert by_name != before and by_name == sorted(by_name, key=str.lower)
    assert page.get_attribute("th[data-key=name]", "aria-sort") == "ascending"
    page.click("button[data-sort=name]")
    assert view.names() == list(reversed(by_name))
    assert page.get_attribute("th[data-key=name]", "aria-sort") == "descending"
    page.click("button[data-sort=version]")  # semantic order, "not installed" lowest
    assert view.names()[:4] == ["aks-ext-missing", "aks-read-error", "aks-arm64", "aks-old-version"]

    # Drill-down: the cluster's facts and its field diffs (path, desired, actual).
    page.fill("#f-q", "aks-cfg-drift")
    expect(view.rows()).to_have_count(1)
    page.click("#rows button[data-row]")
    dialog = page.locator("dialog#drill")
    assert dialog.is_visible()
    assert "aks-cfg-drift" in str(page.locator("#drill-title").text_content())
    paths = page.locator("#drill-body code.path").all_text_contents()
    assert "/properties/gitRepository/repositoryRef/branch" in paths
    diff = page.locator("#drill-body .diff").first
    assert diff.locator(".desired pre").text_content() == '"main"'
    assert diff.locator(".actual pre").text_content() == '"dev"'
    # Hostile values are text, never markup.
    assert page.locator("#drill-body b").count() == 0
    assert "</script><b>x</b>" in str(page.locator("#drill-body").text_content())
    page.screenshot(path=str(_artifact("report-drilldown.png")))
    assert "cluster=" in page.evaluate("location.hash")
    page.keyboard.press("Escape")
    assert not dialog.is_visible()

    # Links elsewhere in the page drive the table.
    page.click("#f-reset")
    page.click("button[data-filter=code][data-value=POLICY_CONFLICT]")
    assert view.names() == ["aks-conflict"]
    assert page.input_value("#f-code") == "POLICY_CONFLICT"
    page.click("#changes button[data-cluster]")  # a new finding in "what changed"
    assert dialog.is_visible()
    page.keyboard.press("Escape")

    page.click("#f-reset")
    page.screenshot(path=str(_artifact("report.png")), full_page=True)
    assert view.errors == []
    assert all(u.startswith(("file:", "data:", "blob:")) for u in view.requests), view.requests


def test_a_link_with_a_fragment_restores_the_view(browser: Any, report_file: Path) -> None:
    view = Page(browser, report_file, "#state=unknown&sort=name&dir=1")
    assert view.names() == ["aks-stopped", "arc-offline"]
    assert view.page.input_value("#f-state") == "unknown"
    cluster = (
        "/subscriptions/00000000-0000-0000-0000-000000000003/resourceGroups/rg-lab/providers/"
        "Microsoft.ContainerService/managedClusters/aks-lab"
    )
    linked = Page(browser, report_file, "#cluster=" + cluster)
    assert linked.page.locator("dialog#drill").is_visible()
    assert "lab cluster, see TICKET-42" in str(linked.page.locator("#drill-body").text_content())
    assert view.errors == [] and linked.errors == []


def test_pages_and_export(browser: Any, recorded: Recorded, tmp_path: Path) -> None:
    report = copy.deepcopy(recorded.report)
    clusters = []
    for i in range(9):  # 270 clusters: three pages of 100
        for c in recorded.report["clusters"]:
            c = copy.deepcopy(c)
            c["name"] = f"{c['name']}-{i}"
            c["id"] = c["id"] + f"-{i}"
            clusters.append(c)
    report["clusters"] = clusters
    path = tmp_path / "big.html"
    path.write_text(render_text("html", report, recorded.context), encoding="utf-8")
    view = Page(browser, path)
    page = view.page
    assert view.count() == "Showing 1–100 of 270 matching clusters (270 in total)"
    assert page.is_disabled("#p-prev") and not page.is_disabled("#p-next")
    page.click("#p-next")
    assert view.count().startswith("Showing 101–200 of 270")
    assert len(view.names()) == 100
    page.click("#p-last")
    assert view.count().startswith("Showing 201–270 of 270") and page.is_disabled("#p-next")
    page.select_option("#p-size", "250")
    assert len(view.names()) == 250
    with page.expect_download() as download:
        page.click("#f-export")
    exported = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert len(exported) == 271 and exported[0].startswith("cluster_id,name,state")
    assert view.errors == []


def _artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


def test_an_empty_sweep_in_chromium(browser: Any, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from fleet.report.model import SweepInfo, build_report

    now = datetime(2026, 11, 25, tzinfo=UTC)
    info = SweepInfo(id="empty", started_at=now, finished_at=now, policy_revision="r")
    path = tmp_path / "empty.html"
    path.write_text(render_text("html", build_report(info, [])), encoding="utf-8")
    view = Page(browser, path)
    assert view.count() == "No cluster matches (0 in total)"
    assert view.errors == []
