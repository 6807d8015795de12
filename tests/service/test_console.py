"""The web console in headless Chromium, signed in with tokens of the tests' own issuer: the
compliance overview, a cluster's drill-down with its field diffs, a job waiting for approval
approved by an approver, the approve button absent for a viewer and for the job's creator,
no console errors, nothing loaded from anywhere but the server, and screenshots in
tests/artifacts/ for a person to look at.

Needs Debian's chromium; without it the test is skipped locally and fails in CI.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from fleet.service.app import FILES
from tests.report.test_browser import ARTIFACTS, browser  # noqa: F401 (a fixture)
from tests.service.conftest import APPROVER, OPERATOR, VIEWER, Served

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MSAL_VERSION = "5.31.0"


class Console:
    """A page of the console signed in as someone, recording errors and requests."""

    def __init__(self, chromium: Any, served: Served, token: str) -> None:
        self.context = chromium.new_context(viewport={"width": 1280, "height": 900})
        self.context.add_init_script(f"sessionStorage.setItem('fleet.token', {token!r});")
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on(
            "console",
            lambda m: self.errors.append(m.text) if m.type in ("error", "warning") else None,
        )
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.url = served.url

    def open(self, fragment: str) -> Any:
        self.page.goto(f"{self.url}/console/{fragment}")
        self.wait()
        return self.page

    def wait(self) -> None:
        self.page.wait_for_selector("html[data-ready=true]", timeout=30_000)

    def close(self) -> None:
        self.context.close()


def drifted(served: Served) -> str:
    """The name of a cluster with a field diff (a finding with a JSON pointer)."""
    with served.history() as history:
        for c in history.iter_clusters(history.resolve("latest")):
            if any(f.get("path") for f in c.get("findings") or []):
                return str(c["name"])
    raise AssertionError("no cluster of the fleet has a drifted field")


@pytest.fixture(scope="module")
def waiting_job(served: Served) -> Iterator[str]:
    """A finished sweep, and a job waiting for the approval of its second wave."""
    assert served.call("POST", "/api/v1/sweeps", "operator", json={}).status_code == 202
    served.server.service.engine.join(60)  # type: ignore[union-attr]
    creator = served.issuer.token("oid-creator", [OPERATOR, APPROVER], name="Cleo Creator")
    job = served.call("POST", "/api/v1/jobs", token=creator, json={}).json()["id"]
    served.wait_job(job, lambda v: v.get("waitingFor") == "rest")
    yield job


def test_msal_is_vendored_not_loaded_from_a_cdn() -> None:
    vendored = (FILES / "vendor" / "msal-browser.min.js").read_text(encoding="utf-8")
    assert vendored.startswith(f"/*! @azure/msal-browser v{MSAL_VERSION} ")
    assert (FILES / "vendor" / "LICENSE-msal-browser").is_file()
    page = (FILES / "index.html").read_text(encoding="utf-8")
    assert not re.search(r"(src|href)=\"(https?:)?//", page)


def test_the_console_overview_drill_down_and_approval(
    browser: Any,  # noqa: F811
    served: Served,
    waiting_job: str,
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    approver = Console(browser, served, served.issuer.token("oid-ada", [APPROVER], name="Ada A"))
    try:
        page = approver.open("#/overview")
        expect(page.locator("#states")).to_contain_text("compliant")
        expect(page.locator("#who")).to_contain_text("Ada A")
        # Commit convergence: the generated fleet runs several commits per configuration.
        expect(page.locator("h2", has_text="Commit convergence")).to_be_visible()
        expect(page.locator("td code", has_text="@sha1:").first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "console-overview.png"), full_page=True)

        page.locator("#states a", has_text="noncompliant").first.click()
        approver.wait()
        expect(page.locator("tbody th[scope=row] a").first).to_be_visible()
        page = approver.open(f"#/clusters?search={drifted(served)}")
        page.locator("tbody th[scope=row] a").first.click()
        approver.wait()
        expect(page.locator("tr.finding").first).to_be_visible()
        expect(page.locator("td.path").filter(has_text="/properties/").first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "console-cluster.png"), full_page=True)

        page = approver.open(f"#/job?id={waiting_job}")
        expect(page.locator("tr.wave[data-wave=rest] td.approval")).to_contain_text("0 of 2")
        page.locator("#approve").click()
        approver.wait()
        expect(page.locator("tr.wave[data-wave=rest] td.approval")).to_contain_text(
            "1 of 2 (Ada A)"
        )
        expect(page.locator("#approve")).to_have_count(0)  # approved once: no second button
        expect(page.locator("#cancel")).to_have_count(0)  # an approver does not cancel
        page.screenshot(path=str(ARTIFACTS / "console-job.png"), full_page=True)
        shots = sorted(p.name for p in ARTIFACTS.glob("console-*.png"))
        assert {"console-cluster.png", "console-job.png", "console-overview.png"} <= set(shots)
        assert approver.errors == []
        assert all(u.startswith(served.url + "/") for u in approver.requests), approver.requests
    finally:
        approver.close()


@pytest.mark.parametrize(
    ("who", "roles"), [("viewer", [VIEWER]), ("oid-creator", [OPERATOR, APPROVER])]
)
def test_no_approve_button_for_a_viewer_or_the_creator(
    browser: Any,  # noqa: F811
    served: Served,
    waiting_job: str,
    who: str,
    roles: list[str],
) -> None:
    console = Console(browser, served, served.issuer.token(who, roles))
    try:
        page = console.open(f"#/job?id={waiting_job}")
        expect(page.locator("h1")).to_contain_text(waiting_job)
        expect(page.locator("#approve")).to_have_count(0)
        expect(page.locator("#cancel")).to_have_count(1 if OPERATOR in roles else 0)
        assert console.errors == []
    finally:
        console.close()


def test_the_console_carries_a_strict_csp(served: Served) -> None:
    answer = served.call("GET", "/console/")
    csp = answer.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe" not in csp
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert served.call("GET", "/console/config.json").json()["mode"] == "none"
