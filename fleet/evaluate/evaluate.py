"""Evaluation: judge one observed cluster against its desired state (docs/contracts.md, Compliance
vocabulary).

``evaluate(observed, desired, catalog=, now=, fingerprints=)`` returns the cluster's ``Verdict``:
a finding for everything wrong (or worth knowing), each attributed to the policy that asked for
the field concerned, and from them the state of every policy and of the cluster.

The order of judgement mirrors what can be trusted:

1. a read error means nothing was seen: every judged policy is ``error``;
2. Flux v1, the extension, the version window, every flux configuration, unmanaged
   configurations and policy conflicts are judged from what ARM shows: facts whatever the
   cluster's connectivity;
3. an unreachable Arc cluster or a stopped AKS cluster cannot apply anything and what Flux
   last reported on it is stale: Flux's own status is not judged, and ``CLUSTER_UNREACHABLE``
   / ``CLUSTER_STOPPED`` (state ``unknown``) ride along, so a cluster whose ARM resources all
   match is ``unknown`` and one with a definite gap is ``noncompliant``; remediation skips
   both for a retry;
4. a cluster that cannot take the extension at all (``fleet.evaluate.eligibility``) gets
   ``CLUSTER_INELIGIBLE`` with the reason.

Enum values and properties fleet does not know (``fleet.observe.shapes``) are notes,
``UNRECOGNISED_SHAPE`` of severity info, on any cluster that could be read.

Conflicting fields are never judged (no one owns them); the rest of such a resource is.
Observed JSON is untrusted: any shape is accepted and never raises.

This module decides whether the cluster can be judged now and builds the verdict; the
extension is judged by ``fleet.evaluate.extension``, the flux configurations (and Flux v1 and
unmanaged ones) by ``fleet.evaluate.flux``, into a ``fleet.evaluate.findings.Findings``.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from fleet.core.clusters import ClusterFacts
from fleet.core.diffing import copy_json
from fleet.core.vocabulary import CODE_STATE, NON_COUNTING, Code, Severity, State, worst
from fleet.desired.fingerprints import Fingerprints
from fleet.desired.state import DesiredState
from fleet.evaluate.attribution import attribute
from fleet.evaluate.commits import commits_of
from fleet.evaluate.eligibility import ineligible
from fleet.evaluate.extension import judge_extension
from fleet.evaluate.findings import Findings, show
from fleet.evaluate.flux import judge_flux_configs, judge_flux_v1
from fleet.evaluate.verdicts import Finding, PolicyResult, Verdict
from fleet.evaluate.versions import ARM64_MINIMUM, Catalog, parse_version
from fleet.observe.observed import ObservedCluster
from fleet.observe.shapes import unrecognised
from fleet.observe.view import ObservedView, view
from fleet.observe.wellformed import checked

#: Arc: a change pending longer than this times out, so a cluster silent for longer is
#: treated as unreachable even when ARM still says Connected (docs/contracts.md, Domain facts).
STALE_AFTER = timedelta(hours=48)
_UNREACHABLE_STATES = {"offline", "expired", "agentnotinstalled"}
_SEVERITY_RANK = {s: i for i, s in enumerate(Severity)}

# --- reachability -------------------------------------------------------------------------


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def reachability(facts: ClusterFacts, now: datetime) -> tuple[Code, str] | None:
    """Why the cluster cannot be judged now (code, message), or None when it can."""
    if facts.cluster_type == "managedClusters":
        if (facts.power_state or "").lower() == "stopped":
            return (
                Code.CLUSTER_STOPPED,
                "AKS cluster is stopped (powerState Stopped): extension operations cannot run",
            )
        return None
    status = facts.connectivity_status or ""
    last = facts.last_connectivity_time
    seen = f", last connected {last.isoformat()}" if last else ""
    if status.lower() in _UNREACHABLE_STATES:
        return (
            Code.CLUSTER_UNREACHABLE,
            f"Arc cluster is {status}{seen}: changes cannot reach it",
        )
    if last is not None and _aware(now) - _aware(last) > STALE_AFTER:
        return (
            Code.CLUSTER_UNREACHABLE,
            f"Arc cluster reports {status or 'no status'} but was last connected "
            f"{last.isoformat()}, more than 48 h ago: pending changes time out",
        )
    return None


def cluster_status(facts: ClusterFacts) -> str | None:
    return (
        facts.connectivity_status
        if facts.cluster_type == "connectedClusters"
        else (facts.power_state)
    )


# --- the evaluation -----------------------------------------------------------------------


def evaluate(
    observed: ObservedCluster,
    desired: DesiredState,
    *,
    catalog: Catalog,
    now: datetime,
    fingerprints: Fingerprints | None = None,
    seen: ObservedView | None = None,
    fleet_ids: Collection[str] = (),
) -> Verdict:
    """Judge one cluster. Pure: the same inputs always give the same verdict.

    ``seen`` is the parsed view of ``observed`` when the caller already has it (``judge``
    shares one between evaluation and planning). An observation that is not well-formed ARM
    is judged as a read error (``fleet.observe.wellformed``). ``fleet_ids`` are fleet's own
    principal's names as ARM's ``systemData`` records them (``fleet.evaluate.attribution``).
    """
    unchecked, observed = observed, checked(observed)
    if observed is not unchecked:
        seen = None
    facts = observed.facts
    cid = facts.id
    found = Findings()
    version: str | None = None
    in_window: bool | None = None

    if observed.read_error is not None:
        found.add(
            Code.READ_ERROR,
            desired.policies,
            cid,
            f"the cluster's configuration could not be read: {observed.read_error}",
        )
        return _verdict(observed, desired, found.items, None, None)

    blocked = reachability(facts, now)
    if seen is None:
        seen = view(observed, desired.extension.name if desired.extension else None)

    judge_flux_v1(observed, desired, found)
    version, in_window = judge_extension(seen, desired, found, catalog, fingerprints)
    # What ARM shows (a missing extension, drift, a version out of window) is a fact whatever
    # the connectivity and counts; what Flux on the cluster last said is only judged while
    # the cluster can be reached (docs/contracts.md, Compliance vocabulary).
    judge_flux_configs(seen, desired, found, fingerprints, now=None if blocked else now)
    _unknown_architecture(facts, desired, version, found)

    if blocked is not None:
        code, message = blocked
        found.add(code, desired.policies, cid, message)
    for reason in ineligible(facts, now):
        found.add(
            Code.CLUSTER_INELIGIBLE, desired.policies, cid, f"cannot take the extension: {reason}"
        )

    found.items = attribute(found.items, seen, desired, fleet_ids)
    for rid, note in unrecognised(observed):
        # Never counted (severity info): Azure's new shapes are reported, the rest is judged.
        found.add(
            Code.UNRECOGNISED_SHAPE,
            [None],
            rid,
            f"{note} (a newer API shape; judged on what fleet knows)",
        )

    for conflict in desired.conflicts:
        values = ", ".join(f"{p}: {show(v)}" for p, v in sorted(conflict.values.items()))
        found.add(
            Code.POLICY_CONFLICT,
            conflict.policies,
            conflict.resource,
            f"policies of equal priority disagree on {conflict.path} ({values}); the field is "
            "neither judged nor remediated until one policy changes its priority or value",
            path=conflict.path,
            desired=copy_json(conflict.values),
        )
    verdict = _verdict(observed, desired, found.items, version, in_window)
    return verdict.model_copy(update={"flux_commits": commits_of(seen)})


def _unknown_architecture(
    facts: ClusterFacts, desired: DesiredState, version: str | None, found: Findings
) -> None:
    """An unknown architecture is said, not taken for "not arm64": when the running or pinned
    version is below the ARM64 minimum, a note (severity info) says what it would mean."""
    if facts.architecture is not None or desired.extension is None:
        return
    low = [
        v
        for v in (version, desired.extension.version)
        if v and (parsed := parse_version(v)) is not None and parsed < ARM64_MINIMUM
    ]
    if not low:
        return
    found.add(
        Code.EXTENSION_VERSION_UNSUPPORTED_ARCH,
        desired.extension.policies,
        desired.extension.resource,
        f"architecture unknown (ARM does not say for this cluster): if it runs on arm64, "
        f"extension version {low[0]} is below {ARM64_MINIMUM}, the minimum for ARM64 "
        "(tag the cluster kubernetes.io/arch to tell fleet)",
        severity=Severity.INFO,
    )


def _finding_key(f: Finding) -> tuple[str, str, str, str, int]:
    return (
        f.resource.lower(),
        f.code.value,
        f.path or "",
        f.policy or "",
        _SEVERITY_RANK[f.severity],
    )


def _verdict(
    observed: ObservedCluster,
    desired: DesiredState,
    findings: list[Finding],
    version: str | None,
    in_window: bool | None,
) -> Verdict:
    facts = observed.facts
    states: dict[str, list[State]] = {p: [] for p in desired.policies}
    for f in findings:
        if f.policy is not None and f.severity not in NON_COUNTING and f.policy in states:
            states[f.policy].append(CODE_STATE[f.code])
    results = [
        PolicyResult(name=p, state=worst(s), mode=desired.modes.get(p, "audit"))
        for p, s in states.items()
    ]
    results += [
        PolicyResult(
            name=e.name,
            state=State.EXEMPT,
            mode=e.mode,
            reason=e.reason,
            expires_on=e.expires_on,
        )
        for e in desired.exempt
    ]
    results.sort(key=lambda r: r.name)
    findings.sort(key=_finding_key)
    return Verdict(
        id=facts.id,
        name=facts.name,
        type=facts.cluster_type,
        subscription_id=facts.subscription_id,
        resource_group=facts.resource_group,
        location=facts.location,
        state=worst([r.state for r in results]),
        policies=results,
        findings=findings,
        extension_version=version,
        extension_version_in_window=in_window,
        overrides=list(desired.overrides),
        tags=dict(facts.tags),
        arm64=facts.arm64,
        architecture=facts.architecture or "unknown",
        status=cluster_status(facts),
    )
