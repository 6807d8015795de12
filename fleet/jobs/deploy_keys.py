"""``fleet deploy-keys``: the SSH public keys ARM generated for the fleet's flux configurations.

A flux configuration whose Git source is ``ssh://`` and that was given no private key gets a
key pair from ARM, which keeps the private half and shows the public one in
``repositoryPublicKey``. Each public key must be registered as a deploy key of its repository
before Flux can clone it; at fleet scale that is one key per cluster and configuration, so
this lists them all (cluster, configuration, repository URL, public key) for a script to
register per repository. Clusters are read as a sweep reads them (``observed_in_scope``).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import threading
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from fleet.jobs.runs import Environment
from fleet.jobs.snapshot import observed_in_scope
from fleet.policy.loading import PolicySet


@dataclass(frozen=True, slots=True)
class DeployKey:
    """One public key to register with one repository."""

    cluster: str
    cluster_name: str
    configuration: str
    namespace: str
    repository_url: str
    public_key: str


def public_key_line(value: str) -> str:
    """The OpenSSH line of a ``repositoryPublicKey``: ARM sends it base64-encoded; a value
    that is already a key line is kept as it is."""
    text = value.strip()
    if text.startswith(("ssh-", "ecdsa-")):
        return text
    try:
        decoded = base64.b64decode(text, validate=True).decode().strip()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return text
    return decoded if decoded.startswith(("ssh-", "ecdsa-")) else text


def keys_of(cluster_id: str, cluster_name: str, configs: Any) -> Iterator[DeployKey]:
    """The deploy keys of one cluster's flux configurations (raw ARM JSON)."""
    for config in configs:
        props = config.get("properties") if isinstance(config, Mapping) else None
        if not isinstance(props, Mapping) or not props.get("repositoryPublicKey"):
            continue
        git = props.get("gitRepository")
        url = git.get("url") if isinstance(git, Mapping) else None
        yield DeployKey(
            cluster=cluster_id,
            cluster_name=cluster_name,
            configuration=str(config.get("name", "")),
            namespace=str(props.get("namespace") or ""),
            repository_url=str(url or ""),
            public_key=public_key_line(str(props["repositoryPublicKey"])),
        )


def deploy_keys(
    env: Environment, policy_set: PolicySet | None, *, cancel: threading.Event | None = None
) -> tuple[list[DeployKey], list[str]]:
    """Every deploy key of the clusters in scope, and the ids of clusters that could not be
    read (their keys are unknown, not absent)."""
    _, observed = observed_in_scope(env, policy_set, cancel=cancel)
    found: list[DeployKey] = []
    failed: list[str] = []
    for cluster in observed:
        if cluster.read_error:
            failed.append(cluster.facts.id)
            continue
        found.extend(keys_of(cluster.facts.id, cluster.facts.name, cluster.flux_configurations))
    found.sort(key=lambda k: (k.repository_url.lower(), k.cluster.lower(), k.configuration))
    return found, sorted(failed)


FIELDS = ("cluster", "cluster_name", "configuration", "namespace", "repository_url", "public_key")


def to_csv(keys: list[DeployKey]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for key in keys:
        writer.writerow(asdict(key))
    return out.getvalue()


def to_json(keys: list[DeployKey]) -> list[dict[str, str]]:
    """JSON rows with the names of the other JSON outputs (camelCase)."""
    return [
        {
            "cluster": k.cluster,
            "clusterName": k.cluster_name,
            "configuration": k.configuration,
            "namespace": k.namespace,
            "repositoryUrl": k.repository_url,
            "publicKey": k.public_key,
        }
        for k in keys
    ]
