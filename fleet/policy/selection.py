"""Selection: which policies apply to which cluster (pure, deterministic).

``Applicable`` pairs a policy with the cluster-specific exemption in force, if any.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleet.policy.models import Exemption, Policy


@dataclass(frozen=True, slots=True)
class Applicable:
    """A policy that targets a cluster, and the exemption in force for it (None if judged)."""

    policy: Policy
    exemption: Exemption | None = None
