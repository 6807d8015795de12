"""Secret references: resolved at the last moment, fingerprinted, never kept.

Policies name secrets by reference (``fromEnv``, ``fromFile``). fleet reads a value only to
(a) send it to ARM in a write and (b) compute its keyed fingerprint (HMAC-SHA256 with the
installation's fingerprint key), which is what the history database stores and what drift
detection compares: ARM never returns protected settings, so "what fleet last applied" is the
only thing a rotated secret can be compared with.
"""

from __future__ import annotations

import logging
import os
import secrets as _random
from collections.abc import Iterable, Iterator
from pathlib import Path

from fleet.apply.spec import ClusterTask
from fleet.core import redact
from fleet.core.errors import SecretsUnavailable, SecretUnavailable
from fleet.desired.fingerprints import Fingerprints, fingerprint
from fleet.plan.actions import Action
from fleet.policy.loading import PolicySet
from fleet.policy.models import Policy, SecretRef
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


def resolve(ref: SecretRef, base_dir: Path | None) -> str:
    """The value a reference points to (registered for redaction). Raises SecretUnavailable."""
    value = _read(ref, base_dir)
    redact.register(value)
    return value


def _read(ref: SecretRef, base_dir: Path | None) -> str:
    if ref.from_env is not None:
        value = os.environ.get(ref.from_env)
        if value is None:
            raise SecretUnavailable(f"environment variable {ref.from_env} is not set")
        return value
    assert ref.from_file is not None
    path = Path(ref.from_file)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    try:
        return path.read_text(encoding="utf-8").rstrip("\n")
    except OSError as exc:
        raise SecretUnavailable(f"cannot read secret file {path}: {exc.strerror}") from None


def _refs(policy: Policy) -> Iterator[SecretRef]:
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


def desired_fingerprints(policy_set: PolicySet, key: bytes) -> dict[str, str | None]:
    """Fingerprint of the current value of every reference in the policies (None = unreadable)."""
    out: dict[str, str | None] = {}
    for policy in policy_set.policies:
        base = policy_set.base_dir(policy.name)
        for ref in _refs(policy):
            desc = ref.describe()
            if desc in out:
                continue
            try:
                out[desc] = fingerprint(key, resolve(ref, base))
            except SecretUnavailable as exc:
                log.debug("secret %s unavailable: %s", desc, exc)
                out[desc] = None
    return out


def fingerprints_for(
    policy_set: PolicySet, key: bytes, applied: dict[str, dict[str, str]]
) -> Fingerprints:
    return Fingerprints(desired=desired_fingerprints(policy_set, key), applied=applied)


def parse_ref(description: str) -> SecretRef:
    """``env:NAME`` / ``file:PATH`` (``SecretRef.describe()``) back into a reference."""
    scheme, _, rest = description.partition(":")
    if scheme == "env" and rest:
        return SecretRef(from_env=rest)
    if scheme == "file" and rest:
        return SecretRef(from_file=rest)
    raise ValueError(f"not a secret reference: {description!r}")


def resolve_protected(policy_set: PolicySet, action: Action) -> dict[str, str]:
    """The protected values of one action, read now (registered for redaction).

    A ``fromFile`` path is relative to the file of the policy that declares it: the
    action's policies are tried in order.
    """
    values: dict[str, str] = {}
    for setting, description in sorted(action.protected.items()):
        ref = parse_ref(description)
        bases: list[Path | None] = [
            policy_set.base_dir(p) for p in action.policies if p in policy_set.origins
        ] or [None]
        last: SecretUnavailable | None = None
        for base in bases:
            try:
                values[setting] = resolve(ref, base)
                break
            except SecretUnavailable as exc:
                last = exc
        else:
            assert last is not None
            raise last
    return values


def check_secrets(policy_set: PolicySet, tasks: Iterable[ClusterTask]) -> None:
    """Every reference the job will send is readable now; raises ``SecretsUnavailable``."""
    problems: dict[str, str] = {}
    for task in tasks:
        for action in task.actions:
            if not action.protected:
                continue
            try:
                resolve_protected(policy_set, action)
            except SecretUnavailable as exc:
                problems.setdefault(str(exc), str(exc))
    if problems:
        raise SecretsUnavailable(sorted(problems))
