"""``--format policyreport``: Kubernetes PolicyReport YAML (wgpolicyk8s.io, or openreports.io).

One report object **per cluster**, not one for the whole sweep: a Kubernetes object must stay
under etcd's ~1.5 MB limit, and a 50,000-cluster sweep's results would not fit in one; per
cluster, ``kubectl get clusterpolicyreports`` (and Policy Reporter) show one row per cluster
with its pass/fail counts, which is the question people ask. The stream is a multi-document
YAML file ready for ``kubectl apply -f`` on a management cluster.

Mapping (documented in docs/reports.md):

- kind: ``ClusterPolicyReport`` (``ClusterReport`` for openreports.io) — Azure clusters are not
  namespaced objects; with ``--policyreport-namespace`` a namespaced ``PolicyReport``
  (``Report``) in that namespace instead.
- ``scope``: the cluster (kind ``ManagedCluster`` or ``ConnectedCluster``, its name); the full
  ARM id, subscription and resource group are annotations (label values cannot hold ids).
- ``results``: one per finding (``rule`` = the finding code, ``resources`` = the resource it
  is about, ``properties`` = path/desired/actual/resource id), plus one ``pass`` result per
  policy without counting findings and one ``skip`` per exempt policy;
- result: compliant → pass; noncompliant → fail; conflicting → **fail** (a conflict leaves the
  field unjudged and unremediated until a human decides: it needs action, so it is scored);
  unknown (unreachable, stopped) → skip; error → error; exempt → skip; a warning- or
  info-severity finding → warn (not scored), whatever its code.
- severity: high/medium/low as the finding says; warning → low, info → info.
- ``source: fleet`` on every result (and on the report for openreports.io, which has it).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from fleet.core.vocabulary import CODE_STATE, Code, State
from fleet.report import yamlout
from fleet.report.common import (
    UNOWNED,
    Cluster,
    Context,
    Report,
    counting,
    parse_iso,
    resource_kind,
    resource_name,
    severity_of,
    show,
)

SOURCE = "fleet"
APIS = ("wgpolicyk8s.io/v1alpha2", "openreports.io/v1alpha1")
_KINDS = {
    # api group -> (cluster-scoped kind, namespaced kind)
    "wgpolicyk8s.io": ("ClusterPolicyReport", "PolicyReport"),
    "openreports.io": ("ClusterReport", "Report"),
}
_CLUSTER_KIND = {"managedClusters": "ManagedCluster", "connectedClusters": "ConnectedCluster"}
_CHILD_KIND = {
    "extensions": "Extension",
    "fluxconfigurations": "FluxConfiguration",
    "sourcecontrolconfigurations": "SourceControlConfiguration",
    "managedclusters": "ManagedCluster",
    "connectedclusters": "ConnectedCluster",
}
_SEVERITY = {"high": "high", "medium": "medium", "low": "low", "warning": "low", "info": "info"}
_CATEGORY = {
    "EXTENSION": "Flux extension",
    "FLUX": "Flux configuration",
    "CLUSTER": "Cluster",
    "POLICY": "Policy",
    "READ": "Cluster",
}
_STATE_RESULT = {
    State.COMPLIANT: "pass",
    State.NONCOMPLIANT: "fail",
    State.CONFLICTING: "fail",
    State.UNKNOWN: "skip",
    State.ERROR: "error",
    State.EXEMPT: "skip",
}
_DNS = re.compile(r"[^a-z0-9-]+")
_PROPERTY_MAX = 1024


def result_for(finding: Mapping[str, Any], policy_state: str | None) -> str:
    """The PolicyReport result of one finding."""
    if not counting(finding):
        return "warn"
    if policy_state == State.EXEMPT:
        return "skip"
    try:
        return _STATE_RESULT[CODE_STATE[Code(str(finding.get("code")))]]
    except ValueError:
        return "fail"


def _policy_result(state: str) -> str:
    try:
        return _STATE_RESULT[State(state)]
    except ValueError:
        return "skip"


def object_name(cluster: Cluster) -> str:
    """A DNS-1123 name unique per cluster: ``fleet-<name>-<hash of the id>``."""
    digest = hashlib.sha256(str(cluster["id"]).lower().encode()).hexdigest()[:10]
    base = _DNS.sub("-", str(cluster.get("name", "cluster")).lower()).strip("-")[:40] or "cluster"
    return f"fleet-{base}-{digest}"


def _label(value: Any) -> str | None:
    """A valid label value, or None (label values are 63 chars of [A-Za-z0-9._-])."""
    text = str(value or "")
    if re.fullmatch(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?", text):
        return text
    return None


def _timestamp(value: Any) -> dict[str, int]:
    when = parse_iso(value) or datetime.now(UTC)
    return {"seconds": int(when.timestamp()), "nanos": when.microsecond * 1000}


def _prop(value: Any) -> str:
    text = value if isinstance(value, str) else show(value)
    return text if len(text) <= _PROPERTY_MAX else text[: _PROPERTY_MAX - 1] + "…"


def _subject(resource_id: str) -> dict[str, str]:
    kind = _CHILD_KIND.get(resource_kind(resource_id).lower(), "AzureResource")
    return {"kind": kind, "name": resource_name(resource_id)}


def cluster_report(cluster: Cluster, sweep: Mapping[str, Any], context: Context) -> dict[str, Any]:
    """The PolicyReport object of one cluster."""
    group = context.policyreport_api.split("/", 1)[0]
    cluster_kind, namespaced_kind = _KINDS[group]
    stamp = _timestamp(sweep.get("finishedAt") or sweep.get("startedAt"))
    states = {p["name"]: str(p["state"]) for p in cluster.get("policies") or ()}
    results: list[dict[str, Any]] = []
    flagged: set[str] = set()
    for f in cluster.get("findings") or ():
        policy = f.get("policy") or UNOWNED
        result = result_for(f, states.get(policy))
        if result != "warn":
            flagged.add(policy)
        code = str(f.get("code"))
        properties = {"resourceId": _prop(f.get("resource") or cluster["id"])}
        if f.get("path") is not None:
            properties.update(
                path=_prop(f["path"]),
                desired=_prop(show(f.get("desired"))),
                actual=_prop(show(f.get("actual"))),
            )
        results.append(
            {
                "source": SOURCE,
                "policy": policy,
                "rule": code,
                "category": _CATEGORY.get(code.split("_", 1)[0], "Flux"),
                "severity": _SEVERITY.get(severity_of(f), "medium"),
                "result": result,
                "scored": result != "warn",
                "message": str(f.get("message", "")),
                "timestamp": dict(stamp),
                "resources": [_subject(str(f.get("resource") or cluster["id"]))],
                "properties": properties,
            }
        )
    for p in cluster.get("policies") or ():
        name, state = p["name"], str(p["state"])
        if state == State.EXEMPT:
            reason = p.get("reason") or "exempt"
            until = p.get("expiresOn")
            results.append(
                {
                    "source": SOURCE,
                    "policy": name,
                    "rule": "exemption",
                    "category": "Policy",
                    "result": "skip",
                    "scored": False,
                    "timestamp": dict(stamp),
                    "message": f"exempt: {reason}" + (f" (until {until})" if until else ""),
                }
            )
        elif name not in flagged:
            # A policy with no scored finding: its state decides (compliant → pass).
            results.append(
                {
                    "source": SOURCE,
                    "policy": name,
                    "rule": "compliance",
                    "category": "Policy",
                    "result": _policy_result(state),
                    "scored": True,
                    "timestamp": dict(stamp),
                    "message": f"policy {name} is {state}",
                }
            )
    summary = {k: 0 for k in ("pass", "fail", "warn", "error", "skip")}
    for r in results:
        summary[r["result"]] += 1
    labels = {"app.kubernetes.io/managed-by": "fleet"}
    for key, value in (
        ("fleet/subscription-id", cluster.get("subscriptionId")),
        ("fleet/state", cluster.get("state")),
        ("fleet/cluster-type", cluster.get("type")),
    ):
        if (clean := _label(value)) is not None and clean:
            labels[key] = clean
    annotations = {
        "fleet/cluster-id": str(cluster["id"]),
        "fleet/resource-group": str(cluster.get("resourceGroup", "")),
        "fleet/location": str(cluster.get("location", "")),
        "fleet/sweep-id": str(sweep.get("id", "")),
        "fleet/policy-revision": str(sweep.get("policyRevision", "")),
    }
    if cluster.get("extensionVersion"):
        annotations["fleet/extension-version"] = str(cluster["extensionVersion"])
    metadata: dict[str, Any] = {
        "name": object_name(cluster),
        "labels": labels,
        "annotations": annotations,
    }
    if context.policyreport_namespace:
        metadata["namespace"] = context.policyreport_namespace
    doc: dict[str, Any] = {
        "apiVersion": context.policyreport_api,
        "kind": namespaced_kind if context.policyreport_namespace else cluster_kind,
        "metadata": metadata,
    }
    if group == "openreports.io":
        doc["source"] = SOURCE
    doc["scope"] = {
        "kind": _CLUSTER_KIND.get(str(cluster.get("type")), "Cluster"),
        "name": str(cluster.get("name", "")),
    }
    doc["summary"] = summary
    doc["results"] = results
    return doc


def documents(report: Report, context: Context | None = None) -> Iterator[dict[str, Any]]:
    ctx = context or Context()
    if ctx.policyreport_api not in APIS:
        raise ValueError(
            f"unknown PolicyReport API {ctx.policyreport_api!r}; use one of {', '.join(APIS)}"
        )
    for cluster in report["clusters"]:
        yield cluster_report(cluster, report["sweep"], ctx)


def write_policyreport(report: Report, out: TextIO, context: Context | None = None) -> None:
    first = True
    for doc in documents(report, context):
        if not first:
            out.write("---\n")
        first = False
        yamlout.dump(doc, out)
