"""Judging the flux configurations: the declared ones (presence, state, drift, protected
settings, and what Flux itself reports, in ``fleet.evaluate.health``), the unmanaged ones, and
Flux v1 configurations that block the extension. Pure.
"""

from __future__ import annotations

from datetime import datetime

from fleet.core.diffing import diff
from fleet.core.vocabulary import Code, Severity
from fleet.desired.fingerprints import Fingerprints
from fleet.desired.state import DesiredState
from fleet.evaluate.findings import Findings, as_text, drift_findings, secret_findings
from fleet.evaluate.health import judge_health
from fleet.observe.essence import SOURCE_CONTROL_CONFIGURATIONS
from fleet.observe.observed import ObservedCluster
from fleet.observe.view import ObservedView, properties, resource_id, resource_name


def judge_flux_v1(observed: ObservedCluster, desired: DesiredState, found: Findings) -> None:
    if not observed.source_control_configurations:
        return
    if desired.extension is None and not desired.flux_configurations:
        return
    owners = sorted(
        set(desired.extension.policies if desired.extension else ()) | set(desired.flux_policies)
    )
    cid = observed.facts.id
    for resource in observed.source_control_configurations:
        name = resource_name(resource) or "?"
        rid = resource_id(resource, cid, SOURCE_CONTROL_CONFIGURATIONS, name)
        found.add(
            Code.FLUX_V1_PRESENT,
            owners,
            rid,
            f"Flux v1 configuration {name!r} blocks the microsoft.flux extension; migrate it "
            "to a Flux v2 configuration and delete it (remediation.migrateFluxV1)",
        )


def judge_flux_configs(
    seen: ObservedView,
    desired: DesiredState,
    found: Findings,
    fingerprints: Fingerprints | None,
    *,
    now: datetime | None,
) -> None:
    """Judge the declared flux configurations, and the unmanaged ones.

    ``now`` is the sweep's time; None when Flux's status on the cluster cannot be trusted at
    all (the cluster is unreachable or stopped): then only what ARM itself shows is judged.
    """
    on_cluster = seen.flux
    for name, dc in desired.flux_configurations.items():
        config = on_cluster.get(name.lower())
        if config is None:
            found.add(
                Code.FLUX_CONFIG_MISSING,
                dc.policies,
                dc.resource,
                f"flux configuration {name!r} does not exist on the cluster",
            )
            continue
        rid = config.id
        props = properties(config.resource)
        state = as_text(props.get("provisioningState"))
        if state is not None and state.lower() == "failed":
            error = as_text(props.get("errorMessage"))
            found.add(
                Code.FLUX_CONFIG_FAILED,
                dc.policies,
                rid,
                f"flux configuration {name!r} is in provisioningState Failed"
                + (f": {error[:200]}" if error else ""),
                path="/properties/provisioningState",
                desired="Succeeded",
                actual=state,
            )
        if now is not None:
            judge_health(
                config.resource,
                props,
                rid,
                name,
                dc.policies,
                desired.health_of(dc.owner),
                now,
                found,
            )
        policies = dc.policies

        def owners(_path: str, policies: tuple[str, ...] = policies) -> tuple[str, ...]:
            return policies

        drift_findings(
            Code.FLUX_CONFIG_DRIFT,
            diff(dc.essence, config.essence),
            dc.conflict_paths,
            owners,
            rid,
            f"flux configuration {name!r}",
            found,
        )
        secret_findings(Code.FLUX_CONFIG_DRIFT, fingerprints, rid, dc.protected, owners, found)

    deleters = [p for p in desired.policies if desired.flags[p].delete_unmanaged]
    for key in sorted(on_cluster):
        if key in desired.declared_names:
            continue
        name, rid = on_cluster[key].name, on_cluster[key].id
        if deleters:
            found.add(
                Code.FLUX_CONFIG_UNMANAGED,
                deleters,
                rid,
                f"flux configuration {name!r} is not declared by any policy; "
                "remediation.deleteUnmanaged will delete it",
                severity=Severity.LOW,
            )
        else:
            found.add(
                Code.FLUX_CONFIG_UNMANAGED,
                [None],
                rid,
                f"flux configuration {name!r} is not declared by any policy (not counted: no "
                "targeting policy sets remediation.deleteUnmanaged)",
                severity=Severity.WARNING,
            )
