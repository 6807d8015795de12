"""One Azure session per process: credential, shared HTTP transport, budget, SDK clients.

Every SDK client fleet builds goes through ``AzureSession`` so that all of them share
- one credential (its token cache lives in the instance),
- one ``requests`` connection pool sized to the concurrency (requests' default of 10
  connections per host would serialise a 32-thread sweep),
- one ARM budget (``BudgetPolicy`` in every pipeline, per HTTP attempt),
- low SDK retry counts: fleet handles throttling itself instead of sleeping inside the SDK.

The same code talks to real Azure and to ``fleet emulator serve``; only settings differ.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

from azure.core.credentials import TokenCredential
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.kubernetesconfiguration import SourceControlConfigurationClient
from azure.mgmt.kubernetesconfiguration.extensions import (
    KubernetesConfigurationExtensionsMgmtClient,
)
from azure.mgmt.kubernetesconfiguration.fluxconfigurations import (
    KubernetesConfigurationFluxConfigurationsMgmtClient,
)
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.resource.subscriptions import SubscriptionClient
from azure.mgmt.resourcegraph import ResourceGraphClient

from fleet.azure import api_versions
from fleet.azure.credentials import identities_of, make_credential
from fleet.azure.keyvault import Vaults
from fleet.azure.ratelimit import BudgetPolicy, Limiter, TokenBucketLimiter, arm_budgets
from fleet.azure.transport import pooled_transport
from fleet.settings import Settings, is_loopback_url

_C = TypeVar("_C")

# azure-core logs every request and response header at INFO; that is noise at fleet's scale
# and headers are not where fleet wants its own logs to come from.
for _name in ("azure", "azure.core.pipeline.policies.http_logging_policy", "azure.identity"):
    logging.getLogger(_name).setLevel(logging.WARNING)


def credential_scope(endpoint: str) -> str:
    """The token scope for an ARM endpoint (public cloud, sovereign cloud or emulator)."""
    if is_loopback_url(endpoint) or endpoint.rstrip("/") == "https://management.azure.com":
        return "https://management.azure.com/.default"
    return endpoint.rstrip("/") + "/.default"


class RequestCounter:
    """Thread-safe counts of HTTP attempts by (operation class, status), for reports."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[tuple[str, int]] = Counter()
        #: Called with (operation class, status) after each attempt (e.g. worker metrics).
        self.listeners: list[Callable[[str, int], None]] = []

    def __call__(self, op: str, status: int) -> None:
        with self._lock:
            self.counts[(op, status)] += 1
        for listener in self.listeners:
            listener(op, status)

    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def throttled(self) -> int:
        with self._lock:
            return sum(n for (_, status), n in self.counts.items() if status == 429)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {f"{op}:{status}": n for (op, status), n in sorted(self.counts.items())}


