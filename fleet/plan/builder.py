"""The plan of one cluster while it is drawn up: what the planners record, and small helpers.

``PlanBuilder`` holds the inputs of ``fleet.plan.planning.plan`` (observation, desired state,
verdict) and collects what the planners of the extension (``fleet.plan.extension``) and of the
flux configurations (``fleet.plan.flux``) decide: one ``Action`` per kind and resource, and
every ``Skipped`` finding with its reason and the category of that decision. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fleet.core.diffing import MAPPING as _MAP
from fleet.core.diffing import escape, is_under
from fleet.core.ids import key
from fleet.core.vocabulary import Code
from fleet.desired.fingerprints import Fingerprints
from fleet.desired.state import DesiredState
from fleet.evaluate.verdicts import Finding, Verdict
from fleet.observe.observed import ObservedCluster
from fleet.observe.view import ObservedView
from fleet.plan.actions import Action, ActionKind, Reason, SkipCategory, Skipped


def reason_of(f: Finding, *, nudge: bool = False) -> Reason:
    return Reason(code=f.code, path=f.path, nudge=nudge)


def flatten(value: Any, path: str, out: list[dict[str, Any]], *, desired: bool) -> None:
    """Leaf changes of a whole created (desired=True) or deleted resource."""
    if isinstance(value, _MAP) and value:
        for k in sorted(value, key=str):
            flatten(value[k], path + "/" + escape(k), out, desired=desired)
    else:
        out.append(
            {
                "path": path,
                "desired": value if desired else None,
                "actual": None if desired else value,
            }
        )


def field_changes(findings: Iterable[Finding]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for f in findings:
        if f.path is not None and f.path not in seen:
            seen[f.path] = {"path": f.path, "desired": f.desired, "actual": f.actual}
    return [seen[p] for p in sorted(seen)]


def touches(path: str | None, prefixes: Sequence[str]) -> bool:
    return path is not None and any(is_under(path, p) for p in prefixes)


#: Provisioning states of a write ARM accepted and has not finished. On an Arc cluster that is
#: not connected a write waits in these states until the cluster connects, at most 48 h.
PENDING_STATES = frozenset({"creating", "updating", "deleting", "accepted", "running"})


def rotation_still_pending(resource: Any, findings: Sequence[Finding]) -> str | None:
    """Why a Key Vault rotation is not sent again now, or None when it should be.

    When every finding of a resource is ``SECRET_ROTATION_PENDING`` and ARM still shows a write
    of it in progress, that write is waiting for the cluster: sending it again would only
    restart Azure's 48 h wait. Once ARM gives up on it (``Failed`` after 48 h) the resource is
    written again, so ARM's own data decides, whatever the clocks of fleet's machines say.
    """
    if not findings or any(f.code is not Code.SECRET_ROTATION_PENDING for f in findings):
        return None
    props = resource.get("properties") if isinstance(resource, _MAP) else None
    state = str(props.get("provisioningState") or "") if isinstance(props, _MAP) else ""
    if state.lower() not in PENDING_STATES:
        return None
    return (
        f"a write is still pending on ARM ({state}): it reaches the cluster when the cluster "
        "connects; after Azure's 48 h limit ARM fails it and the rotation is sent again"
    )


class PlanBuilder:
    """The plan of one cluster while it is drawn up: its inputs, and the actions and skips
    recorded so far (one action per kind and resource; reasons of a repeat are merged)."""

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

    def skip(self, resource: str, code: Code | str, reason: str, category: SkipCategory) -> None:
        code_text = code.value if isinstance(code, Code) else code
        k = (key(resource), code_text, reason)
        if k not in self.skipped:
            self.skipped[k] = Skipped(
                cluster_id=self.cid,
                resource_id=resource,
                code=code_text,
                reason=reason,
                category=category,
            )

    def skip_all(self, findings: Iterable[Finding], reason: str, category: SkipCategory) -> None:
        for f in findings:
            self.skip(f.resource, f.code, reason, category)

    def act(
        self,
        kind: ActionKind,
        resource: str,
        *,
        change: str,
        reasons: Sequence[Reason],
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

    def create(
        self,
        kind: ActionKind,
        resource: str,
        *,
        reasons: Sequence[Reason],
        policies: Sequence[str],
        body: dict[str, Any],
        protected: Mapping[str, str],
    ) -> None:
        """A PUT that creates ``resource`` with its full desired body (every leaf a change)."""
        changes: list[dict[str, Any]] = []
        flatten(body, "", changes, desired=True)
        self.act(
            kind,
            resource,
            change="+",
            reasons=reasons,
            policies=policies,
            body=body,
            protected=protected,
            changes=changes,
        )

    def skip_create_only(self, findings: Iterable[Finding]) -> None:
        """Findings on create-only fields, left alone without recreateOnImmutableChange."""
        for f in findings:
            self.skip(
                f.resource,
                f.code,
                f"create-only field differs ({f.path}); set "
                "remediation.recreateOnImmutableChange to delete and recreate it",
                SkipCategory.IMMUTABLE,
            )

    def enforcing(self, policies: Iterable[str | None]) -> list[str]:
        return self.desired.enforcing([p for p in policies if p is not None])

    def flag(self, policies: Iterable[str], name: str) -> list[str]:
        return [p for p in policies if getattr(self.desired.flags[p], name)]
