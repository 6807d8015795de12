"""Actions: the ARM writes a remediation would make (the output of ``fleet.plan.planning``).

An ``Action`` is a complete instruction: the HTTP method, the resource id, and for PUTs the full
desired body. Protected settings are carried as references (``SecretRef.describe()`` strings)
and resolved to values only by ``fleet.azure.apply`` at the moment of the write, so a plan can
be printed, saved to ``plan.json`` and stored without ever holding a secret.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

_CONFIG = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ActionKind(StrEnum):
    DELETE_FLUX_V1 = "delete_flux_v1"
    DELETE_EXTENSION = "delete_extension"
    PUT_EXTENSION = "put_extension"
    DELETE_FLUX_CONFIG = "delete_flux_config"
    PUT_FLUX_CONFIG = "put_flux_config"


#: The order in which actions run on one cluster (docs/contracts.md: v1 first, extension before
#: configs).
ACTION_ORDER: dict[ActionKind, int] = {
    ActionKind.DELETE_FLUX_V1: 0,
    ActionKind.DELETE_FLUX_CONFIG: 1,  # deletes of recreated/unmanaged configs before the extension
    ActionKind.DELETE_EXTENSION: 2,
    ActionKind.PUT_EXTENSION: 3,
    ActionKind.PUT_FLUX_CONFIG: 4,
}


class Action(BaseModel):
    """One ARM write on one resource."""

    model_config = _CONFIG

    kind: ActionKind
    cluster_id: str
    resource_id: str
    method: str  # "PUT" | "DELETE"
    #: The full desired ARM body for PUTs, without secrets: ``{"properties": {...}}``.
    body: dict[str, Any] | None = None
    #: Protected settings to resolve at write time: setting name -> ``env:VAR`` / ``file:PATH``.
    protected: dict[str, str] = Field(default_factory=dict)
    #: Why: the finding codes (and paths) this action fixes.
    reasons: list[str] = Field(default_factory=list)
    #: Policies whose ``enforce`` mode allows this write.
    policies: list[str] = Field(default_factory=list)
    #: Create (``+``), update (``~``) or delete (``-``), for the plan view.
    change: str = "~"
    #: Field-level changes for the plan view: [{path, desired, actual}].
    changes: list[dict[str, Any]] = Field(default_factory=list)


class Skipped(BaseModel):
    """A finding that the plan deliberately does not fix, and why."""

    model_config = _CONFIG

    cluster_id: str
    resource_id: str
    code: str
    reason: str


class ClusterPlan(BaseModel):
    """Everything a remediation would do (and refuse to do) on one cluster."""

    model_config = _CONFIG

    cluster_id: str
    cluster_name: str
    actions: list[Action] = Field(default_factory=list)
    skipped: list[Skipped] = Field(default_factory=list)
    #: A digest of the observed state the plan was made from; a saved plan is refused when
    #: the cluster's current digest differs (the world changed since the plan was made).
    observed_digest: str = ""

    @property
    def changes(self) -> bool:
        return bool(self.actions)
