"""Which source commit each flux configuration of a cluster runs (commit convergence).

The fluxconfig agent reports the revision Flux last fetched in ``sourceSyncedCommitId``
(``main@sha1:<40 hex>`` for a branch, ``v1.2.3@sha1:...`` for a tag, a digest for OCI) and when
in ``sourceUpdatedAt``. A sweep records them per cluster so the report can say, per
configuration, how many clusters run each commit and which ones lag behind the majority. What
ARM says is copied as it is: a commit is a fact, not a judgement, so nothing here is a finding.
Pure; observed JSON is untrusted, so anything that is not a string is left out.
"""

from __future__ import annotations

from typing import Any

from fleet.evaluate.verdicts import FluxCommit
from fleet.observe.view import ObservedView, properties

#: ARM ids and commit strings are short; a longer value is not a commit and is cut, so a
#: hostile body cannot blow up every report row.
_LIMIT = 256


def _text(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:_LIMIT]


def commits_of(seen: ObservedView) -> list[FluxCommit]:
    """One entry per observed flux configuration, sorted by name."""
    out = []
    for config in seen.flux.values():
        props = properties(config.resource)
        out.append(
            FluxCommit(
                configuration=config.name[:_LIMIT],
                commit=_text(props.get("sourceSyncedCommitId")),
                updated_at=_text(props.get("sourceUpdatedAt")),
            )
        )
    return sorted(out, key=lambda c: c.configuration.lower())
