"""The Markdown report never drops a cluster silently: every cluster that is not compliant has
its line, or the report says exactly how many it left out and the command that lists them all."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from typer.testing import CliRunner

from fleet.cli.app import app
from fleet.core.vocabulary import Code, State
from fleet.evaluate.verdicts import Finding, PolicyResult, Verdict
from fleet.record.history import open_history
from fleet.report.common import Context
from fleet.report.model import SweepInfo, build_report
from fleet.report.render import render_text

SUB = "00000000-0000-0000-0000-000000000001"
STARTED = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)


def _verdict(n: int, state: State) -> Verdict:
    cid = (
        f"/subscriptions/{SUB}/resourceGroups/rg-{n % 7}/providers/"
        f"Microsoft.ContainerService/managedClusters/aks-{n:04d}"
    )
    findings = []
    if state is State.NONCOMPLIANT:
        # More findings on higher numbers: the list is sorted worst first.
        findings = [
            Finding(
                code=Code.FLUX_CONFIG_DRIFT,
                policy="baseline",
                resource=f"{cid}/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/c",
                path=f"/properties/x{k}",
                message="drift",
            )
            for k in range(1 + n % 3)
        ]
    return Verdict(
        id=cid,
        name=f"aks-{n:04d}",
        type="managedClusters",
        subscription_id=SUB,
        resource_group=f"rg-{n % 7}",
        state=state,
        policies=[PolicyResult(name="baseline", state=state)],
        findings=findings,
    )


def _report(bad: int, good: int) -> dict[str, Any]:
    verdicts = [_verdict(n, State.NONCOMPLIANT) for n in range(bad)]
    verdicts += [_verdict(bad + n, State.COMPLIANT) for n in range(good)]
    info = SweepInfo(id="sweep-big", started_at=STARTED, finished_at=STARTED, policy_revision="r")
    return build_report(info, verdicts)


def _listed(md: str) -> list[str]:
    section = md.split("## Clusters not compliant\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| (aks-\d{4}) \|", section, flags=re.M)


def test_a_fleet_larger_than_the_limit_says_how_many_were_left_out() -> None:
    report = _report(bad=530, good=40)
    md = render_text("md", report)
    names = _listed(md)
    assert len(names) == 500 and len(set(names)) == 500
    assert "**530** clusters are not compliant" in md
    assert (
        "**30** more clusters that are not compliant are not listed here (the first 500 are). "
        "`fleet report show sweep-big --format md --all` lists every one" in md
    )
    # The worst first: every listed cluster has at least as many findings as any left out.
    counts = {c["name"]: len(c["findings"]) for c in report["clusters"]}
    left_out = set(counts) - set(names) - {f"aks-{n:04d}" for n in range(530, 570)}
    assert len(left_out) == 30
    assert min(counts[n] for n in names) >= max(counts[n] for n in left_out)
    assert [counts[n] for n in names] == sorted((counts[n] for n in names), reverse=True)
    # Compliant clusters are never in the list; the details stay for the worst 15.
    assert not {f"aks-{n:04d}" for n in range(530, 570)} & set(names)
    assert md.count("\n### aks-") == 15


def test_without_a_limit_every_cluster_that_is_not_compliant_is_listed() -> None:
    report = _report(bad=530, good=40)
    names = _listed(render_text("md", report, Context(listed=None)))
    assert sorted(names) == [f"aks-{n:04d}" for n in range(530)]
    md = render_text("md", _report(bad=3, good=2))
    assert len(_listed(md)) == 3 and "more clusters that are not compliant" not in md
    assert "None: every cluster is compliant" in render_text("md", _report(bad=0, good=2))


def test_report_show_all_lists_every_cluster(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    with open_history(url, upgrade=True) as history:
        history.record_sweep(_report(bad=520, good=1))
    runner = CliRunner()
    capped = runner.invoke(app, ["report", "show", "latest", "-f", "md", "--database", url])
    assert capped.exit_code == 0, capped.output
    assert len(_listed(capped.stdout)) == 500 and "**20** more clusters" in capped.stdout
    every = runner.invoke(app, ["report", "show", "latest", "-f", "md", "--all", "--database", url])
    assert every.exit_code == 0, every.output
    assert len(_listed(every.stdout)) == 520 and "more clusters that are not" not in every.stdout
