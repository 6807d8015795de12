"""Secret references: resolved at the last moment, fingerprinted, never kept.

Policies name secrets by reference (``fromEnv``, ``fromFile``, ``fromKeyVault``). fleet reads a
value only to (a) send it to ARM in a write and (b) compute its keyed fingerprint (HMAC-SHA256
with the installation's fingerprint key), which is what the history database stores and what
drift detection compares: ARM never returns protected settings, so "what fleet last applied" is
the only thing a rotated secret can be compared with. A Key Vault secret is read through
``fleet.azure.keyvault.Vaults`` (the caller's, from its ``AzureSession``), and its fingerprint
carries the version id read, so that a newer version in the vault is a pending rotation.
"""

from __future__ import annotations

import logging
import os
import secrets as _random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from fleet.apply.spec import ClusterTask
from fleet.azure.keyvault import Vaults
from fleet.core import redact
from fleet.core.errors import SecretsUnavailable, SecretUnavailable
from fleet.desired.fingerprints import Fingerprints, fingerprint
from fleet.plan.actions import Action
from fleet.policy.loading import PolicySet
from fleet.policy.models import Policy
from fleet.policy.secret_refs import SecretRef
from fleet.settings import Settings

log = logging.getLogger(__name__)


def fingerprint_key(settings: Settings) -> bytes:
    """The installation's fingerprint key: from settings, else a key file made on first use."""
    if settings.fingerprint_key is not None:
        return settings.fingerprint_key.get_secret_value().encode()
    path = settings.state_dir / "fingerprint.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(_random.token_hex(32))
    return path.read_text().strip().encode()


class Secret(NamedTuple):
    """A resolved value, and the Key Vault version id it was read at (None for env and file)."""

    value: str
    version: str | None = None


@dataclass(frozen=True, slots=True)
class Protected:
    """The protected values of one action, read now (setting -> value), and the Key Vault
    version of each that came from a vault: what a write sends and what it fingerprints."""

    values: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    def fingerprints(self, key: bytes) -> dict[str, str]:
        """Keyed fingerprints of the values (with their versions), never the values."""
        return {s: fingerprint(key, v, self.versions.get(s)) for s, v in self.values.items()}


def read(ref: SecretRef, base_dir: Path | None, vaults: Vaults | None = None) -> Secret:
    """The value a reference points to (registered for redaction), with its Key Vault version.

    Raises SecretUnavailable; a ``fromKeyVault`` reference needs ``vaults``.
    """
    secret = _read(ref, base_dir, vaults)
    redact.register(secret.value)
    return secret


def resolve(ref: SecretRef, base_dir: Path | None, vaults: Vaults | None = None) -> str:
    """The value a reference points to (registered for redaction). Raises SecretUnavailable."""
    return read(ref, base_dir, vaults).value


def _read(ref: SecretRef, base_dir: Path | None, vaults: Vaults | None) -> Secret:
    if ref.from_env is not None:
        value = os.environ.get(ref.from_env)
        if value is None:
            raise SecretUnavailable(f"environment variable {ref.from_env} is not set")
        return Secret(value)
    kv = ref.from_key_vault
    if kv is not None:
        if vaults is None:
            raise SecretUnavailable(f"{ref.describe()}: Key Vault is not reachable from here")
        value, version = vaults.read(kv.vault, kv.name, kv.version)
        return Secret(value, version)
    assert ref.from_file is not None
    path = Path(ref.from_file)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    try:
        return Secret(path.read_text(encoding="utf-8").rstrip("\n"))
    except OSError as exc:
        raise SecretUnavailable(f"cannot read secret file {path}: {exc.strerror}") from None


