"""The compliance vocabulary (docs/contracts.md, Compliance vocabulary, a contract): states,
finding codes, severities.

Reports, the history database, PolicyReport and JUnit outputs all speak these words; the
string values are part of the public contract and must never be renamed.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """Compliance state of a policy on a cluster, and of a cluster (the worst of its policies)."""

    COMPLIANT = "compliant"
    NONCOMPLIANT = "noncompliant"
    CONFLICTING = "conflicting"
    EXEMPT = "exempt"
    UNKNOWN = "unknown"
    ERROR = "error"


#: error > conflicting > noncompliant > unknown > exempt > compliant (docs/contracts.md).
STATE_RANK: dict[State, int] = {
    State.COMPLIANT: 0,
    State.EXEMPT: 1,
    State.UNKNOWN: 2,
    State.NONCOMPLIANT: 3,
    State.CONFLICTING: 4,
    State.ERROR: 5,
}


def worst(states: list[State] | tuple[State, ...]) -> State:
    """The worst state of several; compliant when there are none."""
    return max(states, key=STATE_RANK.__getitem__, default=State.COMPLIANT)


class Code(StrEnum):
    """Finding codes (docs/contracts.md, Compliance vocabulary)."""

    EXTENSION_MISSING = "EXTENSION_MISSING"
    EXTENSION_DRIFT = "EXTENSION_DRIFT"
    EXTENSION_FAILED = "EXTENSION_FAILED"
    EXTENSION_VERSION_OUT_OF_WINDOW = "EXTENSION_VERSION_OUT_OF_WINDOW"
    EXTENSION_VERSION_UNSUPPORTED_ARCH = "EXTENSION_VERSION_UNSUPPORTED_ARCH"
    FLUX_CONFIG_MISSING = "FLUX_CONFIG_MISSING"
    FLUX_CONFIG_DRIFT = "FLUX_CONFIG_DRIFT"
    FLUX_CONFIG_FAILED = "FLUX_CONFIG_FAILED"
    FLUX_CONFIG_NONCOMPLIANT = "FLUX_CONFIG_NONCOMPLIANT"
    FLUX_CONFIG_UNMANAGED = "FLUX_CONFIG_UNMANAGED"
    FLUX_V1_PRESENT = "FLUX_V1_PRESENT"
    CLUSTER_UNREACHABLE = "CLUSTER_UNREACHABLE"
    CLUSTER_STOPPED = "CLUSTER_STOPPED"
    POLICY_CONFLICT = "POLICY_CONFLICT"
    READ_ERROR = "READ_ERROR"
    #: A Key Vault reference resolves to a newer version than the one fleet applied.
    SECRET_ROTATION_PENDING = "SECRET_ROTATION_PENDING"
    #: Someone other than fleet's principal last modified a resource fleet manages
    #: (``systemData.lastModifiedBy``); severity warning: who, not what (drift counts).
    FOREIGN_WRITER = "FOREIGN_WRITER"
    #: A note: ARM returned an enum value or property fleet does not know (a newer API shape).
    #: The cluster is judged on what fleet knows; the note never changes a state.
    UNRECOGNISED_SHAPE = "UNRECOGNISED_SHAPE"
    #: A Flux object of a flux configuration (``statuses[]``) is not ready (fleet.evaluate.health).
    FLUX_OBJECT_NOT_READY = "FLUX_OBJECT_NOT_READY"
    #: ``complianceState: Pending`` for longer than the policy's ``health.pendingFor``.
    FLUX_CONFIG_PENDING = "FLUX_CONFIG_PENDING"
    #: ``statusUpdatedAt`` older than the policy's ``health.staleAfter``: Flux's word is old.
    FLUX_STATUS_STALE = "FLUX_STATUS_STALE"
    #: The cluster cannot take the extension (expired Arc certificate, Kubernetes too old,
    #: Microsoft.KubernetesConfiguration not registered): a person must act, not a retry.
    CLUSTER_INELIGIBLE = "CLUSTER_INELIGIBLE"


class Severity(StrEnum):
    """How much a finding weighs. ``info`` and ``warning`` findings never change a state.

    Used by the PolicyReport output (high/medium/low/info) and to sort the report.
    """

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    WARNING = "warning"
    INFO = "info"


#: The state a finding of each code puts its policy in (when its severity counts).
CODE_STATE: dict[Code, State] = {
    Code.READ_ERROR: State.ERROR,
    Code.POLICY_CONFLICT: State.CONFLICTING,
    Code.CLUSTER_UNREACHABLE: State.UNKNOWN,
    Code.CLUSTER_STOPPED: State.UNKNOWN,
    # Always severity info, so it never counts; compliant says so should it ever be counted.
    Code.UNRECOGNISED_SHAPE: State.COMPLIANT,
    # Flux's status is too old to be trusted: neither compliant nor a definite gap.
    Code.FLUX_STATUS_STALE: State.UNKNOWN,
    **{
        c: State.NONCOMPLIANT
        for c in Code
        if c
        not in (
            Code.READ_ERROR,
            Code.POLICY_CONFLICT,
            Code.CLUSTER_UNREACHABLE,
            Code.CLUSTER_STOPPED,
            Code.UNRECOGNISED_SHAPE,
            Code.FLUX_STATUS_STALE,
        )
    },
}

#: Default severity per code (a finding may carry a lower one, e.g. an ungoverned unmanaged config).
CODE_SEVERITY: dict[Code, Severity] = {
    Code.EXTENSION_MISSING: Severity.HIGH,
    Code.EXTENSION_DRIFT: Severity.MEDIUM,
    Code.EXTENSION_FAILED: Severity.HIGH,
    Code.EXTENSION_VERSION_OUT_OF_WINDOW: Severity.MEDIUM,
    Code.EXTENSION_VERSION_UNSUPPORTED_ARCH: Severity.HIGH,
    Code.FLUX_CONFIG_MISSING: Severity.HIGH,
    Code.FLUX_CONFIG_DRIFT: Severity.MEDIUM,
    Code.FLUX_CONFIG_FAILED: Severity.HIGH,
    Code.FLUX_CONFIG_NONCOMPLIANT: Severity.MEDIUM,
    Code.FLUX_CONFIG_UNMANAGED: Severity.LOW,
    Code.FLUX_V1_PRESENT: Severity.HIGH,
    Code.CLUSTER_UNREACHABLE: Severity.LOW,
    Code.CLUSTER_STOPPED: Severity.LOW,
    Code.POLICY_CONFLICT: Severity.HIGH,
    Code.READ_ERROR: Severity.HIGH,
    Code.SECRET_ROTATION_PENDING: Severity.MEDIUM,
    Code.FOREIGN_WRITER: Severity.WARNING,
    Code.UNRECOGNISED_SHAPE: Severity.INFO,
    Code.FLUX_OBJECT_NOT_READY: Severity.MEDIUM,
    Code.FLUX_CONFIG_PENDING: Severity.MEDIUM,
    Code.FLUX_STATUS_STALE: Severity.LOW,
    Code.CLUSTER_INELIGIBLE: Severity.HIGH,
}

#: Severities that never change a state (reported, but informational).
NON_COUNTING = frozenset({Severity.WARNING, Severity.INFO})
