"""Verdicts: what evaluation says about one cluster (docs/contracts.md, Compliance vocabulary, a
contract).

A ``Verdict`` is pure data: the cluster's identity, its state, the state of every policy that
targets it, and the findings behind them. Its JSON form (``to_report()``) is one entry of the
``clusters`` list of the sweep report; renderers, the history database and Celery all pass
verdicts around in that form and read them back with ``Verdict.from_report``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from fleet.core.vocabulary import Code, Severity, State
from fleet.desired.overrides import Override

_CONFIG = ConfigDict(
    frozen=True,
    alias_generator=to_camel,
    populate_by_name=True,
    extra="forbid",
    ser_json_timedelta="iso8601",
)


class LastModified(BaseModel):
    """Who last modified a resource and when, as ARM's ``systemData`` says (untrusted text)."""

    model_config = _CONFIG

    #: ``systemData.lastModifiedBy``: a user's UPN, an application's client id, a managed
    #: identity's principal id.
    by: str | None = None
    #: ``systemData.lastModifiedByType``: User, Application, ManagedIdentity, Key.
    by_type: str | None = None
    #: ``systemData.lastModifiedAt`` as ARM wrote it (ISO 8601).
    at: str | None = None


class Finding(BaseModel):
    """One thing wrong (or worth knowing) about one resource of one cluster."""

    model_config = _CONFIG

    code: Code
    #: The policy this finding counts against; None for cluster-level findings that no one
    #: policy owns (e.g. an unmanaged configuration on a cluster whose policies do not govern it).
    policy: str | None = None
    #: ARM id of the resource concerned (the cluster id for cluster-level findings).
    resource: str
    #: JSON pointer into the resource for drift findings (``/properties/...``).
    path: str | None = None
    desired: Any = None
    actual: Any = None
    message: str
    severity: Severity = Severity.MEDIUM
    #: When this finding (by its key: code, policy, resource, path) was first seen in a
    #: sweep that is still unbroken: filled in by the history when the sweep is recorded
    #: (``fleet.record.finding_ages``); None from evaluation itself.
    first_seen: datetime | None = None
    #: Who last modified the resource, where ARM says (``systemData``).
    last_modified: LastModified | None = None


class FluxCommit(BaseModel):
    """The source commit one flux configuration of a cluster runs, as ARM reports it."""

    model_config = _CONFIG

    #: The flux configuration's name (the same name on every cluster a policy governs).
    configuration: str
    #: ``properties.sourceSyncedCommitId`` (e.g. ``main@sha1:0ba6...``); None before the first
    #: sync.
    commit: str | None = None
    #: ``properties.sourceUpdatedAt``: when the agent last fetched the source.
    updated_at: str | None = None


class PolicyResult(BaseModel):
    """The state of one policy on one cluster."""

    model_config = _CONFIG

    name: str
    state: State
    mode: str = "audit"
    #: For ``exempt``: the exemption's reason and end date.
    reason: str | None = None
    expires_on: date | None = None


class Verdict(BaseModel):
    """The judgement of one cluster in one sweep."""

    model_config = _CONFIG

    id: str
    name: str
    type: str
    subscription_id: str
    resource_group: str
    location: str = ""
    state: State
    policies: list[PolicyResult] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    #: ``currentVersion`` of the microsoft.flux extension (None when not installed).
    extension_version: str | None = None
    #: Whether that version is inside the policy's window (None when not judged).
    extension_version_in_window: bool | None = None
    overrides: list[Override] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)
    arm64: bool = False
    #: ``arm64``, ``amd64`` or ``unknown`` (ARM does not say, e.g. most Arc clusters).
    architecture: str = "unknown"
    #: Connectivity (Arc) or power state (AKS) as read, for the report.
    status: str | None = None
    #: The source commit of each flux configuration on the cluster, by name (commit
    #: convergence, ``summary.fluxCommits``).
    flux_commits: list[FluxCommit] = Field(default_factory=list)

    def to_report(self) -> dict[str, Any]:
        """This cluster's entry in the report JSON (camelCase, no Nones in findings)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=False)

    @classmethod
    def from_report(cls, data: dict[str, Any]) -> Verdict:
        return cls.model_validate(data)

    def codes(self) -> list[str]:
        """Sorted distinct finding codes (handy in tests and summaries)."""
        return sorted({f.code.value for f in self.findings})
