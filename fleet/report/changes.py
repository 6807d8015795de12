"""What changed between two sweeps: new drift, fixed findings, new and gone clusters, states.

``diff(before, after)`` is pure and one-pass over each side: the earlier sweep is indexed
compactly (per cluster: name, state and its counting findings), then the later sweep streams
past it, so two 50,000-cluster sweeps compare without holding either report in memory.
``fleet report diff``, the Markdown report and the HTML report all use it, so they agree.

Identity: a cluster is its case-insensitive ARM id; a finding is (code, policy, resource,
path). A finding whose value changed but whose identity did not is still the same drift (not
new, not fixed). Only counting findings are compared: warning/info ones change nothing.
Findings of new clusters are not "new drift" (the cluster is new; its findings are in the
report), and findings of gone clusters are not "fixed".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fleet.core.finding_keys import FindingKey, finding_key
from fleet.core.ids import key as id_key
from fleet.report.common import Cluster, counting, severity_of, state_rank

__all__ = ["FindingKey", "diff", "finding_key"]


@dataclass(slots=True)
class _Before:
    id: str
    name: str
    subscription: str
    state: str
    findings: dict[FindingKey, Mapping[str, Any]]


def _entry(cluster: _Before | Cluster, finding: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(cluster, _Before):
        cid, name, sub = cluster.id, cluster.name, cluster.subscription
    else:
        cid, name, sub = cluster["id"], cluster.get("name", ""), cluster.get("subscriptionId", "")
    return {
        "cluster": cid,
        "name": name,
        "subscriptionId": sub,
        "code": finding.get("code"),
        "policy": finding.get("policy"),
        "severity": severity_of(finding),
        "resource": finding.get("resource"),
        "path": finding.get("path"),
        "desired": finding.get("desired"),
        "actual": finding.get("actual"),
        "message": finding.get("message", ""),
    }


def _side(info: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if info is None:
        return None
    return {
        "id": info.get("id"),
        "finishedAt": info.get("finishedAt"),
        "policyRevision": info.get("policyRevision"),
        "complete": info.get("complete", True),
    }


def diff(
    before: Iterable[Cluster],
    after: Iterable[Cluster],
    *,
    before_info: Mapping[str, Any] | None = None,
    after_info: Mapping[str, Any] | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Compare two sweeps' clusters. ``limit`` caps each list (the counts stay exact).

    Returns ``{"from", "to", "comparable", "notes", "counts", "truncated", "newDrift",
    "fixed", "newClusters", "goneClusters", "stateChanges"}``; lists are sorted by cluster
    name, then code and path, so the output is stable.
    """
    index: dict[str, _Before] = {}
    for c in before:
        index[id_key(c["id"])] = _Before(
            id=c["id"],
            name=str(c.get("name", "")),
            subscription=str(c.get("subscriptionId", "")),
            state=str(c.get("state", "")),
            findings={finding_key(f): f for f in c.get("findings") or () if counting(f)},
        )
    new_drift: list[dict[str, Any]] = []
    fixed: list[dict[str, Any]] = []
    new_clusters: list[dict[str, Any]] = []
    state_changes: list[dict[str, Any]] = []
    for c in after:
        k = id_key(c["id"])
        old = index.pop(k, None)
        if old is None:
            new_clusters.append(_cluster(c))
            continue
        now = {finding_key(f): f for f in c.get("findings") or () if counting(f)}
        new_drift.extend(_entry(c, now[fk]) for fk in now.keys() - old.findings.keys())
        fixed.extend(_entry(old, old.findings[fk]) for fk in old.findings.keys() - now.keys())
        if c.get("state") != old.state:
            worse = state_rank(str(c.get("state"))) > state_rank(old.state)
            state_changes.append(
                {
                    "id": c["id"],
                    "name": c.get("name", ""),
                    "subscriptionId": c.get("subscriptionId", ""),
                    "from": old.state,
                    "to": c.get("state"),
                    "direction": "worse" if worse else "better",
                }
            )
    gone = [
        {"id": b.id, "name": b.name, "subscriptionId": b.subscription, "state": b.state}
        for b in index.values()
    ]

    def by_cluster(item: Mapping[str, Any]) -> tuple[str, str, str, str]:
        return (
            str(item.get("name", "")).lower(),
            str(item.get("code", "")),
            str(item.get("path") or ""),
            str(item.get("cluster") or item.get("id") or "").lower(),
        )

    lists = {
        "newDrift": sorted(new_drift, key=by_cluster),
        "fixed": sorted(fixed, key=by_cluster),
        "newClusters": sorted(new_clusters, key=by_cluster),
        "goneClusters": sorted(gone, key=by_cluster),
        "stateChanges": sorted(state_changes, key=by_cluster),
    }
    counts = {name: len(items) for name, items in lists.items()}
    counts["worse"] = sum(1 for s in state_changes if s["direction"] == "worse")
    counts["better"] = counts["stateChanges"] - counts["worse"]
    notes = _notes(before_info, after_info)
    truncated = limit is not None and any(len(v) > limit for v in lists.values())
    if limit is not None:
        lists = {name: items[:limit] for name, items in lists.items()}
    return {
        "from": _side(before_info),
        "to": _side(after_info),
        "comparable": not any(n["kind"] == "incomplete" for n in notes),
        "notes": notes,
        "counts": counts,
        "truncated": truncated,
        **lists,
    }


def _cluster(c: Cluster) -> dict[str, Any]:
    return {
        "id": c["id"],
        "name": c.get("name", ""),
        "subscriptionId": c.get("subscriptionId", ""),
        "state": c.get("state"),
    }


def _notes(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> list[dict[str, str]]:
    """Caveats a reader needs to read the diff right."""
    notes: list[dict[str, str]] = []
    for label, info in (("earlier", before), ("later", after)):
        if info is not None and info.get("complete") is False:
            notes.append(
                {
                    "kind": "incomplete",
                    "message": f"the {label} sweep ({info.get('id')}) did not finish: clusters it "
                    "never judged show up as new or gone",
                }
            )
    if (
        before is not None
        and after is not None
        and before.get("policyRevision") != after.get("policyRevision")
    ):
        notes.append(
            {
                "kind": "policies",
                "message": f"the policies changed between the sweeps (revision "
                f"{before.get('policyRevision')} -> {after.get('policyRevision')}): some new "
                "or fixed findings come from the policy change, not from the clusters",
            }
        )
    return notes