def references(policy: Policy) -> Iterator[SecretRef]:
    """Every secret reference a policy makes."""
    spec = policy.spec
    if spec.extension and spec.extension.configuration_protected_settings:
        yield from spec.extension.configuration_protected_settings.values()
    for fc in spec.flux_configurations:
        yield from (fc.configuration_protected_settings or {}).values()
        blob = fc.azure_blob
        if blob is not None:
            for ref in (blob.account_key, blob.sas_token):
                if ref is not None:
                    yield ref
            sp = blob.service_principal
            if sp is not None:
                for ref in (
                    sp.client_secret,
                    sp.client_certificate,
                    sp.client_certificate_password,
                ):
                    if ref is not None:
                        yield ref


def desired_fingerprints(
    policy_set: PolicySet, key: bytes, vaults: Vaults | None = None
) -> dict[str, str | None]:
    """Fingerprint of the current value of every reference in the policies (None = unreadable)."""
    out: dict[str, str | None] = {}
    for policy in policy_set.policies:
        base = policy_set.base_dir(policy.name)
        for ref in references(policy):
            desc = ref.describe()
            if desc in out:
                continue
            try:
                secret = read(ref, base, vaults)
                out[desc] = fingerprint(key, secret.value, secret.version)
            except SecretUnavailable as exc:
                log.debug("secret %s unavailable: %s", desc, exc)
                out[desc] = None
    return out


def fingerprints_for(
    policy_set: PolicySet,
    key: bytes,
    applied: dict[str, dict[str, str]],
    vaults: Vaults | None = None,
) -> Fingerprints:
    return Fingerprints(desired=desired_fingerprints(policy_set, key, vaults), applied=applied)


def parse_ref(description: str) -> SecretRef:
    """``env:NAME`` / ``file:PATH`` / ``keyvault:VAULT/NAME[/VERSION]`` (``SecretRef.describe()``)
    back into a reference."""
    scheme, _, rest = description.partition(":")
    if scheme == "env" and rest:
        return SecretRef(from_env=rest)
    if scheme == "file" and rest:
        return SecretRef(from_file=rest)
    parts = rest.split("/")
    if scheme == "keyvault" and len(parts) in (2, 3) and all(parts):
        vault, name, *version = parts
        spec = {"vault": vault, "name": name, "version": version[0] if version else None}
        return SecretRef.model_validate({"fromKeyVault": spec})
    raise ValueError(f"not a secret reference: {description!r}")


def resolve_protected(
    policy_set: PolicySet, action: Action, vaults: Vaults | None = None
) -> Protected:
    """The protected values of one action, read now (registered for redaction).

    A ``fromFile`` path is relative to the file of the policy that declares it: the
    action's policies are tried in order.
    """
    out = Protected()
    for setting, description in sorted(action.protected.items()):
        ref = parse_ref(description)
        bases: list[Path | None] = [
            policy_set.base_dir(p) for p in action.policies if p in policy_set.origins
        ] or [None]
        last: SecretUnavailable | None = None
        for base in bases:
            try:
                secret = read(ref, base, vaults)
            except SecretUnavailable as exc:
                last = exc
                continue
            out.values[setting] = secret.value
            if secret.version is not None:
                out.versions[setting] = secret.version
            break
        else:
            assert last is not None
            raise last
    return out


def check_secrets(
    policy_set: PolicySet, tasks: Iterable[ClusterTask], vaults: Vaults | None = None
) -> None:
    """Every reference the job will send is readable now; raises ``SecretsUnavailable``.

    Each reference is read once, however many clusters send it.
    """
    problems: dict[str, str] = {}
    checked: set[tuple[tuple[tuple[str, str], ...], tuple[str, ...]]] = set()
    for task in tasks:
        for action in task.actions:
            refs = (tuple(sorted(action.protected.items())), tuple(action.policies))
            if not action.protected or refs in checked:
                continue
            checked.add(refs)
            try:
                resolve_protected(policy_set, action, vaults)
            except SecretUnavailable as exc:
                problems.setdefault(str(exc), str(exc))
    if problems:
        raise SecretsUnavailable(sorted(problems))
