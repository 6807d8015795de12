"""Is an action's desired state in place? The check a remediation job makes after writing.

Pure functions over a fresh observation (no I/O). A write is only as good as what ARM shows
afterwards: ``unmet(observed, actions, ...)`` lists, for each action, why the cluster does not
(yet) carry what the action asked for:

- a PUT: the resource exists, ``diff(essence(body), essence(observed))`` is empty (the same
  comparison a sweep makes), it is not in ``provisioningState: Failed``, a flux configuration is
  not reported ``Non-Compliant`` by Flux (the write went through but the source or a
  kustomization does not reconcile: exactly what a canary wave exists to catch), and every
  protected setting's fingerprint is the one of the value the policies reference now;
- a DELETE: the resource is gone.

The same check decides which stored actions a retry still has to send (``unmet`` on the state
before writing), so a retry never rewrites what is already right.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fleet.core.diffing import diff
from fleet.core.ids import key
from fleet.desired.fingerprints import Fingerprints, same
from fleet.observe import essence
from fleet.observe.observed import ObservedCluster
from fleet.observe.view import properties, resource_name
from fleet.plan.actions import Action, ActionKind

_KIND_LABEL = {
    ActionKind.PUT_EXTENSION: "extension",
    ActionKind.DELETE_EXTENSION: "extension",
    ActionKind.PUT_FLUX_CONFIG: "flux configuration",
    ActionKind.DELETE_FLUX_CONFIG: "flux configuration",
    ActionKind.DELETE_FLUX_V1: "Flux v1 configuration",
}


def label(action: Action) -> str:
    """``flux configuration 'cluster-config'``: how messages name an action's resource."""
    return f"{_KIND_LABEL[action.kind]} {action.resource_id.rstrip('/').rsplit('/', 1)[-1]!r}"


def _children(observed: ObservedCluster, kind: ActionKind) -> Sequence[Any]:
    if kind in (ActionKind.PUT_EXTENSION, ActionKind.DELETE_EXTENSION):
        return observed.extensions
    if kind in (ActionKind.PUT_FLUX_CONFIG, ActionKind.DELETE_FLUX_CONFIG):
        return observed.flux_configurations
    return observed.source_control_configurations


def find(observed: ObservedCluster, action: Action) -> Any | None:
    """The observed resource an action addresses (by name, case-insensitively), or None."""
    name = action.resource_id.rstrip("/").rsplit("/", 1)[-1].lower()
    for child in _children(observed, action.kind):
        if (resource_name(child) or "").lower() == name:
            return child
    return None


def _error(props: Mapping[str, Any]) -> str:
    info = props.get("errorInfo")
    message = None
    if isinstance(info, Mapping):
        message = info.get("message") or info.get("code")
    message = message or props.get("errorMessage")
    return f": {str(message)[:200]}" if message else ""


def problem(
    observed: ObservedCluster, action: Action, fingerprints: Fingerprints | None = None
) -> str | None:
    """Why the observation does not carry what ``action`` asks for; None when it does."""
    found = find(observed, action)
    what = label(action)
    if action.method == "DELETE":
        return None if found is None else f"{what} still exists"
    if found is None:
        return f"{what} does not exist"
    props = properties(found)
    state = str(props.get("provisioningState") or "")
    if state.lower() == "failed":
        return f"{what} is in provisioningState Failed{_error(props)}"
    body = action.body or {}
    if action.kind is ActionKind.PUT_EXTENSION:
        want = essence.extension({"properties": body.get("properties") or {}})["properties"]
        have = essence.extension(found)["properties"]
    else:
        want = essence.flux_configuration(body)["properties"]
        have = essence.flux_configuration(found)["properties"]
    differences = diff(want, have, base="/properties")
    if differences:
        paths = ", ".join(d.path for d in differences[:3])
        more = f" and {len(differences) - 3} more" if len(differences) > 3 else ""
        return f"{what} differs at {paths}{more}"
    compliance = str(props.get("complianceState") or "").replace("-", "").lower()
    if action.kind is ActionKind.PUT_FLUX_CONFIG and compliance == "noncompliant":
        return f"Flux reports {what} Non-Compliant{_error(props)}"
    if action.protected and fingerprints is not None:
        applied = fingerprints.applied.get(key(action.resource_id), {})
        for setting, ref in sorted(action.protected.items()):
            want_fp = fingerprints.desired.get(ref)
            have_fp = applied.get(setting)
            if want_fp is None or have_fp is None or not same(want_fp, have_fp):
                return f"{what}: protected setting {setting!r} ({ref}) is not the one applied"
    return None


def unmet(
    observed: ObservedCluster,
    actions: Sequence[Action],
    fingerprints: Fingerprints | None = None,
) -> list[tuple[Action, str]]:
    """The actions whose desired state the observation does not show, with the reason."""
    out = []
    for action in actions:
        why = problem(observed, action, fingerprints)
        if why is not None:
            out.append((action, why))
    return out
