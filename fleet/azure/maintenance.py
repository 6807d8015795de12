"""An AKS cluster's planned maintenance configurations, read from ARM for its window gate.

Read only where it matters: for AKS clusters whose writes are owned by a policy with
``respectAksMaintenance`` (``fleet.plan.windows.needs_maintenance``), right before fleet decides
to write them, so a sweep never pays for them. Through ``azure-mgmt-containerservice``'s own
``maintenance_configurations`` operation in the session's pipeline (credential, fleet's ARM
budget, retries); the configurations are kept as ARM's JSON (``as_dict`` gives the wire names)
for ``fleet.plan.maintenance`` to read.
"""

from __future__ import annotations

from typing import Any

from fleet.azure import retrying
from fleet.azure.session import AzureSession
from fleet.core.clusters import ClusterFacts
from fleet.core.errors import ArmCallFailed


def read_maintenance(
    session: AzureSession, facts: ClusterFacts
) -> tuple[list[dict[str, Any]], str | None]:
    """(the cluster's maintenance configurations, None), or ([], why they cannot be read)."""
    client = session.container_service(facts.subscription_id)
    try:
        found = retrying.call(
            lambda: [
                c.as_dict()
                for c in client.maintenance_configurations.list_by_managed_cluster(
                    facts.resource_group, facts.name
                )
            ],
            attempts=session.settings.read_attempts,
            what=f"list maintenanceConfigurations of {facts.name}",
        )
    except ArmCallFailed as exc:
        return [], f"cannot read the AKS maintenance configurations: {exc}"
    return found, None
