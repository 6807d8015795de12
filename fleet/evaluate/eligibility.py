"""Prerequisites: whether a cluster can take the microsoft.flux extension at all.

A cluster that cannot is ``CLUSTER_INELIGIBLE`` (docs/contracts.md, Compliance vocabulary),
with the reason; remediation skips it (``SkipCategory.INELIGIBLE``) instead of spending the
failure budget on writes that cannot succeed, and keeps it off the retry list, because each
reason needs a person, not another attempt:

* an Arc cluster whose agents' certificate has expired (``connectivityStatus: Expired``, or a
  ``managedIdentityCertificateExpirationTime`` in the past): it must be connected again
  (``az connectedk8s connect``), which issues a new certificate;
* a Kubernetes version below ``MINIMUM_KUBERNETES``, the oldest Kubernetes that Flux's
  multi-tenancy lockdown supports. microsoft.flux enforces multi-tenancy by default (since its
  1.0.0) through Flux's service-account impersonation, introduced in Flux v0.26.0, whose
  release notes make Kubernetes v1.20.6 the minimum supported version
  (https://github.com/fluxcd/flux2/releases/tag/v0.26.0, "Breaking changes");
* a subscription where the ``Microsoft.KubernetesConfiguration`` resource provider is not
  registered (ARM refuses every extension and flux configuration request there with 409
  ``MissingSubscriptionRegistration``; the sweep reads the state once per subscription).

Pure: the facts and "now" come in, reasons go out.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from fleet.core.clusters import ClusterFacts
from fleet.core.ids import KC_PROVIDER

#: Flux v0.26.0's minimum Kubernetes (see the module docstring).
MINIMUM_KUBERNETES = (1, 20, 6)
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")


def kubernetes_version(text: str | None) -> tuple[int, int, int] | None:
    """``1.29.2``, ``v1.19.16+k3s1``, ``1.30`` as numbers; None when it is not a version."""
    match = _VERSION.match((text or "").strip())
    if match is None:
        return None
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def ineligible(facts: ClusterFacts, now: datetime) -> list[str]:
    """Why the cluster cannot take the extension (empty when it can)."""
    reasons: list[str] = []
    if facts.cluster_type == "connectedClusters":
        status = (facts.connectivity_status or "").lower()
        expires = facts.certificate_expires
        if status == "expired":
            seen = facts.last_connectivity_time
            reasons.append(
                "the Arc agents' certificate has expired (connectivityStatus Expired"
                + (f", last connected {seen.isoformat()}" if seen else "")
                + "): connect the cluster again (az connectedk8s connect); a retry cannot help"
            )
        elif expires is not None and _aware(expires) < _aware(now):
            reasons.append(
                f"the Arc agents' certificate expired at {expires.isoformat()} "
                "(managedIdentityCertificateExpirationTime): connect the cluster again "
                "(az connectedk8s connect); a retry cannot help"
            )
    version = kubernetes_version(facts.kubernetes_version)
    if version is not None and version < MINIMUM_KUBERNETES:
        minimum = ".".join(map(str, MINIMUM_KUBERNETES))
        reasons.append(
            f"Kubernetes {facts.kubernetes_version} is older than {minimum}, the minimum of "
            "Flux's multi-tenancy (enforced by microsoft.flux by default): upgrade the cluster"
        )
    registration = facts.provider_registration
    if registration is not None and registration.lower() != "registered":
        reasons.append(
            f"{KC_PROVIDER} is {registration} in subscription {facts.subscription_id}: no "
            "extension or flux configuration can exist there until it is registered "
            f"(az provider register --namespace {KC_PROVIDER})"
        )
    return reasons
