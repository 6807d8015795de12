"""Attribution: who last modified each resource a finding is about, and ``FOREIGN_WRITER``.

ARM stamps ``systemData`` on every write: ``lastModifiedBy`` (a user's UPN, an application's
client id, a managed identity's principal id), ``lastModifiedByType`` and ``lastModifiedAt``.
``attribute`` copies that onto every finding about the resource (``Finding.last_modified``), so
a report can say who changed a drifted configuration and when, and adds ``FOREIGN_WRITER``
(severity ``warning``: it never changes a state) for each resource fleet manages (the Flux
extension and the flux configurations a policy declares) that someone other than fleet's own
principal wrote last.

Why a warning and not a failure: a foreign write is a fact about *who*, not about *what*. When
the write left the governed fields as the policy wants, nothing is wrong (someone re-applied
the same body, or changed a field no policy governs); when it did not, the drift findings count
already. ``FOREIGN_WRITER`` rides along to say that a change went around GitOps, by whom.

Fleet's identities come from the caller (``FLEET_PRINCIPAL_ID`` or the claims of fleet's own
access token, ``fleet.azure.credentials.identities_of``); none given, no ``FOREIGN_WRITER`` is
judged (fleet cannot tell itself from others) but ``last_modified`` is still copied. Pure;
``systemData`` is untrusted: anything that is not text is ignored.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from fleet.core.ids import key as id_key
from fleet.core.vocabulary import Code, Severity
from fleet.desired.state import DesiredState
from fleet.evaluate.verdicts import Finding, LastModified
from fleet.observe.view import ObservedView

_LIMIT = 256


def _text(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:_LIMIT]


def last_modified(resource: Any) -> LastModified | None:
    """``systemData``'s last writer of a resource, or None when ARM does not say."""
    system = resource.get("systemData") if isinstance(resource, Mapping) else None
    if not isinstance(system, Mapping):
        return None
    found = LastModified(
        by=_text(system.get("lastModifiedBy")),
        by_type=_text(system.get("lastModifiedByType")),
        at=_text(system.get("lastModifiedAt")),
    )
    return found if found.by or found.at else None


def _managed(seen: ObservedView, desired: DesiredState) -> list[tuple[str, Any, tuple[str, ...]]]:
    """(id, resource, owning policies) of every observed resource a policy manages."""
    out: list[tuple[str, Any, tuple[str, ...]]] = []
    if desired.extension is not None and seen.extension is not None and seen.extension_id:
        out.append((seen.extension_id, seen.extension, desired.extension.policies))
    for name, config in desired.flux_configurations.items():
        found = seen.flux.get(name.lower())
        if found is not None:
            out.append((found.id, found.resource, config.policies))
    return out


def attribute(
    findings: list[Finding],
    seen: ObservedView,
    desired: DesiredState,
    fleet_ids: Collection[str] = (),
) -> list[Finding]:
    """The findings with who last modified their resource, plus ``FOREIGN_WRITER``s."""
    writers: dict[str, LastModified] = {}
    resources = [(seen.extension_id, seen.extension)] if seen.extension_id else []
    resources += [(c.id, c.resource) for c in seen.flux.values()]
    for rid, resource in resources:
        found = last_modified(resource)
        if rid and found is not None:
            writers[id_key(rid)] = found
    out = [
        f.model_copy(update={"last_modified": writers[id_key(f.resource)]})
        if id_key(f.resource) in writers and f.last_modified is None
        else f
        for f in findings
    ]
    ours = {i.strip().lower() for i in fleet_ids if i and i.strip()}
    if not ours:
        return out
    for rid, _resource, policies in _managed(seen, desired):
        who = writers.get(id_key(rid))
        if who is None or who.by is None or who.by.lower() in ours:
            continue
        kind = f" ({who.by_type})" if who.by_type else ""
        when = f" at {who.at}" if who.at else ""
        for policy in policies:
            out.append(
                Finding(
                    code=Code.FOREIGN_WRITER,
                    policy=policy,
                    resource=rid,
                    message=(
                        f"last modified by {who.by}{kind}{when}, not by fleet: a change made "
                        "outside the policy (fleet's own principal is FLEET_PRINCIPAL_ID or "
                        "its token's oid)"
                    ),
                    severity=Severity.WARNING,
                    last_modified=who,
                )
            )
    return out
