"""Planning: the ARM writes that would fix a verdict, and the findings deliberately left alone.

``plan(observed, desired, verdict)`` turns findings into an ordered ``ClusterPlan``. It writes
as little as it can and never more than the policies allow:

* only what an ``enforce`` policy owns is written; audit-owned findings are ``Skipped``
  ("audit mode"), and audit-owned extension fields keep their observed values in the body;
* a resource with a policy conflict is never written;
* an unreachable or stopped cluster, or one whose reads failed, gets no actions at all (the
  remediation job lists it for retry);
* Flux v1 configurations are deleted first, and only with ``remediation.migrateFluxV1``;
  otherwise they block the extension install, so nothing that would install it is planned;
* a resource is ensured with a PUT of its **full desired body** (idempotent, and a PATCH's
  merge semantics cannot remove a kustomization), except that ungoverned extension fields and
  ``configurationSettings`` keys keep their observed values so a PUT never changes what no
  policy governs;
* a create-only field (flux configuration ``scope``/``namespace``, extension name/``scope``)
  that differs needs delete + create, done only with ``remediation.recreateOnImmutableChange``;
  without it the other fields are still fixed in place and the create-only one is ``Skipped``;
* unmanaged flux configurations are deleted only with ``remediation.deleteUnmanaged``;
* version findings are judged, not written: a PUT happens only if the desired body differs;
  except that with ``nudge_stuck_versions`` (what remediation jobs use) an auto-upgrading
  extension stuck outside its window, where an ``enforce`` policy owns the window (or the ARM64
  floor), gets a re-PUT of its unchanged body: the usual nudge that makes the extension manager
  move it to the newest release of its train. Pinned versions, conflicts, Flux v1 leftovers
  and extensions with an operation in progress are never nudged (each is ``Skipped``).

Actions run in ``ACTION_ORDER`` (v1 deletes, config deletes, extension delete, extension PUT,
config PUTs). The plan records a digest of the observed essence so that a saved plan can be
refused when the cluster changed in between. Pure and deterministic.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from fleet.core.diffing import MAPPING as _MAP
from fleet.core.diffing import copy_json, escape, is_under, pointer
from fleet.core.ids import key
from fleet.core.vocabulary import Code
from fleet.desired.fingerprints import Fingerprints, setting_path, short
from fleet.desired.render import VERSION_PATH, DesiredExtension, DesiredFluxConfig, DesiredState
from fleet.evaluate.verdicts import Finding, Verdict
from fleet.observe import essence
from fleet.observe.observed import ObservedCluster
from fleet.observe.view import ConfigView, ObservedView, resource_name, view
from fleet.observe.view import properties as properties_of
from fleet.observe.wellformed import checked
from fleet.plan.actions import ACTION_ORDER, Action, ActionKind, ClusterPlan, Skipped

_EXTENSION_CREATE_ONLY = ("/name", "/properties/extensionType", "/properties/scope")
_FLUX_CREATE_ONLY = ("/properties/scope", "/properties/namespace")
_VERSION_CODES = (Code.EXTENSION_VERSION_OUT_OF_WINDOW, Code.EXTENSION_VERSION_UNSUPPORTED_ARCH)
_BLOCKERS = (Code.READ_ERROR, Code.CLUSTER_UNREACHABLE, Code.CLUSTER_STOPPED)
#: Extension provisioning states of a running operation (an upgrade may be under way).
_IN_PROGRESS = frozenset({"creating", "updating", "deleting", "accepted", "running"})

# --- the observed digest ------------------------------------------------------------------


def _str_keys(value: Any) -> Any:
    if isinstance(value, _MAP):
        return {str(k): _str_keys(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_str_keys(v) for v in value]
    return value


def canonical_json(value: Any) -> bytes:
    """Canonical JSON bytes (sorted keys, compact): equal values give equal bytes."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str)
    except TypeError:
        # Keys that are not strings only occur in hand-made data; make them strings.
        return json.dumps(
            _str_keys(value),
            sort_keys=True,
            separators=(",", ":"),
            default=str,
            ensure_ascii=False,
        ).encode()


