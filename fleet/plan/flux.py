"""Planning the flux configurations: the ones the policies declare, and the ones to delete.

A missing configuration is created with its full desired body (unless Flux v1 blocks the
extension install a create would trigger); a drifted or failed one is re-PUT with the full
body, so a kustomization the policy dropped is removed; a create-only field that differs
(``scope``, ``namespace``) needs delete + create, done only with
``remediation.recreateOnImmutableChange``, else the other fields are fixed in place and the
create-only one is skipped. Every configuration is PUT again when its extension is recreated
(deleting the extension deletes them), and when a Key Vault secret it carries was rotated,
unless ARM still holds the previous write (``rotation_still_pending``). Conflicting and
audit-owned configurations are never written.

What no Flux v2 policy declares: Flux v1 configurations (``sourceControlConfigurations``) block
the extension install; they are deleted first, and only when an enforce policy sets
``remediation.migrateFluxV1``, otherwise they stay and nothing that would install the
extension is planned. Flux configurations no policy declares are deleted only when an enforce
policy sets ``remediation.deleteUnmanaged``. Pure.
"""

from __future__ import annotations

from typing import Any

from fleet.core.diffing import MAPPING as _MAP
from fleet.core.diffing import copy_json
from fleet.core.ids import key
from fleet.core.vocabulary import Code
from fleet.desired.state import DesiredFluxConfig
from fleet.evaluate.verdicts import Finding
from fleet.observe.view import ConfigView
from fleet.plan.actions import EXTENSION_RECREATED, ActionKind, Reason, SkipCategory
from fleet.plan.builder import (
    PlanBuilder,
    field_changes,
    flatten,
    reason_of,
    rotation_still_pending,
    touches,
)

_FLUX_CREATE_ONLY = ("/properties/scope", "/properties/namespace")
_WRITABLE = (Code.FLUX_CONFIG_DRIFT, Code.FLUX_CONFIG_FAILED, Code.SECRET_ROTATION_PENDING)
_FLUX_HEALTH = (Code.FLUX_OBJECT_NOT_READY, Code.FLUX_CONFIG_PENDING, Code.FLUX_STATUS_STALE)


def plan_flux_configs(b: PlanBuilder, blocked: bool, recreated_extension: bool) -> None:
    on_cluster = b.seen.flux
    for name, dc in b.desired.flux_configurations.items():
        seen = on_cluster.get(name.lower())
        rid = seen.id if seen is not None else dc.resource
        findings = list(b.by_resource.get(key(rid), ()))
        if key(dc.resource) != key(rid):
            findings += b.by_resource.get(key(dc.resource), ())
        _flux_config(b, dc, rid, seen, findings, blocked, recreated_extension)


