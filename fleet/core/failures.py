"""What fleet keeps of a failed ARM call: status, ARM's code and bounded message, retryability.

A plain record, so that the pure parts of a job (its outcomes and rules) can hold ARM's answer
without importing the SDK. ``fleet.azure.errors.describe`` makes one from an SDK exception.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ArmFailure:
    """What fleet keeps of a failed ARM call."""

    status: int | None
    code: str
    message: str
    retryable: bool
    correlation_id: str | None = None
    retry_after: float | None = None

    def __str__(self) -> str:
        status = f"HTTP {self.status} " if self.status else ""
        return f"{status}{self.code}: {self.message}"