def _state(resource: Any) -> Any:
    props = resource.get("properties") if isinstance(resource, _MAP) else None
    return props.get("provisioningState") if isinstance(props, _MAP) else None


def observed_digest(observed: ObservedCluster, seen: ObservedView | None = None) -> str:
    """sha256 of the canonical JSON of what a plan depends on in an observation.

    That is the essence of the Flux extension(s) and flux configurations (every setting, not
    only the governed ones), their provisioning states and the Flux v1 configurations present;
    not the status that changes on its own (``complianceState``, ``currentVersion``).
    """
    unchecked, observed = observed, checked(observed)
    if seen is None or observed is not unchecked:
        seen = view(observed)
    extensions = [
        [
            (resource_name(e) or "").lower(),
            seen.extension_essence if e is seen.extension else essence.extension(e),
            _state(e),
        ]
        for e in seen.flux_extensions
    ]
    extensions.sort(key=lambda item: str(item[0]))
    doc = {
        "cluster": key(observed.facts.id),
        "extensions": extensions,
        "fluxConfigurations": {k: [c.essence, _state(c.resource)] for k, c in seen.flux.items()},
        "fluxV1": sorted(
            (resource_name(r) or "").lower() for r in observed.source_control_configurations
        ),
        "readError": observed.read_error is not None,
    }
    return "sha256:" + hashlib.sha256(canonical_json(doc)).hexdigest()


# --- helpers ------------------------------------------------------------------------------


def _reason(f: Finding) -> str:
    return f"{f.code.value} {f.path}" if f.path else f.code.value


def _flatten(value: Any, path: str, out: list[dict[str, Any]], *, desired: bool) -> None:
    """Leaf changes of a whole created (desired=True) or deleted resource."""
    if isinstance(value, _MAP) and value:
        for k in sorted(value, key=str):
            _flatten(value[k], path + "/" + escape(k), out, desired=desired)
    else:
        out.append(
            {
                "path": path,
                "desired": value if desired else None,
                "actual": None if desired else value,
            }
        )