def _flux_config(
    b: PlanBuilder,
    dc: DesiredFluxConfig,
    rid: str,
    seen: ConfigView | None,
    findings: list[Finding],
    blocked: bool,
    recreated_extension: bool,
) -> None:
    if not findings and not recreated_extension:
        return
    conflicting = key(rid) in b.conflicting or key(dc.resource) in b.conflicting
    if dc.conflict_paths or conflicting:
        b.skip_all(
            [f for f in findings if f.code is not Code.POLICY_CONFLICT],
            "policy conflict: the configuration is not written until the "
            "conflicting policies agree",
            SkipCategory.CONFLICT,
        )
        return
    enforce = b.enforcing(dc.policies)
    if not enforce:
        b.skip_all(findings, "audit mode", SkipCategory.AUDIT)
        return
    body = copy_json(dc.body)
    missing = [f for f in findings if f.code is Code.FLUX_CONFIG_MISSING]
    if missing or seen is None:
        if blocked:
            b.skip_all(
                missing,
                "blocked by Flux v1 configurations: creating a flux "
                "configuration would install the extension (set "
                "remediation.migrateFluxV1)",
                SkipCategory.FLUX_V1,
            )
            return
        b.create(
            ActionKind.PUT_FLUX_CONFIG,
            dc.resource,
            reasons=[reason_of(f) for f in missing] or [EXTENSION_RECREATED],
            policies=enforce,
            body=body,
            protected=dc.protected,
        )
        return
    writable = [f for f in findings if f.code in _WRITABLE]
    pending = rotation_still_pending(seen.resource, writable)
    if pending is not None:
        b.skip_all(writable, pending, SkipCategory.IN_PROGRESS)
        return
    create_only = [f for f in writable if touches(f.path, _FLUX_CREATE_ONLY)]
    in_place = [f for f in writable if f not in create_only]
    recreate = b.flag(enforce, "recreate_on_immutable_change")
    if create_only and recreate:
        b.act(
            ActionKind.DELETE_FLUX_CONFIG,
            rid,
            change="-",
            reasons=[reason_of(f) for f in create_only],
            policies=recreate,
            changes=field_changes(create_only),
        )
        b.create(
            ActionKind.PUT_FLUX_CONFIG,
            dc.resource,
            reasons=[reason_of(f) for f in writable],
            policies=enforce,
            body=body,
            protected=dc.protected,
        )
        return
    b.skip_create_only(create_only)
    reasons = [reason_of(f) for f in in_place]
    if recreated_extension:
        reasons.append(EXTENSION_RECREATED)
    if reasons:
        observed = seen.essence["properties"]
        if create_only and isinstance(observed, _MAP):
            # Keep the create-only values ARM has: a PUT cannot change them.
            for field in ("scope", "namespace"):
                if field in observed:
                    body["properties"][field] = observed[field]
        b.act(
            ActionKind.PUT_FLUX_CONFIG,
            rid,
            change="~",
            reasons=reasons,
            policies=enforce,
            body=body,
            protected=dc.protected,
            changes=field_changes(in_place),
        )
    else:
        others = [f for f in findings if f.code is Code.FLUX_CONFIG_NONCOMPLIANT]
        b.skip_all(
            others,
            "Flux reports Non-Compliant but the configuration matches "
            "the policy: nothing to write (look at the Flux objects on the "
            "cluster)",
            SkipCategory.NOT_WRITABLE,
        )
        # What Flux says about its objects, a Pending that lasts, a status gone quiet: a PUT
        # of the same body changes none of it (fleet.evaluate.health).
        health = [f for f in findings if f.code in _FLUX_HEALTH]
        b.skip_all(
            health,
            "Flux's own status (its objects, Pending, or a stale report): the configuration "
            "matches the policy, so nothing to write (look at the Flux objects on the cluster)",
            SkipCategory.NOT_WRITABLE,
        )


# --- what no policy declares ----------------------------------------------------------


def plan_flux_v1(b: PlanBuilder) -> bool:
    """Delete Flux v1 (if allowed); True when it stays and blocks the extension."""
    findings = [f for f in b.verdict.findings if f.code is Code.FLUX_V1_PRESENT]
    if not findings:
        return False
    migrators = b.flag(b.enforcing(b.desired.policies), "migrate_flux_v1")
    for resource in sorted({f.resource for f in findings}, key=key):
        if migrators:
            name = resource.rstrip("/").rsplit("/", 1)[-1]
            b.act(
                ActionKind.DELETE_FLUX_V1,
                resource,
                change="-",
                reasons=[Reason(code=Code.FLUX_V1_PRESENT)],
                policies=migrators,
                changes=[{"path": "", "desired": None, "actual": name}],
            )
        else:
            b.skip(
                resource,
                Code.FLUX_V1_PRESENT,
                "Flux v1 present; set remediation.migrateFluxV1 to delete it",
                SkipCategory.FLUX_V1,
            )
    return not migrators


def plan_unmanaged(b: PlanBuilder) -> None:
    findings = [f for f in b.verdict.findings if f.code is Code.FLUX_CONFIG_UNMANAGED]
    by_resource: dict[str, list[Finding]] = {}
    for f in findings:
        by_resource.setdefault(f.resource, []).append(f)
    on_cluster = b.seen.flux
    for resource in sorted(by_resource, key=key):
        group = by_resource[resource]
        owners = [f.policy for f in group if f.policy is not None]
        enforce = b.enforcing(owners)
        if enforce:
            name = resource.rstrip("/").rsplit("/", 1)[-1]
            seen = on_cluster.get(name.lower())
            changes: list[dict[str, Any]] = []
            if seen is not None:
                flatten(seen.essence, "", changes, desired=False)
            b.act(
                ActionKind.DELETE_FLUX_CONFIG,
                resource,
                change="-",
                reasons=[Reason(code=Code.FLUX_CONFIG_UNMANAGED)],
                policies=enforce,
                changes=changes,
            )
        elif owners:
            b.skip(resource, Code.FLUX_CONFIG_UNMANAGED, "audit mode", SkipCategory.AUDIT)
        else:
            b.skip(
                resource,
                Code.FLUX_CONFIG_UNMANAGED,
                "not declared by any policy; set remediation.deleteUnmanaged to delete it",
                SkipCategory.UNMANAGED,
            )
