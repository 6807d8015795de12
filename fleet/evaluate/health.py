"""Flux's own health: what the fluxconfig agent says about a flux configuration.

ARM shows, besides the configuration's properties, what the agent on the cluster last
reported: ``complianceState``, ``statusUpdatedAt`` (when it last reported), and ``statuses[]``,
one entry per Flux object it manages (kind, name, namespace, complianceState,
statusConditions with status/type/reason/message, helmReleaseProperties). ``judge_health``
turns one configuration's report into findings, with the policy's ``health`` limits
(``fleet.policy.health``) and the sweep's "now" (never the wall clock):

1. ``statusUpdatedAt`` older than ``staleAfter``: ``FLUX_STATUS_STALE`` (state ``unknown``);
   nothing else Flux says about the configuration is judged, since it cannot be trusted;
2. ``complianceState`` ``Non-Compliant``: ``FLUX_CONFIG_NONCOMPLIANT``; ``Pending`` for longer
   than ``pendingFor`` since the configuration last changed: ``FLUX_CONFIG_PENDING``;
3. every ``statuses[]`` entry that is not ready (its ``complianceState`` is ``Non-Compliant``
   or its ``Ready`` condition is ``False``): one ``FLUX_OBJECT_NOT_READY`` each, naming the
   object and Flux's reason and message, with a hint for known messages (``flux_hints``).

Observed JSON is untrusted: any shape is accepted, unknown values are not failures, and
nothing here raises. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from fleet.core.vocabulary import Code
from fleet.evaluate.findings import Findings, as_text
from fleet.evaluate.flux_hints import hint
from fleet.policy.health import FluxHealth

#: Longest Flux message kept in a finding (they can hold whole manifests).
MESSAGE_LIMIT = 300


def parse_time(value: Any) -> datetime | None:
    """An ARM timestamp (``2026-11-25T12:00:00Z``, fractions allowed) or None."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _squash(state: str | None) -> str:
    return (state or "").replace("-", "").replace("_", "").lower()


def _age(moment: datetime, now: datetime) -> str:
    seconds = max(0, int((_aware(now) - moment).total_seconds()))
    if seconds >= 2 * 86400:
        return f"{seconds // 86400} days"
    if seconds >= 2 * 3600:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min"


def _limit(limit: timedelta) -> str:
    return _age(datetime(2000, 1, 1, tzinfo=UTC), datetime(2000, 1, 1, tzinfo=UTC) + limit)


def changed_at(resource: Mapping[str, Any]) -> datetime | None:
    """When the configuration last changed in ARM (``systemData``), if ARM says."""
    data = resource.get("systemData")
    if not isinstance(data, Mapping):
        return None
    return parse_time(data.get("lastModifiedAt")) or parse_time(data.get("createdAt"))


def failing_condition(status: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The condition that explains a not-ready object, or None when it is ready.

    Not ready: the object's ``complianceState`` is ``Non-Compliant``, or its ``Ready``
    condition is ``False``. ``Unknown`` (reconciling) and states fleet does not know are not
    failures. The ``Ready`` condition explains best, then any ``False`` one, then the first.
    """
    raw = status.get("statusConditions")
    conditions = [c for c in raw if isinstance(c, Mapping)] if isinstance(raw, list) else []
    ready = next((c for c in conditions if _squash(as_text(c.get("type"))) == "ready"), None)
    not_ready = ready is not None and _squash(as_text(ready.get("status"))) == "false"
    if not not_ready and _squash(as_text(status.get("complianceState"))) != "noncompliant":
        return None
    if not_ready:
        return ready
    false = next((c for c in conditions if _squash(as_text(c.get("status"))) == "false"), None)
    return false or (conditions[0] if conditions else {})


def object_findings(
    statuses: Any, rid: str, config: str, policies: Sequence[str], found: Findings
) -> None:
    """One ``FLUX_OBJECT_NOT_READY`` per Flux object that is not ready."""
    if not isinstance(statuses, list):
        return
    for status in statuses:
        if not isinstance(status, Mapping):
            continue
        condition = failing_condition(status)
        if condition is None:
            continue
        kind = as_text(status.get("kind")) or "object"
        name = as_text(status.get("name")) or "?"
        namespace = as_text(status.get("namespace")) or ""
        reason = as_text(condition.get("reason"))
        message = as_text(condition.get("message")) or ""
        if len(message) > MESSAGE_LIMIT:
            message = message[: MESSAGE_LIMIT - 3] + "..."
        advice = hint(reason, message)
        where = f"{namespace}/{name}" if namespace else name
        text = f"Flux {kind} {where} of flux configuration {config!r} is not ready"
        text += f" ({reason})" if reason else ""
        text += f": {message}" if message else ""
        text += f". Hint: {advice}" if advice else ""
        helm = status.get("helmReleaseProperties")
        actual: dict[str, Any] = {
            "kind": kind,
            "namespace": namespace,
            "name": name,
            "reason": reason,
            "message": message,
            "complianceState": as_text(status.get("complianceState")),
        }
        if isinstance(helm, Mapping) and helm.get("failureCount") is not None:
            actual["failureCount"] = helm.get("failureCount")
        if advice:
            actual["hint"] = advice
        found.add(
            Code.FLUX_OBJECT_NOT_READY,
            policies,
            rid,
            text,
            # The object's identity (ARM identifies statuses by kind, namespace and name):
            # stable across sweeps, whatever order the agent lists them in.
            path=f"/properties/statuses/{kind}/{namespace}/{name}",
            desired="Ready",
            actual=actual,
        )


def judge_health(
    resource: Mapping[str, Any],
    props: Mapping[str, Any],
    rid: str,
    config: str,
    policies: Sequence[str],
    health: FluxHealth,
    now: datetime,
    found: Findings,
) -> None:
    """Findings for what Flux reports about one declared flux configuration."""
    reported = parse_time(props.get("statusUpdatedAt"))
    if reported is not None and _aware(now) - reported > health.stale_limit:
        found.add(
            Code.FLUX_STATUS_STALE,
            policies,
            rid,
            f"Flux last reported on flux configuration {config!r} {_age(reported, now)} ago "
            f"({reported.isoformat()}), more than the {_limit(health.stale_limit)} the policy "
            "allows (health.staleAfter): its status is not trusted; is the fluxconfig-agent "
            "running?",
            path="/properties/statusUpdatedAt",
            actual=as_text(props.get("statusUpdatedAt")),
        )
        return
    compliance = as_text(props.get("complianceState"))
    state = _squash(compliance)
    if state == "noncompliant":
        found.add(
            Code.FLUX_CONFIG_NONCOMPLIANT,
            policies,
            rid,
            f"Flux reports flux configuration {config!r} as {compliance}: a source or "
            "kustomization does not reconcile",
            path="/properties/complianceState",
            desired="Compliant",
            actual=compliance,
        )
    elif state == "pending":
        since = changed_at(resource) or reported
        if since is not None and _aware(now) - since > health.pending_limit:
            found.add(
                Code.FLUX_CONFIG_PENDING,
                policies,
                rid,
                f"flux configuration {config!r} has been Pending for {_age(since, now)} "
                f"(since {since.isoformat()}), more than the {_limit(health.pending_limit)} "
                "the policy allows (health.pendingFor): Flux has not reconciled it",
                path="/properties/complianceState",
                desired="Compliant",
                actual=compliance,
            )
    if health.objects:
        object_findings(props.get("statuses"), rid, config, policies, found)
