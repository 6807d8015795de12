"""Planning the ``microsoft.flux`` extension: its fields, its version, and when to leave it.

A missing extension is created with the full desired body; a drifted one is re-PUT with the
observed writable fields and every enforce-owned field (ungoverned and audit-owned fields keep
their observed values); a create-only field that differs (name, ``extensionType``, ``scope``)
needs delete + create, done only with ``remediation.recreateOnImmutableChange``. Version
findings are judged, not written, except the nudge of remediation jobs: an auto-upgrading
extension stuck outside an enforce-owned window gets a re-PUT of its unchanged body
(``fleet.plan.planning`` explains when a nudge is refused). Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fleet.core.diffing import MAPPING as _MAP
from fleet.core.diffing import copy_json, pointer
from fleet.core.ids import key
from fleet.core.vocabulary import Code
from fleet.desired.fingerprints import setting_path
from fleet.desired.state import VERSION_PATH, DesiredExtension
from fleet.evaluate.verdicts import Finding
from fleet.observe import essence
from fleet.observe.view import properties as properties_of
from fleet.plan.actions import ActionKind, SkipCategory
from fleet.plan.builder import (
    PlanBuilder,
    field_changes,
    reason_of,
    rotation_still_pending,
    touches,
)

_EXTENSION_CREATE_ONLY = ("/name", "/properties/extensionType", "/properties/scope")
_VERSION_CODES = (Code.EXTENSION_VERSION_OUT_OF_WINDOW, Code.EXTENSION_VERSION_UNSUPPORTED_ARCH)
#: Extension provisioning states of a running operation (an upgrade may be under way).
_IN_PROGRESS = frozenset({"creating", "updating", "deleting", "accepted", "running"})


def plan_extension(b: PlanBuilder, v1_blocking: bool) -> bool:
    """Plan the extension; True when it is deleted and recreated."""
    d = b.desired.extension
    ext_key = key(b.seen.extension_id) if b.seen.extension_id else None
    findings = [
        f
        for f in b.verdict.findings
        if f.code.value.startswith("EXTENSION_")
        or (f.code is Code.SECRET_ROTATION_PENDING and key(f.resource) == ext_key)
    ]
    version_findings = [f for f in findings if f.code in _VERSION_CODES]
    findings = [f for f in findings if f.code not in _VERSION_CODES]
    recreated = _extension_fields(b, d, findings, version_findings, v1_blocking)
    _versions(b, d, version_findings, v1_blocking)
    return recreated


def _extension_fields(
    b: PlanBuilder,
    d: DesiredExtension | None,
    findings: list[Finding],
    version_findings: list[Finding],
    v1_blocking: bool,
) -> bool:
    if d is None or not findings:
        return False
    if d.conflict_paths:
        b.skip_all(
            findings,
            "policy conflict: the extension is not written until the conflicting policies agree",
            SkipCategory.CONFLICT,
        )
        return False
    if any(f.path == VERSION_PATH for f in version_findings):
        # Writing the pin would install a version ARM64 nodes cannot run.
        b.skip_all(
            findings,
            "the policy pins a version ARM64 clusters cannot run; fix the policy first",
            SkipCategory.POLICY_ERROR,
        )
        return False
    return _fix_extension(b, d, findings, v1_blocking)


def _versions(
    b: PlanBuilder, d: DesiredExtension | None, findings: list[Finding], v1_blocking: bool
) -> None:
    """Version findings: judged, and written only as a nudge (see the module docstring)."""
    if not findings:
        return
    if not b.nudge:
        # PINNED, as remediation has always filed this reason (its text names the pin).
        b.skip_all(
            findings,
            "the version is judged, not written: it follows the "
            "release train or the pinned version; a PUT is planned only when the "
            "desired body differs",
            SkipCategory.PINNED,
        )
        return
    refusal = _nudge_refusal(b, d, findings, v1_blocking)
    if refusal is not None:
        b.skip_all(findings, *refusal)
        return
    assert d is not None and b.seen.extension_id is not None
    reasons = [reason_of(f, nudge=True) for f in findings]
    owners = b.enforcing({f.policy for f in findings})
    rid = b.seen.extension_id
    if b.ext_put:
        # A PUT of the extension is planned anyway; it is the nudge too.
        for (kind, _), action in list(b.actions.items()):
            if kind is ActionKind.PUT_EXTENSION:
                b.act(
                    kind,
                    action.resource_id,
                    change=action.change,
                    reasons=reasons,
                    policies=owners,
                )
        return
    current = properties_of(b.seen.extension).get("currentVersion")
    b.act(
        ActionKind.PUT_EXTENSION,
        rid,
        change="~",
        reasons=reasons,
        policies=owners,
        body=_extension_body(b, d, b.seen.extension, keep_identity=True),
        protected=_protected(b, d),
        changes=[
            {"path": f.path, "desired": f.desired, "actual": current}
            for f in findings
            if f.path is not None
        ][:1],
    )
    b.ext_put = True


def _nudge_refusal(
    b: PlanBuilder, d: DesiredExtension | None, findings: list[Finding], v1_blocking: bool
) -> tuple[str, SkipCategory] | None:
    """Why a stuck version must not be nudged, or None when a re-PUT may nudge it."""
    ext = b.seen.extension
    if d is None or ext is None or b.seen.extension_id is None:
        return (
            "no policy declares the extension: the version is only reported",
            SkipCategory.NOT_WRITABLE,
        )
    if not b.enforcing({f.policy for f in findings}):
        return "audit mode", SkipCategory.AUDIT
    if d.conflict_paths:
        return (
            "policy conflict: the extension is not written until the conflicting policies agree",
            SkipCategory.CONFLICT,
        )
    if v1_blocking:
        return (
            "blocked by Flux v1 configurations (set remediation.migrateFluxV1 to delete "
            "them first)",
            SkipCategory.FLUX_V1,
        )
    props = properties_of(ext)
    if props.get("autoUpgradeMinorVersion") is False:
        return (
            "the version is pinned (autoUpgradeMinorVersion: false): a re-PUT keeps "
            "the pin; change the policy's version to move it",
            SkipCategory.PINNED,
        )
    state = str(props.get("provisioningState") or "").lower()
    if state in _IN_PROGRESS:
        return (
            f"an operation is in progress on the extension ({state}): the version "
            "may still move; retry later",
            SkipCategory.IN_PROGRESS,
        )
    if b.ext_put:
        put = next(a for (k, _), a in b.actions.items() if k is ActionKind.PUT_EXTENSION)
        body_props = (put.body or {}).get("properties") or {}
        if body_props.get("autoUpgradeMinorVersion") is False:
            # The planned PUT itself is the write; the version just does not move with it.
            return (
                "the planned PUT pins a version: it does not follow the release train",
                SkipCategory.NOT_WRITABLE,
            )
    return None


def _owned_by_enforce(b: PlanBuilder, d: DesiredExtension, path: str) -> bool:
    return bool(b.desired.enforcing(d.owners_of(path)))


def _fix_extension(
    b: PlanBuilder, d: DesiredExtension, findings: list[Finding], v1_blocking: bool
) -> bool:
    enforce = b.enforcing(d.policies)
    missing = [f for f in findings if f.code is Code.EXTENSION_MISSING]
    if missing:
        if not enforce:
            b.skip_all(missing, "audit mode", SkipCategory.AUDIT)
        elif v1_blocking:
            b.skip_all(
                missing,
                "blocked by Flux v1 configurations (set "
                "remediation.migrateFluxV1 to delete them first)",
                SkipCategory.FLUX_V1,
            )
        else:
            b.create(
                ActionKind.PUT_EXTENSION,
                d.resource,
                reasons=[reason_of(f) for f in missing],
                policies=enforce,
                body=_extension_body(b, d, None, keep_identity=False),
                protected=_protected(b, d),
            )
            b.ext_put = True
        return False

    ext = b.seen.extension
    pending = rotation_still_pending(ext, findings)
    if pending is not None:
        b.skip_all(findings, pending, SkipCategory.IN_PROGRESS)
        return False
    writable: list[Finding] = []
    for f in findings:
        if f.code is Code.EXTENSION_FAILED:
            ok = bool(enforce)
        else:
            ok = f.path is not None and _owned_by_enforce(b, d, f.path)
        if ok:
            writable.append(f)
        else:
            why = f"audit mode ({f.path})" if f.path else "audit mode"
            b.skip(f.resource, f.code, why, SkipCategory.AUDIT)
    if not writable or ext is None or b.seen.extension_id is None:
        return False
    rid = b.seen.extension_id
    create_only = [f for f in writable if touches(f.path, _EXTENSION_CREATE_ONLY)]
    in_place = [f for f in writable if f not in create_only]
    recreate = b.flag(enforce, "recreate_on_immutable_change")
    if create_only and recreate:
        b.act(
            ActionKind.DELETE_EXTENSION,
            rid,
            change="-",
            reasons=[reason_of(f) for f in create_only],
            policies=recreate,
            changes=[
                {"path": f.path, "desired": f.desired, "actual": f.actual} for f in create_only
            ],
        )
        b.create(
            ActionKind.PUT_EXTENSION,
            d.resource,
            reasons=[reason_of(f) for f in writable],
            policies=enforce,
            body=_extension_body(b, d, ext, keep_identity=False),
            protected=_protected(b, d),
        )
        b.ext_put = True
        return True
    b.skip_create_only(create_only)
    if in_place:
        body = _extension_body(b, d, ext, keep_identity=True)
        b.act(
            ActionKind.PUT_EXTENSION,
            rid,
            change="~",
            reasons=[reason_of(f) for f in in_place],
            policies=enforce,
            body=body,
            protected=_protected(b, d),
            changes=field_changes(in_place),
        )
        b.ext_put = True
    return False


def _protected(b: PlanBuilder, d: DesiredExtension) -> dict[str, str]:
    return {
        s: ref for s, ref in sorted(d.protected.items()) if _owned_by_enforce(b, d, setting_path(s))
    }


def _extension_body(
    b: PlanBuilder, d: DesiredExtension, ext: Any, *, keep_identity: bool
) -> dict[str, Any]:
    """The full PUT body: the observed writable fields, then every enforce-owned field.

    Keeping the observed values of what no enforce policy owns means a PUT never changes an
    ungoverned field, an ungoverned ``configurationSettings`` key or an audit-owned one.
    """
    props: dict[str, Any] = {}
    if ext is not None and b.seen.extension_essence is not None:
        observed = b.seen.extension_essence["properties"]
        if isinstance(observed, _MAP):
            props = copy_json(observed)
    desired = d.body["properties"]
    props["extensionType"] = essence.FLUX_EXTENSION_TYPE
    if not keep_identity or not isinstance(props.get("scope"), Mapping):
        props["scope"] = copy_json(desired["scope"])
    for field in sorted(d.fields):
        if _owned_by_enforce(b, d, "/properties/" + field) and field in desired:
            props[field] = copy_json(desired[field])
    settings = props.get("configurationSettings")
    settings = dict(settings) if isinstance(settings, _MAP) else {}
    for setting in sorted(d.settings):
        if _owned_by_enforce(b, d, pointer("properties", "configurationSettings", setting)):
            settings[setting] = desired["configurationSettings"][setting]
    if settings:
        props["configurationSettings"] = settings
    else:
        props.pop("configurationSettings", None)
    if props.get("autoUpgradeMinorVersion") is not False:
        props.pop("version", None)  # ARM refuses a version with auto-upgrade on
    return {"properties": props}