class AzureSession:
    """Shared Azure plumbing for one process. Thread-safe; close it when done."""

    def __init__(
        self,
        settings: Settings,
        *,
        credential: TokenCredential | None = None,
        limiter: Limiter | None = None,
    ) -> None:
        self.settings = settings
        self.credential = credential or make_credential(settings)
        self.limiter: Limiter = limiter or TokenBucketLimiter(
            arm_budgets(
                read_rate=settings.read_rate,
                read_burst=settings.read_burst,
                write_rate=settings.write_rate,
                write_burst=settings.write_burst,
                delete_rate=settings.delete_rate,
                delete_burst=settings.delete_burst,
                fraction=settings.budget_fraction,
            )
        )
        self.requests = RequestCounter()
        self._http, self._transport = pooled_transport(
            settings, endpoint=settings.arm_endpoint, ca_bundle=settings.arm_ca_bundle, hosts=4
        )
        self._lock = threading.Lock()
        #: Clients per (client class, lower-cased subscription id).
        self._clients: dict[tuple[type, str], Any] = {}
        self._sub: SubscriptionClient | None = None
        self._graph: ResourceGraphClient | None = None
        self._vaults: Vaults | None = None
        self._fleet_ids: frozenset[str] | None = None

    def fleet_ids(self) -> frozenset[str]:
        """Fleet's own principal as ``systemData`` records it (``FOREIGN_WRITER``): the
        ``FLEET_PRINCIPAL_ID`` setting, else the claims of fleet's own ARM token (read once)."""
        if self._fleet_ids is None:
            configured = self.settings.principal_id
            self._fleet_ids = (
                frozenset(configured)
                if configured
                else identities_of(self.credential, credential_scope(self.settings.arm_endpoint))
            )
        return self._fleet_ids

    def _client_kwargs(self) -> dict[str, Any]:
        return {
            "base_url": self.settings.arm_endpoint,
            "transport": self._transport,
            # A fresh policy object per client: a pipeline wires each policy's ``next`` to its
            # own successor, so one instance shared by two pipelines would send one client's
            # requests down the other's chain (skipping its authentication policy).
            "per_retry_policies": [BudgetPolicy(self.limiter, on_response=self.requests)],
            "retry_total": self.settings.sdk_retries,
            # One in-SDK retry of a 429/5xx (it honours Retry-After); fleet's own attempts
            # (``read_attempts``) take over after that, so a failing read costs a handful of
            # requests instead of attempts × SDK retries.
            "retry_status": min(1, self.settings.sdk_retries),
            "retry_backoff_factor": 0.5,
            "polling_interval": self.settings.lro_poll_interval,
            "credential_scopes": [credential_scope(self.settings.arm_endpoint)],
            "logging_enable": False,
        }

    def _client(self, cls: type[_C], subscription_id: str, **kwargs: Any) -> _C:
        """One client of a class per subscription, built once (thread-safe)."""
        key = (cls, subscription_id.lower())
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = cls(  # type: ignore[call-arg]
                    self.credential, subscription_id, **self._client_kwargs(), **kwargs
                )
                self._clients[key] = client
            return client

    def flux_configurations(
        self, subscription_id: str
    ) -> KubernetesConfigurationFluxConfigurationsMgmtClient:
        """The Flux v2 configurations client of a subscription (``api_versions``)."""
        return self._client(
            KubernetesConfigurationFluxConfigurationsMgmtClient,
            subscription_id,
            api_version=api_versions.FLUX_CONFIGURATIONS,
        )

    def extensions(self, subscription_id: str) -> KubernetesConfigurationExtensionsMgmtClient:
        """The cluster extensions client of a subscription (``api_versions``); its pipeline also
        carries the version catalogue reads."""
        return self._client(
            KubernetesConfigurationExtensionsMgmtClient,
            subscription_id,
            api_version=api_versions.EXTENSIONS,
        )

    def source_control(self, subscription_id: str) -> SourceControlConfigurationClient:
        """The Flux v1 (sourceControlConfigurations) client of a subscription."""
        return self._client(
            SourceControlConfigurationClient,
            subscription_id,
            api_version=api_versions.SOURCE_CONTROL_CONFIGURATIONS,
        )

    def container_service(self, subscription_id: str) -> ContainerServiceClient:
        """The AKS client of a subscription (``api_versions``; maintenance configurations)."""
        return self._client(
            ContainerServiceClient,
            subscription_id,
            api_version=api_versions.MAINTENANCE_CONFIGURATIONS,
        )

    def resources(self, subscription_id: str) -> ResourceManagementClient:
        """The generic resources client of a subscription (cached)."""
        return self._client(ResourceManagementClient, subscription_id)

    def subscriptions(self) -> SubscriptionClient:
        with self._lock:
            if self._sub is None:
                self._sub = SubscriptionClient(self.credential, **self._client_kwargs())
            return self._sub

    def graph(self) -> ResourceGraphClient:
        with self._lock:
            if self._graph is None:
                self._graph = ResourceGraphClient(self.credential, **self._client_kwargs())
            return self._graph

    def vaults(self) -> Vaults:
        """Key Vault secrets with this session's credential (``fromKeyVault``; cached)."""
        with self._lock:
            if self._vaults is None:
                self._vaults = Vaults(self.settings, self.credential)
            return self._vaults

    def close(self) -> None:
        self._http.close()
        if self._vaults is not None:
            self._vaults.close()

    def __enter__(self) -> AzureSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
