"""Actions: the ARM writes a remediation would make (the output of ``fleet.plan.planning``).

An ``Action`` is a complete instruction: the HTTP method, the resource id, and for PUTs the full
desired body. Protected settings are carried as references (``SecretRef.describe()`` strings)
and resolved to values only by ``fleet.azure.apply`` at the moment of the write, so a plan can
be printed, saved to ``plan.json`` and stored without ever holding a secret.

Why an action is planned is a list of ``Reason`` (the finding it fixes), and why a finding is
left alone is a ``Skipped`` with a ``SkipCategory`` the planner sets where it decides: what a
remediation job does with a skipped cluster depends on the category, never on the prose of the
reason. Plans saved before either was typed still load (see the validators).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from fleet.core.vocabulary import Code
from fleet.plan.windows import WindowState

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


#: How the text form of a nudge reason ends, and the text of a re-PUT after a recreation.
_NUDGE = " (re-PUT nudges auto-upgrade)"
_RECREATED = "extension recreated"


class Reason(BaseModel):
    """Why an action is planned: the finding it fixes.

    ``str()`` is the text plans have always shown (``EXTENSION_DRIFT /properties/releaseTrain``,
    ``... (re-PUT nudges auto-upgrade)`` for a nudge, ``extension recreated``), and that text
    is accepted when a plan saved before reasons were structured is read.
    """

    model_config = _CONFIG

    #: The finding's code; None for a flux configuration written again only because its
    #: extension is deleted and recreated (which deletes the configurations with it).
    code: Code | None = None
    #: JSON pointer of the field the finding is about (None: the whole resource).
    path: str | None = None
    #: A re-PUT of the unchanged body that makes auto-upgrade move a stuck version.
    nudge: bool = False

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        if not isinstance(data, str):
            return data
        if data == _RECREATED:
            return {}
        text = data.removesuffix(_NUDGE)
        code, _, path = text.partition(" ")
        return {"code": code, "path": path or None, "nudge": text != data}

    def __str__(self) -> str:
        if self.code is None:
            return _RECREATED
        text = f"{self.code.value} {self.path}" if self.path else self.code.value
        return text + _NUDGE if self.nudge else text


#: The reason of a flux configuration PUT that follows its extension's recreation.
EXTENSION_RECREATED = Reason()


class Action(BaseModel):
    """One ARM write on one resource."""

    model_config = _CONFIG

    kind: ActionKind
    cluster_id: str
    resource_id: str
    method: str  # "PUT" | "DELETE"
    #: The full desired ARM body for PUTs, without secrets: ``{"properties": {...}}``.
    body: dict[str, Any] | None = None
    #: Protected settings to resolve at write time: setting name -> ``SecretRef.describe()``.
    protected: dict[str, str] = Field(default_factory=dict)
    #: Why: the findings (codes and paths) this action fixes.
    reasons: list[Reason] = Field(default_factory=list)
    #: Policies whose ``enforce`` mode allows this write.
    policies: list[str] = Field(default_factory=list)
    #: Create (``+``), update (``~``) or delete (``-``), for the plan view.
    change: str = "~"
    #: Field-level changes for the plan view: [{path, desired, actual}].
    changes: list[dict[str, Any]] = Field(default_factory=list)


class SkipCategory(StrEnum):
    """Why, in a word, a finding is skipped (a remediation job stores these strings)."""

    UNREACHABLE = "unreachable"  # CLUSTER_UNREACHABLE: changes cannot reach the cluster
    STOPPED = "stopped"  # CLUSTER_STOPPED
    READ_ERROR = "read-error"  # READ_ERROR: nothing was seen
    CONFLICT = "conflict"  # policies of equal priority disagree
    FLUX_V1 = "flux-v1"  # Flux v1 blocks the extension and migration is not allowed
    AUDIT = "audit"  # only audit-mode policies own it
    IMMUTABLE = "immutable"  # a create-only field differs and recreation is not allowed
    PINNED = "pinned"  # a pinned version the policy may not move
    IN_PROGRESS = "in-progress"  # an operation is running on the resource
    NOT_WRITABLE = "not-writable"  # nothing a write could fix
    UNMANAGED = "unmanaged"  # no policy declares it and deleteUnmanaged is off
    POLICY_ERROR = "policy-error"  # the policy itself is wrong (a pin below the ARM64 floor)
    #: CLUSTER_INELIGIBLE: the cluster cannot take the extension (expired Arc certificate,
    #: Kubernetes too old, provider not registered). A person must act first, so it is
    #: skipped, not retried, and never spends the failure budget.
    INELIGIBLE = "ineligible"
    #: Set by a remediation job, never by the planner: ``--policy`` would need a write owned
    #: by another policy first (a Flux v1 migration, the extension's install).
    DEPENDS = "depends"

    @property
    def blocks_writes(self) -> bool:
        """The cluster cannot take writes now (offline, stopped, unread): retry it later."""
        return self in _BLOCKING


_BLOCKING = frozenset({SkipCategory.UNREACHABLE, SkipCategory.STOPPED, SkipCategory.READ_ERROR})
#: The category of a skip whose code alone says it (plans saved before categories existed).
_CATEGORY_OF_CODE = {
    Code.CLUSTER_UNREACHABLE.value: SkipCategory.UNREACHABLE,
    Code.CLUSTER_STOPPED.value: SkipCategory.STOPPED,
    Code.READ_ERROR.value: SkipCategory.READ_ERROR,
}


class Skipped(BaseModel):
    """A finding that the plan deliberately does not fix, and why."""

    model_config = _CONFIG

    cluster_id: str
    resource_id: str
    code: str
    reason: str
    #: Set by the planner where it decides to skip. A plan saved before categories existed
    #: reads as ``not-writable``, except the cluster blockers, whose code says theirs.
    category: SkipCategory = SkipCategory.NOT_WRITABLE

    @model_validator(mode="before")
    @classmethod
    def _category_of_old_plans(cls, data: Any) -> Any:
        if isinstance(data, dict) and "category" not in data:
            known = _CATEGORY_OF_CODE.get(str(data.get("code")))
            if known is not None:
                return {**data, "category": known}
        return data


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
    #: When its writes may happen (``fleet.plan.windows``): set when its policies have time
    #: rules, by whoever made the plan with a clock (``fleet plan``, ``--dry-run``).
    window: WindowState | None = None

    @property
    def changes(self) -> bool:
        return bool(self.actions)
