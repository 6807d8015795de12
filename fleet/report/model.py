"""The sweep report (docs/contracts.md, Compliance vocabulary, a contract): built from verdicts,
read by every renderer.

``build_report`` is pure: sweep metadata plus verdicts in, the report dictionary out. Every
output format (table, JSON, YAML, CSV, Markdown, HTML, PolicyReport, JUnit, Prometheus) and
the history database start from this one structure, so they cannot disagree.

Shape (camelCase, extends docs/contracts.md, Compliance vocabulary; never rename a key)::

    {"sweep":   {id, startedAt, finishedAt, durationSeconds, policyRevision, engine, inventory,
                 policies, subscriptions, complete, interrupted, targets, requests},
     "summary": {clusters, compliancePercent, byState, byFinding, findingsTotal,
                 extensionVersions, versionWindow, byPolicy, bySubscription, fluxCommits},
     "clusters": [Verdict.to_report(), ...]}

- ``byState`` has every state, zeros included, so dashboards need no defaults.
- ``byFinding`` counts *clusters* that have at least one counting finding of a code;
  ``findingsTotal`` counts findings (a cluster with two drifted fields counts twice).
- ``compliancePercent`` = (compliant + exempt) / clusters judged, where clusters whose state is
  ``unknown`` are not judged (they could not be looked at); 100.0 for an empty sweep.
- ``versionWindow``: clusters whose extension is ``inWindow``, ``outOfWindow``, ``notInstalled``.
- ``fluxCommits``: commit convergence, per flux configuration name ``{clusters, majority,
  commits: [{commit, clusters}]}``, the commits sorted by clusters (most first; ``commit`` is
  null for clusters that have not synced yet); ``majority`` is the commit most clusters run
  (ties: the first in text order), null when none has synced.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from fleet.core.vocabulary import NON_COUNTING, STATE_RANK, State
from fleet.evaluate.verdicts import Verdict


class SweepInfo(BaseModel):
    """Metadata of one sweep (the report's ``sweep`` object)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    id: str
    started_at: datetime
    finished_at: datetime | None = None
    policy_revision: str
    engine: str = "local"
    inventory: str = "arm"
    policies: list[str] = Field(default_factory=list)
    subscriptions: list[str] = Field(default_factory=list)
    #: False when the sweep stopped early (Ctrl-C, cancel, budget): the report then holds
    #: only the clusters that were judged and must not be read as the whole fleet.
    complete: bool = True
    interrupted: bool = False
    #: Clusters targeted by at least one policy (judged or not).
    targets: int = 0
    #: HTTP attempts by ``class:status`` (e.g. ``reads:200``, ``reads:429``).
    requests: dict[str, int] = Field(default_factory=dict)

    def to_report(self) -> dict[str, Any]:
        data = self.model_dump(mode="json", by_alias=True)
        if self.finished_at is not None:
            data["durationSeconds"] = round((self.finished_at - self.started_at).total_seconds(), 3)
        else:
            data["durationSeconds"] = None
        return data


def _empty_states() -> dict[str, int]:
    return {s.value: 0 for s in sorted(State, key=STATE_RANK.__getitem__)}


class SummaryBuilder:
    """Accumulates the summary one verdict at a time (memory flat in the number of clusters)."""

    def __init__(self) -> None:
        self.clusters = 0
        self.by_state = _empty_states()
        self.by_finding: Counter[str] = Counter()
        self.findings_total: Counter[str] = Counter()
        self.versions: Counter[str] = Counter()
        self.window = {"inWindow": 0, "outOfWindow": 0, "notInstalled": 0}
        self.by_policy: dict[str, dict[str, int]] = defaultdict(_empty_states)
        self.by_subscription: dict[str, dict[str, int]] = defaultdict(_empty_states)
        self.commits: dict[str, Counter[str | None]] = defaultdict(Counter)

    def add(self, verdict: Verdict | dict[str, Any]) -> None:
        v = verdict.to_report() if isinstance(verdict, Verdict) else verdict
        self.clusters += 1
        self.by_state[v["state"]] += 1
        self.by_subscription[v["subscriptionId"]][v["state"]] += 1
        for p in v.get("policies") or ():
            self.by_policy[p["name"]][p["state"]] += 1
        seen: set[str] = set()
        for f in v.get("findings") or ():
            if f.get("severity") in NON_COUNTING:
                continue
            self.findings_total[f["code"]] += 1
            seen.add(f["code"])
        for code in seen:
            self.by_finding[code] += 1
        for fc in v.get("fluxCommits") or ():
            self.commits[str(fc.get("configuration"))][fc.get("commit")] += 1
        version = v.get("extensionVersion")
        if version:
            self.versions[version] += 1
        if not version:
            self.window["notInstalled"] += 1
        elif v.get("extensionVersionInWindow") is False:
            self.window["outOfWindow"] += 1
        elif v.get("extensionVersionInWindow") is True:
            self.window["inWindow"] += 1

    def build(self) -> dict[str, Any]:
        return {
            "clusters": self.clusters,
            "compliancePercent": compliance_percent(self.by_state),
            "byState": dict(self.by_state),
            "byFinding": dict(sorted(self.by_finding.items(), key=lambda kv: (-kv[1], kv[0]))),
            "findingsTotal": dict(
                sorted(self.findings_total.items(), key=lambda kv: (-kv[1], kv[0]))
            ),
            "extensionVersions": dict(
                sorted(self.versions.items(), key=lambda kv: _version_key(kv[0]), reverse=True)
            ),
            "versionWindow": dict(self.window),
            "byPolicy": {k: self.by_policy[k] for k in sorted(self.by_policy)},
            "bySubscription": {k: self.by_subscription[k] for k in sorted(self.by_subscription)},
            "fluxCommits": {k: convergence(self.commits[k]) for k in sorted(self.commits)},
        }


def convergence(counts: Mapping[str | None, int]) -> dict[str, Any]:
    """One configuration's entry of ``summary.fluxCommits`` from clusters per commit."""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0] is None, kv[0] or ""))
    synced = [c for c, _ in ranked if c is not None]
    return {
        "clusters": sum(counts.values()),
        "majority": synced[0] if synced else None,
        "commits": [{"commit": c, "clusters": n} for c, n in ranked],
    }


