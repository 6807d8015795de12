"""Planning: the ARM writes that would fix a verdict, and the findings deliberately left alone.

``plan(observed, desired, verdict)`` turns findings into an ordered ``ClusterPlan``. It writes
as little as it can and never more than the policies allow:

* only what an ``enforce`` policy owns is written; audit-owned findings are ``Skipped``
  ("audit mode"), and audit-owned extension fields keep their observed values in the body;
* a resource with a policy conflict is never written;
* an unreachable or stopped cluster, or one whose reads failed, gets no actions at all (the
  remediation job lists it for retry); nor does an ineligible one (``CLUSTER_INELIGIBLE``:
  skipped with its reason, not retried);
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

This module decides what blocks a cluster as a whole and records the plan; the extension is
planned by ``fleet.plan.extension``, the flux configurations (and Flux v1 and unmanaged ones)
by ``fleet.plan.flux``, both into a ``fleet.plan.builder.PlanBuilder``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson

from fleet.core.diffing import MAPPING as _MAP
from fleet.core.ids import key
from fleet.core.vocabulary import Code
from fleet.desired.fingerprints import Fingerprints, same, setting_path, short
from fleet.desired.state import DesiredState
from fleet.evaluate.verdicts import Verdict
from fleet.observe import essence
from fleet.observe.observed import ObservedCluster
from fleet.observe.view import ObservedView, resource_name, view
from fleet.observe.wellformed import checked
from fleet.plan.actions import ACTION_ORDER, Action, ClusterPlan, SkipCategory
from fleet.plan.builder import PlanBuilder
from fleet.plan.extension import plan_extension
from fleet.plan.flux import plan_flux_configs, plan_flux_v1, plan_unmanaged

_BLOCKERS = (Code.READ_ERROR, Code.CLUSTER_UNREACHABLE, Code.CLUSTER_STOPPED)

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


# --- the plan -----------------------------------------------------------------------------


def _run(b: PlanBuilder) -> None:
    if not any(f.code is Code.READ_ERROR for f in b.verdict.findings):
        ineligible = [f for f in b.verdict.findings if f.code is Code.CLUSTER_INELIGIBLE]
        if ineligible:
            # Before unreachable: an expired Arc cluster needs a re-connect, not a retry.
            reason = ineligible[0].message
            b.skip(b.cid, Code.CLUSTER_INELIGIBLE, reason, SkipCategory.INELIGIBLE)
            return
    blockers = [f for f in b.verdict.findings if f.code in _BLOCKERS]
    if blockers:
        first = min(blockers, key=lambda f: _BLOCKERS.index(f.code))
        why, category = {
            Code.READ_ERROR: ("the cluster could not be read", SkipCategory.READ_ERROR),
            Code.CLUSTER_UNREACHABLE: ("the cluster is unreachable", SkipCategory.UNREACHABLE),
            Code.CLUSTER_STOPPED: ("the cluster is stopped", SkipCategory.STOPPED),
        }[first.code]
        b.skip(b.cid, first.code, f"{why}: nothing is written; retry when it is back", category)
        return
    for conflict in b.desired.conflicts:
        b.skip(
            conflict.resource,
            Code.POLICY_CONFLICT,
            f"policy conflict on {conflict.path}: the resource is not written until "
            f"{', '.join(conflict.policies)} agree",
            SkipCategory.CONFLICT,
        )
    v1_blocking = plan_flux_v1(b)
    ext_present = b.seen.extension is not None
    recreated = plan_extension(b, v1_blocking)
    plan_flux_configs(b, v1_blocking and not ext_present and not b.ext_put, recreated)
    plan_unmanaged(b)


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
    planner = PlanBuilder(
        observed, desired, verdict, fingerprints, seen, nudge=nudge_stuck_versions
    )
    _run(planner)
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
        if path in known or want == have or (want and have and same(want, have)):
            continue
        extra.append(
            {"path": path, "desired": short(want) if want else f"({ref})", "actual": short(have)}
        )
    if not extra:
        return action
    return Action(**{**dict(action), "changes": [*action.changes, *extra]})