def _changes(findings: Iterable[Finding]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for f in findings:
        if f.path is not None and f.path not in seen:
            seen[f.path] = {"path": f.path, "desired": f.desired, "actual": f.actual}
    return [seen[p] for p in sorted(seen)]


def _touches(path: str | None, prefixes: Sequence[str]) -> bool:
    return path is not None and any(is_under(path, p) for p in prefixes)


class _Planner:
    def __init__(
        self,
        observed: ObservedCluster,
        desired: DesiredState,
        verdict: Verdict,
        fingerprints: Fingerprints | None,
        seen: ObservedView,
        *,
        nudge: bool = False,
    ) -> None:
        self.nudge = nudge
        self.observed = observed
        self.seen = seen
        self.desired = desired
        self.verdict = verdict
        self.fingerprints = fingerprints
        self.cid = observed.facts.id
        self.actions: dict[tuple[ActionKind, str], Action] = {}
        self.skipped: dict[tuple[str, str, str], Skipped] = {}
        self.by_resource: dict[str, list[Finding]] = {}
        self.conflicting = {key(c.resource) for c in desired.conflicts}
        #: True once a PUT of the extension is planned.
        self.ext_put = False
        for f in verdict.findings:
            self.by_resource.setdefault(key(f.resource), []).append(f)

    # -- recording -------------------------------------------------------------------------

    def skip(self, resource: str, code: Code | str, reason: str) -> None:
        code_text = code.value if isinstance(code, Code) else code
        k = (key(resource), code_text, reason)
        if k not in self.skipped:
            self.skipped[k] = Skipped(
                cluster_id=self.cid, resource_id=resource, code=code_text, reason=reason
            )

    def skip_all(self, findings: Iterable[Finding], reason: str) -> None:
        for f in findings:
            self.skip(f.resource, f.code, reason)

    def act(
        self,
        kind: ActionKind,
        resource: str,
        *,
        change: str,
        reasons: Sequence[str],
        policies: Sequence[str],
        body: dict[str, Any] | None = None,
        protected: Mapping[str, str] | None = None,
        changes: list[dict[str, Any]] | None = None,
    ) -> None:
        k = (kind, key(resource))
        existing = self.actions.get(k)
        if existing is not None:
            merged_reasons = list(dict.fromkeys([*existing.reasons, *reasons]))
            merged_policies = sorted(set(existing.policies) | set(policies))
            self.actions[k] = Action(
                **{**dict(existing), "reasons": merged_reasons, "policies": merged_policies}
            )
            return
        self.actions[k] = Action(
            kind=kind,
            cluster_id=self.cid,
            resource_id=resource,
            method="DELETE"
            if kind
            in (
                ActionKind.DELETE_FLUX_V1,
                ActionKind.DELETE_EXTENSION,
                ActionKind.DELETE_FLUX_CONFIG,
            )
            else "PUT",
            body=body,
            protected=dict(protected or {}),
            reasons=list(dict.fromkeys(reasons)),
            policies=sorted(set(policies)),
            change=change,
            changes=changes or [],
        )

    def enforcing(self, policies: Iterable[str | None]) -> list[str]:
        return self.desired.enforcing([p for p in policies if p is not None])

    def flag(self, policies: Iterable[str], name: str) -> list[str]:
        return [p for p in policies if getattr(self.desired.flags[p], name)]

    # -- the plan --------------------------------------------------------------------------

    def run(self) -> None:
        blockers = [f for f in self.verdict.findings if f.code in _BLOCKERS]
        if blockers:
            first = min(blockers, key=lambda f: _BLOCKERS.index(f.code))
            why = {
                Code.READ_ERROR: "the cluster could not be read",
                Code.CLUSTER_UNREACHABLE: "the cluster is unreachable",
                Code.CLUSTER_STOPPED: "the cluster is stopped",
            }[first.code]
            self.skip(self.cid, first.code, f"{why}: nothing is written; retry when it is back")
            return
        for conflict in self.desired.conflicts:
            self.skip(
                conflict.resource,
                Code.POLICY_CONFLICT,
                f"policy conflict on {conflict.path}: the resource is not written until "
                f"{', '.join(conflict.policies)} agree",
            )
        v1_blocking = self.flux_v1()
        ext_present = self.seen.extension is not None
        recreated = self.extension(v1_blocking)
        self.flux_configs(v1_blocking and not ext_present and not self.ext_put, recreated)
        self.unmanaged()

    def flux_v1(self) -> bool:
        """Delete Flux v1 (if allowed); True when it stays and blocks the extension."""
        findings = [f for f in self.verdict.findings if f.code is Code.FLUX_V1_PRESENT]
        if not findings:
            return False
        migrators = self.flag(self.enforcing(self.desired.policies), "migrate_flux_v1")
        for resource in sorted({f.resource for f in findings}, key=key):
            if migrators:
                name = resource.rstrip("/").rsplit("/", 1)[-1]
                self.act(
                    ActionKind.DELETE_FLUX_V1,
                    resource,
                    change="-",
                    reasons=[Code.FLUX_V1_PRESENT.value],
                    policies=migrators,
                    changes=[{"path": "", "desired": None, "actual": name}],
                )
            else:
                self.skip(
                    resource,
                    Code.FLUX_V1_PRESENT,
                    "Flux v1 present; set remediation.migrateFluxV1 to delete it",
                )
        return not migrators

    # -- the extension ---------------------------------------------------------------------

    def extension(self, v1_blocking: bool) -> bool:
        """Plan the extension; True when it is deleted and recreated."""
        d = self.desired.extension
        findings = [f for f in self.verdict.findings if f.code.value.startswith("EXTENSION_")]
        version_findings = [f for f in findings if f.code in _VERSION_CODES]
        findings = [f for f in findings if f.code not in _VERSION_CODES]
        recreated = self._extension_fields(d, findings, version_findings, v1_blocking)
        self.versions(d, version_findings, v1_blocking)
        return recreated

    def _extension_fields(
        self,
        d: DesiredExtension | None,
        findings: list[Finding],
        version_findings: list[Finding],
        v1_blocking: bool,
    ) -> bool:
        if d is None or not findings:
            return False
        if d.conflict_paths:
            self.skip_all(
                findings,
                "policy conflict: the extension is not written until the "
                "conflicting policies agree",
            )
            return False
        if any(f.path == VERSION_PATH for f in version_findings):
            # Writing the pin would install a version ARM64 nodes cannot run.
            self.skip_all(
                findings,
                "the policy pins a version ARM64 clusters cannot run; fix the policy first",
            )
            return False
        return self._extension(d, findings, v1_blocking)

    def versions(
        self, d: DesiredExtension | None, findings: list[Finding], v1_blocking: bool
    ) -> None:
        """Version findings: judged, and written only as a nudge (see the module docstring)."""
        if not findings:
            return
        if not self.nudge:
            self.skip_all(
                findings,
                "the version is judged, not written: it follows the "
                "release train or the pinned version; a PUT is planned only when the "
                "desired body differs",
            )
            return
        refusal = self._nudge_refusal(d, findings, v1_blocking)
        if refusal is not None:
            self.skip_all(findings, refusal)
            return
        assert d is not None and self.seen.extension_id is not None
        reasons = [f"{_reason(f)} (re-PUT nudges auto-upgrade)" for f in findings]
        owners = self.enforcing({f.policy for f in findings})
        rid = self.seen.extension_id
        if self.ext_put:
            # A PUT of the extension is planned anyway; it is the nudge too.
            for (kind, _), action in list(self.actions.items()):
                if kind is ActionKind.PUT_EXTENSION:
                    self.act(
                        kind,
                        action.resource_id,
                        change=action.change,
                        reasons=reasons,
                        policies=owners,
                    )
            return
        current = properties_of(self.seen.extension).get("currentVersion")
        self.act(
            ActionKind.PUT_EXTENSION,
            rid,
            change="~",
            reasons=reasons,
            policies=owners,
            body=self._extension_body(d, self.seen.extension, keep_identity=True),
            protected=self._protected(d),
            changes=[
                {"path": f.path, "desired": f.desired, "actual": current}
                for f in findings
                if f.path is not None
            ][:1],
        )
        self.ext_put = True

    def _nudge_refusal(
        self, d: DesiredExtension | None, findings: list[Finding], v1_blocking: bool
    ) -> str | None:
        """Why a stuck version must not be nudged, or None when a re-PUT may nudge it."""
        ext = self.seen.extension
        if d is None or ext is None or self.seen.extension_id is None:
            return "no policy declares the extension: the version is only reported"
        if not self.enforcing({f.policy for f in findings}):
            return "audit mode"
        if d.conflict_paths:
            return (
                "policy conflict: the extension is not written until the conflicting policies agree"
            )
        if v1_blocking:
            return (
                "blocked by Flux v1 configurations (set remediation.migrateFluxV1 to delete "
                "them first)"
            )
        props = properties_of(ext)
        if props.get("autoUpgradeMinorVersion") is False:
            return (
                "the version is pinned (autoUpgradeMinorVersion: false): a re-PUT keeps "
                "the pin; change the policy's version to move it"
            )
        state = str(props.get("provisioningState") or "").lower()
        if state in _IN_PROGRESS:
            return (
                f"an operation is in progress on the extension ({state}): the version "
                "may still move; retry later"
            )
        if self.ext_put:
            put = next(a for (k, _), a in self.actions.items() if k is ActionKind.PUT_EXTENSION)
            body_props = (put.body or {}).get("properties") or {}
            if body_props.get("autoUpgradeMinorVersion") is False:
                return "the planned PUT pins a version: it does not follow the release train"
        return None

    def _owned_by_enforce(self, d: DesiredExtension, path: str) -> bool:
        return bool(self.desired.enforcing(d.owners_of(path)))

    def _extension(self, d: DesiredExtension, findings: list[Finding], v1_blocking: bool) -> bool:
        enforce = self.enforcing(d.policies)
        missing = [f for f in findings if f.code is Code.EXTENSION_MISSING]
        if missing:
            if not enforce:
                self.skip_all(missing, "audit mode")
            elif v1_blocking:
                self.skip_all(
                    missing,
                    "blocked by Flux v1 configurations (set "
                    "remediation.migrateFluxV1 to delete them first)",
                )
            else:
                body = self._extension_body(d, None, keep_identity=False)
                changes: list[dict[str, Any]] = []
                _flatten(body, "", changes, desired=True)
                self.act(
                    ActionKind.PUT_EXTENSION,
                    d.resource,
                    change="+",
                    reasons=[_reason(f) for f in missing],
                    policies=enforce,
                    body=body,
                    protected=self._protected(d),
                    changes=changes,
                )
                self.ext_put = True
            return False

        ext = self.seen.extension
        writable: list[Finding] = []
        for f in findings:
            if f.code is Code.EXTENSION_FAILED:
                ok = bool(enforce)
            else:
                ok = f.path is not None and self._owned_by_enforce(d, f.path)
            if ok:
                writable.append(f)
            else:
                self.skip(f.resource, f.code, f"audit mode ({f.path})" if f.path else "audit mode")
        if not writable or ext is None or self.seen.extension_id is None:
            return False
        rid = self.seen.extension_id
        create_only = [f for f in writable if _touches(f.path, _EXTENSION_CREATE_ONLY)]
        in_place = [f for f in writable if f not in create_only]
        recreate = self.flag(enforce, "recreate_on_immutable_change")
        if create_only and recreate:
            self.act(
                ActionKind.DELETE_EXTENSION,
                rid,
                change="-",
                reasons=[_reason(f) for f in create_only],
                policies=recreate,
                changes=[
                    {"path": f.path, "desired": f.desired, "actual": f.actual} for f in create_only
                ],
            )
            body = self._extension_body(d, ext, keep_identity=False)
            changes = []
            _flatten(body, "", changes, desired=True)
            self.act(
                ActionKind.PUT_EXTENSION,
                d.resource,
                change="+",
                reasons=[_reason(f) for f in writable],
                policies=enforce,
                body=body,
                protected=self._protected(d),
                changes=changes,
            )
            self.ext_put = True
            return True
        for f in create_only:
            self.skip(
                f.resource,
                f.code,
                f"create-only field differs ({f.path}); set "
                "remediation.recreateOnImmutableChange to delete and recreate it",
            )
        if in_place:
            body = self._extension_body(d, ext, keep_identity=True)
            self.act(
                ActionKind.PUT_EXTENSION,
                rid,
                change="~",
                reasons=[_reason(f) for f in in_place],
                policies=enforce,
                body=body,
                protected=self._protected(d),
                changes=_changes(in_place),
            )
            self.ext_put = True
        return False

    def _protected(self, d: DesiredExtension) -> dict[str, str]:
        return {
            s: ref
            for s, ref in sorted(d.protected.items())
            if self._owned_by_enforce(d, setting_path(s))
        }

    def _extension_body(
        self, d: DesiredExtension, ext: Any, *, keep_identity: bool
    ) -> dict[str, Any]:
        """The full PUT body: the observed writable fields, then every enforce-owned field.

        Keeping the observed values of what no enforce policy owns means a PUT never changes an
        ungoverned field, an ungoverned ``configurationSettings`` key or an audit-owned one.
        """
        props: dict[str, Any] = {}
        if ext is not None and self.seen.extension_essence is not None:
            observed = self.seen.extension_essence["properties"]
            if isinstance(observed, _MAP):
                props = copy_json(observed)
        desired = d.body["properties"]
        props["extensionType"] = essence.FLUX_EXTENSION_TYPE
        if not keep_identity or not isinstance(props.get("scope"), Mapping):
            props["scope"] = copy_json(desired["scope"])
        for field in sorted(d.fields):
            if self._owned_by_enforce(d, "/properties/" + field) and field in desired:
                props[field] = copy_json(desired[field])
        settings = props.get("configurationSettings")
        settings = dict(settings) if isinstance(settings, _MAP) else {}
        for setting in sorted(d.settings):
            if self._owned_by_enforce(d, pointer("properties", "configurationSettings", setting)):
                settings[setting] = desired["configurationSettings"][setting]
        if settings:
            props["configurationSettings"] = settings
        else:
            props.pop("configurationSettings", None)
        if props.get("autoUpgradeMinorVersion") is not False:
            props.pop("version", None)  # ARM refuses a version with auto-upgrade on
        return {"properties": props}

    # -- flux configurations ---------------------------------------------------------------

    def flux_configs(self, blocked: bool, recreated_extension: bool) -> None:
        on_cluster = self.seen.flux
        for name, dc in self.desired.flux_configurations.items():
            seen = on_cluster.get(name.lower())
            rid = seen.id if seen is not None else dc.resource
            findings = list(self.by_resource.get(key(rid), ()))
            if key(dc.resource) != key(rid):
                findings += self.by_resource.get(key(dc.resource), ())
            self._flux_config(dc, rid, seen, findings, blocked, recreated_extension)

    def _flux_config(
        self,
        dc: DesiredFluxConfig,
        rid: str,
        seen: ConfigView | None,
        findings: list[Finding],
        blocked: bool,
        recreated_extension: bool,
    ) -> None:
        if not findings and not recreated_extension:
            return
        conflicting = key(rid) in self.conflicting or key(dc.resource) in self.conflicting
        if dc.conflict_paths or conflicting:
            self.skip_all(
                [f for f in findings if f.code is not Code.POLICY_CONFLICT],
                "policy conflict: the configuration is not written until the "
                "conflicting policies agree",
            )
            return
        enforce = self.enforcing(dc.policies)
        if not enforce:
            self.skip_all(findings, "audit mode")
            return
        body = copy_json(dc.body)
        missing = [f for f in findings if f.code is Code.FLUX_CONFIG_MISSING]
        if missing or seen is None:
            if blocked:
                self.skip_all(
                    missing,
                    "blocked by Flux v1 configurations: creating a flux "
                    "configuration would install the extension (set "
                    "remediation.migrateFluxV1)",
                )
                return
            changes: list[dict[str, Any]] = []
            _flatten(body, "", changes, desired=True)
            self.act(
                ActionKind.PUT_FLUX_CONFIG,
                dc.resource,
                change="+",
                reasons=[_reason(f) for f in missing] or ["extension recreated"],
                policies=enforce,
                body=body,
                protected=dc.protected,
                changes=changes,
            )
            return
        writable = [
            f for f in findings if f.code in (Code.FLUX_CONFIG_DRIFT, Code.FLUX_CONFIG_FAILED)
        ]
        create_only = [f for f in writable if _touches(f.path, _FLUX_CREATE_ONLY)]
        in_place = [f for f in writable if f not in create_only]
        recreate = self.flag(enforce, "recreate_on_immutable_change")
        if create_only and recreate:
            self.act(
                ActionKind.DELETE_FLUX_CONFIG,
                rid,
                change="-",
                reasons=[_reason(f) for f in create_only],
                policies=recreate,
                changes=_changes(create_only),
            )
            changes = []
            _flatten(body, "", changes, desired=True)
            self.act(
                ActionKind.PUT_FLUX_CONFIG,
                dc.resource,
                change="+",
                reasons=[_reason(f) for f in writable],
                policies=enforce,
                body=body,
                protected=dc.protected,
                changes=changes,
            )
            return
        for f in create_only:
            self.skip(
                f.resource,
                f.code,
                f"create-only field differs ({f.path}); set "
                "remediation.recreateOnImmutableChange to delete and recreate it",
            )
        reasons = [_reason(f) for f in in_place]
        if recreated_extension:
            reasons.append("extension recreated")
        if reasons:
            observed = seen.essence["properties"]
            if create_only and isinstance(observed, _MAP):
                # Keep the create-only values ARM has: a PUT cannot change them.
                for field in ("scope", "namespace"):
                    if field in observed:
                        body["properties"][field] = observed[field]
            self.act(
                ActionKind.PUT_FLUX_CONFIG,
                rid,
                change="~",
                reasons=reasons,
                policies=enforce,
                body=body,
                protected=dc.protected,
                changes=_changes(in_place),
            )
        else:
            others = [f for f in findings if f.code is Code.FLUX_CONFIG_NONCOMPLIANT]
            self.skip_all(
                others,
                "Flux reports Non-Compliant but the configuration matches "
                "the policy: nothing to write (look at the Flux objects on the "
                "cluster)",
            )

    def unmanaged(self) -> None:
        findings = [f for f in self.verdict.findings if f.code is Code.FLUX_CONFIG_UNMANAGED]
        by_resource: dict[str, list[Finding]] = {}
        for f in findings:
            by_resource.setdefault(f.resource, []).append(f)
        on_cluster = self.seen.flux
        for resource in sorted(by_resource, key=key):
            group = by_resource[resource]
            owners = [f.policy for f in group if f.policy is not None]
            enforce = self.enforcing(owners)
            if enforce:
                name = resource.rstrip("/").rsplit("/", 1)[-1]
                seen = on_cluster.get(name.lower())
                changes: list[dict[str, Any]] = []
                if seen is not None:
                    _flatten(seen.essence, "", changes, desired=False)
                self.act(
                    ActionKind.DELETE_FLUX_CONFIG,
                    resource,
                    change="-",
                    reasons=[Code.FLUX_CONFIG_UNMANAGED.value],
                    policies=enforce,
                    changes=changes,
                )
            elif owners:
                self.skip(resource, Code.FLUX_CONFIG_UNMANAGED, "audit mode")
            else:
                self.skip(
                    resource,
                    Code.FLUX_CONFIG_UNMANAGED,
                    "not declared by any policy; set remediation.deleteUnmanaged to delete it",
                )


def plan(
    observed: ObservedCluster,
    desired: DesiredState,
    verdict: Verdict,
    *,
    fingerprints: Fingerprints | None = None,
    seen: ObservedView | None = None,
    nudge_stuck_versions: bool = False,
) -> ClusterPlan:
    """The ordered ARM actions that would fix ``verdict``, and what is skipped and why.

    ``fingerprints`` only adds information: for a PUT that carries protected settings, the
    fingerprint change of each is listed among the ``changes`` (short forms, never values).
    ``nudge_stuck_versions`` plans a re-PUT of an auto-upgrading extension stuck outside an
    enforce-owned version window (remediation jobs turn it on; sweeps only report).
    """
    unchecked, observed = observed, checked(observed)
    if seen is None or observed is not unchecked:
        seen = view(observed, desired.extension.name if desired.extension else None)
    planner = _Planner(observed, desired, verdict, fingerprints, seen, nudge=nudge_stuck_versions)
    planner.run()
    actions = sorted(
        planner.actions.values(), key=lambda a: (ACTION_ORDER[a.kind], key(a.resource_id))
    )
    if fingerprints is not None:
        actions = [_with_secret_changes(a, fingerprints) for a in actions]
    skipped = sorted(planner.skipped.values(), key=lambda s: (key(s.resource_id), s.code, s.reason))
    return ClusterPlan(
        cluster_id=observed.facts.id,
        cluster_name=observed.facts.name,
        actions=actions,
        skipped=skipped,
        observed_digest=observed_digest(observed, seen),
    )


def _with_secret_changes(action: Action, fingerprints: Fingerprints) -> Action:
    if not action.protected or action.method != "PUT":
        return action
    applied = fingerprints.applied.get(key(action.resource_id), {})
    known = {c["path"] for c in action.changes}
    extra = []
    for setting, ref in sorted(action.protected.items()):
        path = setting_path(setting)
        want = fingerprints.desired.get(ref)
        have = applied.get(setting)
        if path in known or want == have:
            continue
        extra.append(
            {"path": path, "desired": short(want) if want else f"({ref})", "actual": short(have)}
        )
    if not extra:
        return action
    return Action(**{**dict(action), "changes": [*action.changes, *extra]})