def compliance_percent(by_state: Mapping[str, int]) -> float:
    """(compliant + exempt) / judged clusters, in percent with two decimals.

    Clusters in state ``unknown`` are not judged (they could not be looked at); 100.0 when
    nothing was judged. The one formula behind the headline, per-policy and per-subscription
    figures and the trends, so they always agree.
    """
    total = sum(int(v) for v in by_state.values())
    judged = total - int(by_state.get(State.UNKNOWN, 0))
    good = int(by_state.get(State.COMPLIANT, 0)) + int(by_state.get(State.EXEMPT, 0))
    return 100.0 if judged <= 0 else round(100.0 * good / judged, 2)


def _version_key(version: str) -> tuple[int, ...]:
    parts: list[int] = []
    for piece in version.split("-")[0].split("."):
        parts.append(int(piece) if piece.isdigit() else -1)
    return tuple(parts)


def summarize(verdicts: Iterable[Verdict | dict[str, Any]]) -> dict[str, Any]:
    """The ``summary`` object of a report."""
    builder = SummaryBuilder()
    for verdict in verdicts:
        builder.add(verdict)
    return builder.build()


def build_report(info: SweepInfo, verdicts: Iterable[Verdict]) -> dict[str, Any]:
    """The whole report dictionary. Clusters are sorted by id for stable output."""
    clusters = sorted((v.to_report() for v in verdicts), key=lambda c: c["id"].lower())
    return {"sweep": info.to_report(), "summary": summarize(clusters), "clusters": clusters}
