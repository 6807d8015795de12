"""``--format prometheus``: the sweep as Prometheus metrics (text exposition format 0.0.4).

For the node_exporter textfile collector or a Pushgateway: ``fleet report --format prometheus
--out /var/lib/node_exporter/fleet.prom`` after each sweep. The text is produced by
``prometheus_client`` itself (a custom collector), so names, label escaping and the format are
the library's, not hand-written. All values describe one sweep, so every metric is a gauge.

Metrics (documented in docs/reports.md):

- ``fleet_sweep_info{sweep_id,policy_revision,engine,inventory}`` 1
- ``fleet_sweep_complete`` 1/0, ``fleet_sweep_targets``, ``fleet_sweep_clusters``
- ``fleet_sweep_duration_seconds``, ``fleet_sweep_finished_timestamp_seconds``,
  ``fleet_sweep_age_seconds`` (seconds since the sweep finished, at rendering time)
- ``fleet_compliance_percent`` (the headline figure)
- ``fleet_clusters{state}``: clusters per state (every state, zeros included)
- ``fleet_clusters_with_finding{code}``: clusters with at least one counting finding of a code
- ``fleet_findings{code}``: counting findings per code
- ``fleet_extension_version_clusters{version}``; ``fleet_extension_window_clusters{window}``
- ``fleet_flux_commit_clusters{configuration,commit}``: clusters per source commit of each flux
  configuration (commit convergence)
- ``fleet_policy_clusters{policy,state}``, ``fleet_policy_compliance_percent{policy}``
- ``fleet_subscription_clusters{subscription_id,state}``,
  ``fleet_subscription_compliance_percent{subscription_id}``
- ``fleet_sweep_requests{class,status}``: ARM requests by class and HTTP status
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, TextIO

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from fleet.report.common import CODES, STATES, Context, Report, full_summary, parse_iso
from fleet.report.model import compliance_percent


class _SweepCollector(Collector):
    def __init__(
        self, sweep: Mapping[str, Any], summary: Mapping[str, Any], context: Context
    ) -> None:
        self.sweep = sweep
        self.summary = summary
        self.context = context

    def collect(self) -> Iterator[Metric]:
        sweep, summary = self.sweep, self.summary
        info = GaugeMetricFamily(
            "fleet_sweep_info",
            "The sweep these metrics describe (always 1).",
            labels=["sweep_id", "policy_revision", "engine", "inventory"],
        )
        info.add_metric(
            [
                str(sweep.get("id", "")),
                str(sweep.get("policyRevision", "")),
                str(sweep.get("engine", "")),
                str(sweep.get("inventory", "")),
            ],
            1,
        )
        yield info
        yield GaugeMetricFamily(
            "fleet_sweep_complete",
            "1 when the sweep judged every targeted cluster.",
            value=1 if sweep.get("complete", True) else 0,
        )
        yield GaugeMetricFamily(
            "fleet_sweep_targets",
            "Clusters targeted by at least one policy.",
            value=int(sweep.get("targets") or 0),
        )
        yield GaugeMetricFamily(
            "fleet_sweep_clusters",
            "Clusters judged by the sweep.",
            value=int(summary.get("clusters") or 0),
        )
        if sweep.get("durationSeconds") is not None:
            yield GaugeMetricFamily(
                "fleet_sweep_duration_seconds",
                "How long the sweep took.",
                value=float(sweep["durationSeconds"]),
            )
        finished = parse_iso(sweep.get("finishedAt"))
        if finished is not None:
            yield GaugeMetricFamily(
                "fleet_sweep_finished_timestamp_seconds",
                "When the sweep finished (Unix time).",
                value=finished.timestamp(),
            )
            age = max(0.0, (self.context.at() - finished).total_seconds())
            yield GaugeMetricFamily(
                "fleet_sweep_age_seconds",
                "Seconds between the end of the sweep and the rendering of these metrics.",
                value=round(age, 3),
            )
        if summary.get("compliancePercent") is not None:
            yield GaugeMetricFamily(
                "fleet_compliance_percent",
                "Compliant and exempt clusters among those judged, in percent.",
                value=float(summary["compliancePercent"]),
            )
        by_state = summary.get("byState") or {}
        states = GaugeMetricFamily(
            "fleet_clusters", "Clusters per compliance state.", labels=["state"]
        )
        for s in STATES:
            states.add_metric([s], int(by_state.get(s, 0)))
        yield states
        by_finding = summary.get("byFinding") or {}
        totals = summary.get("findingsTotal") or {}
        with_code = GaugeMetricFamily(
            "fleet_clusters_with_finding",
            "Clusters with at least one counting finding of a code.",
            labels=["code"],
        )
        findings = GaugeMetricFamily(
            "fleet_findings", "Counting findings per code.", labels=["code"]
        )
        for code in CODES:
            with_code.add_metric([code], int(by_finding.get(code, 0)))
            findings.add_metric([code], int(totals.get(code, 0)))
        yield with_code
        yield findings
        versions = GaugeMetricFamily(
            "fleet_extension_version_clusters",
            "Clusters per microsoft.flux extension version.",
            labels=["version"],
        )
        for version, n in (summary.get("extensionVersions") or {}).items():
            versions.add_metric([str(version)], int(n))
        yield versions
        window = GaugeMetricFamily(
            "fleet_extension_window_clusters",
            "Clusters by extension version window (inWindow, outOfWindow, notInstalled).",
            labels=["window"],
        )
        for name, n in (summary.get("versionWindow") or {}).items():
            window.add_metric([str(name)], int(n))
        yield window
        commits = GaugeMetricFamily(
            "fleet_flux_commit_clusters",
            "Clusters per source commit of each flux configuration (commit convergence; "
            'commit="" before the first sync).',
            labels=["configuration", "commit"],
        )
        for name, entry in (summary.get("fluxCommits") or {}).items():
            for c in (entry or {}).get("commits") or ():
                commits.add_metric([str(name), str(c.get("commit") or "")], int(c["clusters"]))
        yield commits
        yield from _grouped(summary.get("byPolicy") or {}, "policy", "policy", "a policy")
        yield from _grouped(
            summary.get("bySubscription") or {}, "subscription", "subscription_id", "a subscription"
        )
        requests = GaugeMetricFamily(
            "fleet_sweep_requests",
            "ARM requests the sweep made, by class and HTTP status.",
            labels=["class", "status"],
        )
        for key, n in (sweep.get("requests") or {}).items():
            kind, _, status = str(key).partition(":")
            requests.add_metric([kind, status], int(n))
        yield requests


def _grouped(
    groups: Mapping[str, Mapping[str, int]], prefix: str, label: str, what: str
) -> Iterator[Metric]:
    counts = GaugeMetricFamily(
        f"fleet_{prefix}_clusters", f"Clusters per state of {what}.", labels=[label, "state"]
    )
    percent = GaugeMetricFamily(
        f"fleet_{prefix}_compliance_percent", f"Compliance of {what}, in percent.", labels=[label]
    )
    for name, by_state in groups.items():
        for s in STATES:
            counts.add_metric([str(name), s], int(by_state.get(s, 0)))
        percent.add_metric([str(name)], compliance_percent(by_state))
    yield counts
    yield percent


def render_metrics(report: Report, context: Context | None = None) -> str:
    from prometheus_client.exposition import generate_latest

    registry = CollectorRegistry(auto_describe=False)
    summary = full_summary(report.get("summary"))
    registry.register(_SweepCollector(report["sweep"], summary, context or Context()))
    return generate_latest(registry).decode("utf-8")


def write_metrics(report: Report, out: TextIO, context: Context | None = None) -> None:
    out.write(render_metrics(report, context))
