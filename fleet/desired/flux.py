"""Merging the policies' flux configurations, by name as whole objects.

``flux_body`` turns one policy's configuration into the ARM body it asks for (secrets as
references). Configurations of the same name merge with the extension's rule: the highest
priority wins, lower ones that differ are overrides, equal-priority ones that differ conflict
on the paths they differ on. Two bodies are equal when their essences are, so spelling out an
ARM default is not a disagreement. Pure.
"""

from __future__ import annotations

from typing import Any

from fleet.core.diffing import diff, resolve
from fleet.desired.fingerprints import setting_path
from fleet.desired.state import DesiredFluxConfig, relative_id
from fleet.observe import essence
from fleet.policy.models import FluxConfigurationSpec, Policy
from fleet.policy.secret_refs import SecretRef


def flux_body(spec: FluxConfigurationSpec) -> tuple[dict[str, Any], dict[str, str]]:
    """(desired ARM body without secrets, protected setting -> reference) of one config."""
    props = spec.model_dump(by_alias=True, exclude_none=True)
    props.pop("name", None)
    protected: dict[str, str] = {}
    props.pop("configurationProtectedSettings", None)
    for key, ref in (spec.configuration_protected_settings or {}).items():
        protected[key] = ref.describe()
    for setting, secret in _secret_fields(spec):
        # Secret fields never go into the body: they are protected settings resolved at write
        # time (fleet.apply.secrets) and compared by fingerprint, whether given or not.
        *parents, leaf = setting.strip("/").split("/")
        holder: Any = props
        for part in parents:
            holder = holder.get(part) if isinstance(holder, dict) else None
        if isinstance(holder, dict):
            holder.pop(leaf, None)
            if not holder and parents[-1] == "tlsConfig":
                props["ociRepository"].pop("tlsConfig", None)
        if secret is not None:
            protected[setting] = secret.describe()
    for source in ("bucket", "ociRepository"):
        # Secure by default: ARM fills bucket.insecure = true when it is left out, so fleet
        # always says false unless the policy says true (docs/security.md).
        if source in props:
            props[source].setdefault("insecure", essence.SECURE_INSECURE)
    if "sourceKind" not in props:
        # The policy format lets the source imply the kind (models.FluxConfigurationSpec).
        if "bucket" in props:
            props["sourceKind"] = "Bucket"
        elif "azureBlob" in props:
            props["sourceKind"] = "AzureBlob"
        elif "ociRepository" in props:
            props["sourceKind"] = "OCIRepository"
        else:
            props["sourceKind"] = "GitRepository"
    return {"properties": props}, protected


def _secret_fields(spec: FluxConfigurationSpec) -> list[tuple[str, SecretRef | None]]:
    """(protected setting, reference or None) of every secret field of the spec's source."""
    out: list[tuple[str, SecretRef | None]] = []
    blob = spec.azure_blob
    if blob is not None:
        out += [
            ("/azureBlob/accountKey", blob.account_key),
            ("/azureBlob/sasToken", blob.sas_token),
        ]
        sp = blob.service_principal
        if sp is not None:
            out += [
                ("/azureBlob/servicePrincipal/clientSecret", sp.client_secret),
                ("/azureBlob/servicePrincipal/clientCertificate", sp.client_certificate),
                (
                    "/azureBlob/servicePrincipal/clientCertificatePassword",
                    sp.client_certificate_password,
                ),
            ]
    oci = spec.oci_repository
    if oci is not None and oci.tls_config is not None:
        tls = oci.tls_config
        out += [
            ("/ociRepository/tlsConfig/clientCertificate", tls.client_certificate),
            ("/ociRepository/tlsConfig/privateKey", tls.private_key),
            ("/ociRepository/tlsConfig/caCertificate", tls.ca_certificate),
        ]
    return out


def flux_template(
    policies: list[Policy],
) -> tuple[dict[str, DesiredFluxConfig], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    by_name: dict[str, list[tuple[int, str, dict[str, Any], dict[str, Any], dict[str, str]]]] = {}
    for policy in policies:
        for spec in policy.spec.flux_configurations:
            body, protected = flux_body(spec)
            ess = essence.flux_configuration(body)
            by_name.setdefault(spec.name, []).append(
                (policy.spec.priority, policy.name, body, ess, protected)
            )
    configs: dict[str, DesiredFluxConfig] = {}
    conflicts: list[tuple[Any, ...]] = []
    overrides: list[tuple[Any, ...]] = []
    modes = {p.name: p.spec.mode for p in policies}
    for name in sorted(by_name):
        suffix = relative_id(essence.FLUX_CONFIGURATIONS, name)
        cands = sorted(by_name[name], key=lambda c: (-c[0], c[1]))
        top = [c for c in cands if c[0] == cands[0][0]]
        winner = top[0]
        conflict_paths: set[str] = set()
        for other in top[1:]:
            conflict_paths.update(_body_diff(winner, other))
        top_names = tuple(sorted({c[1] for c in top}))
        for path in sorted(conflict_paths):
            values = {c[1]: _value_at(c, path) for c in top}
            conflicts.append((suffix, path, top_names, values))
        if conflict_paths:
            owners = top_names
        else:
            owners = tuple(c[1] for c in cands if not _body_diff(winner, c))
            for loser in cands:
                for path in _body_diff(winner, loser):
                    overrides.append(
                        (
                            suffix,
                            path,
                            winner[1],
                            loser[1],
                            _value_at(winner, path),
                            _value_at(loser, path),
                        )
                    )
        owners = tuple(dict.fromkeys(owners))
        configs[name] = DesiredFluxConfig(
            name=name,
            resource=suffix,
            body=winner[2],
            essence=winner[3],
            protected=winner[4],
            policies=owners,
            mode="enforce" if any(modes[p] == "enforce" for p in owners) else "audit",
            conflict_paths=tuple(sorted(conflict_paths)),
        )
    return configs, conflicts, overrides


def _body_diff(a: tuple[Any, ...], b: tuple[Any, ...]) -> list[str]:
    paths = [d.path for d in diff(a[3], b[3])]
    for setting in sorted(set(a[4]) | set(b[4])):
        if a[4].get(setting) != b[4].get(setting):
            paths.append(setting_path(setting))
    return paths


def _value_at(cand: tuple[Any, ...], path: str) -> Any:
    for setting, ref in cand[4].items():
        if setting_path(setting) == path:
            return ref
    return resolve(cand[3], path)
