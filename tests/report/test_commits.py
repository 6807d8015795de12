"""Commit convergence: which source commit each cluster runs, per flux configuration, in the
sweep JSON, Markdown, HTML (headless Chromium) and Prometheus, the majority marked and the
clusters lagging behind it named (a bounded list and the count of the rest)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from fleet.report.convergence import LAGGING_NAMED, Convergence, short_commit
from fleet.report.model import convergence
from fleet.report.render import render_text
from tests.report.conftest import Recorded
from tests.report.sample import BEHIND, HEAD, HOSTILE
from tests.report.test_browser import Page, _artifact, browser  # noqa: F401 (a fixture)
from tests.report.test_formats import _samples


def _expected(report: dict[str, Any]) -> dict[str | None, int]:
    counts: dict[str | None, int] = {}
    for c in report["clusters"]:
        for fc in c["fluxCommits"]:
            counts[fc["commit"]] = counts.get(fc["commit"], 0) + 1
    return counts


def test_the_summary_counts_clusters_per_commit(recorded: Recorded) -> None:
    entry = recorded.report["summary"]["fluxCommits"]["cluster-config"]
    counts = _expected(recorded.report)
    assert entry["clusters"] == len(recorded.report["clusters"]) == 30
    assert entry["majority"] == HEAD
    assert {c["commit"]: c["clusters"] for c in entry["commits"]} == counts
    assert [c["clusters"] for c in entry["commits"]] == sorted(counts.values(), reverse=True)
    assert counts[None] >= 1 and counts[BEHIND] >= 1 and counts[HOSTILE] == 1


def test_majority_ties_and_nothing_synced() -> None:
    tie = convergence({"b@sha1:2": 2, "a@sha1:1": 2, None: 5})
    assert tie["majority"] == "a@sha1:1"  # the most clusters of the synced; ties: text order
    assert [c["commit"] for c in tie["commits"]] == [None, "a@sha1:1", "b@sha1:2"]
    assert convergence({None: 3})["majority"] is None


def test_lagging_clusters_are_bounded_and_counted() -> None:
    summary = {"app": convergence({"main@sha1:" + "a" * 40: 5, "main@sha1:" + "b" * 40: 25})}
    conv = Convergence(summary)
    for n in range(30):
        commit = "main@sha1:" + ("a" if n < 5 else "b") * 40
        conv.add(
            {
                "id": f"/c/{n}",
                "name": f"c{n}",
                "fluxCommits": [{"configuration": "app", "commit": commit}],
            }
        )
    (row,) = conv.rows()
    assert row["majority"] == "main@sha1:" + "b" * 40 and row["onMajority"] == 83.3
    assert [n["name"] for n in row["lagging"]] == ["c0", "c1", "c2", "c3", "c4"]
    assert row["laggingMore"] == 0 and not row["converged"]
    many = Convergence({"app": convergence({"x@sha1:1": 1, "y@sha1:2": 40})})
    for n in range(41):
        many.add(
            {
                "id": str(n),
                "name": f"n{n}",
                "fluxCommits": [
                    {"configuration": "app", "commit": "x@sha1:1" if n % 41 else "y@sha1:2"}
                ],
            }
        )
    (row,) = many.rows()
    assert len(row["lagging"]) == LAGGING_NAMED and row["laggingMore"] == 40 - LAGGING_NAMED
    assert short_commit("main@sha1:" + "c" * 40) == "main@sha1:cccccccccccc"
    assert short_commit(None) == "not synced"


def test_markdown_shows_convergence(recorded: Recorded) -> None:
    md = render_text("md", recorded.report, recorded.context)
    section = md.split("## Commit convergence\n", 1)[1].split("\n## ", 1)[0]
    entry = recorded.report["summary"]["fluxCommits"]["cluster-config"]
    head = next(c for c in entry["commits"] if c["commit"] == HEAD)
    share = 100.0 * head["clusters"] / 30
    assert f"### cluster-config: 30 clusters, {share:.1f}% on the majority" in section
    assert f"| `main@sha1:0ba6f0d30760` | {head['clusters']} | {share:.1f}% | **majority** |" in (
        section
    )
    assert "| not synced |" in section
    lagging = 30 - head["clusters"]
    named = re.findall(
        r"(?:^|, )([a-z0-9-]+) \(`", section.split("Not on the majority commit: ")[1]
    )
    assert len(named) == LAGGING_NAMED
    assert f" and {lagging - LAGGING_NAMED} more." in section


def test_prometheus_has_clusters_per_commit(recorded: Recorded) -> None:
    samples = _samples(render_text("prometheus", recorded.report, recorded.context))
    counts = _expected(recorded.report)
    got = {
        dict(labels)["commit"]: v
        for (name, labels), v in samples.items()
        if name == "fleet_flux_commit_clusters"
        and dict(labels)["configuration"] == "cluster-config"
    }
    assert got == {(k or ""): v for k, v in counts.items()}


def test_the_html_report_shows_convergence_in_chromium(
    browser: Any,  # noqa: F811
    recorded: Recorded,
    tmp_path: Path,
) -> None:
    path = tmp_path / "report.html"
    path.write_text(render_text("html", recorded.report, recorded.context), encoding="utf-8")
    view = Page(browser, path, "")
    page = view.page
    section = page.locator("section#commits")
    expect(section.locator("h3")).to_contain_text("cluster-config: 30 clusters")
    majority = section.locator("tr.majority")
    expect(majority).to_have_count(1)
    expect(majority.locator("td").first).to_have_text("main@sha1:0ba6f0d30760")
    expect(majority).to_contain_text("★ majority")
    assert majority.locator("td").first.get_attribute("title") == HEAD
    # The hostile "commit" is text, never markup.
    assert page.locator("section#commits script").count() == 0
    expect(section).to_contain_text("<script>")
    lagging = section.locator("p.lagging button[data-cluster]")
    expect(lagging).to_have_count(LAGGING_NAMED)
    expect(section.locator("p.lagging")).to_contain_text("more.")
    name = str(lagging.first.text_content())
    section.scroll_into_view_if_needed()
    page.screenshot(path=str(_artifact("report-commits.png")), full_page=False)
    lagging.first.click()
    assert page.locator("dialog#drill").is_visible()
    assert name in str(page.locator("#drill-title").text_content())
    assert view.errors == []
