"""Secret drift without secrets: keyed fingerprints of protected settings.

ARM never returns ``configurationProtectedSettings`` (nor ``accountKey``, ``sasToken`` and the
service principal secrets), so drift in a secret cannot be read from Azure. Instead fleet keeps
an HMAC of every protected value it applied (``applied``, stored by the history layer) and the
HMAC of the value each secret reference resolves to now (``desired``, computed by the shell at
sweep time). When the two differ the secret was rotated (or changed behind fleet's back after a
re-apply) and the resource needs a PUT. Only fingerprints ever enter the engine: the key lives
with the shell, and a fingerprint cannot be turned back into the value.

A secret read from Azure Key Vault carries the vault's version id after an ``@``
(``hmac-sha256:<hex>@<version>``): version ids are not secret, and they tell a rotation (the
vault now has another version than the one applied: ``SecretDrift.rotation``) from any other
change of the value.

Setting names: a plain name (``httpsKey``) is an entry of ``configurationProtectedSettings``; a
name starting with ``/`` is a JSON pointer below ``properties`` for the secret fields of an
Azure Blob source (``/azureBlob/accountKey``, ``/azureBlob/servicePrincipal/clientSecret``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from fleet.core.diffing import escape
from fleet.core.ids import key as id_key

PREFIX = "hmac-sha256:"


def fingerprint(key: bytes, value: str, version: str | None = None) -> str:
    """Keyed fingerprint of a secret value: ``hmac-sha256:`` + 32 hex digits (128 bits), and
    ``@`` + the Key Vault version id when the value came from a vault."""
    digest = hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()
    return PREFIX + digest[:32] + (f"@{version}" if version else "")


def version_of(fp: str | None) -> str | None:
    """The Key Vault version id a fingerprint records (None for other references)."""
    if fp is None:
        return None
    return fp.partition("@")[2] or None


def same(want: str, have: str) -> bool:
    """Whether two fingerprints mean the same applied value: equal, or (when only one side
    records a version, e.g. a reference moved from ``fromEnv`` to Key Vault) equal HMACs."""
    if version_of(want) and version_of(have):
        return want == have
    return want.partition("@")[0] == have.partition("@")[0]


def short(fp: str | None) -> str | None:
    """A short, still secret-free form for reports: ``hmac-sha256:1a2b3c4d`` (``@version``
    kept)."""
    if fp is None:
        return None
    mac, _, version = fp.partition("@")
    body = mac[len(PREFIX) :] if mac.startswith(PREFIX) else mac
    return PREFIX + body[:8] + (f"@{version}" if version else "")


def setting_path(setting: str) -> str:
    """JSON pointer of a protected setting inside its resource."""
    if setting.startswith("/"):
        return "/properties" + setting
    return "/properties/configurationProtectedSettings/" + escape(setting)


class SecretDrift(NamedTuple):
    """A protected setting whose current value is not the one fleet applied."""

    setting: str
    path: str
    ref: str
    desired: str
    applied: str

    @property
    def rotation(self) -> bool:
        """The reference now resolves to another Key Vault version than the one applied."""
        want, have = version_of(self.desired), version_of(self.applied)
        return want is not None and have is not None and want != have


@dataclass(frozen=True, slots=True)
class Fingerprints:
    """Fingerprints of the desired secret values and of what fleet last applied.

    ``desired``: ``SecretRef.describe()`` -> fingerprint of the value it resolves to now (None
    when it cannot be resolved now). ``applied``: ``fleet.core.ids.key(resource id)`` ->
    {setting name -> fingerprint fleet applied}.
    """

    desired: Mapping[str, str | None] = field(default_factory=dict)
    applied: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def drift(self, resource_id: str, protected: Mapping[str, str]) -> list[SecretDrift]:
        """Protected settings of one resource (setting -> ref) whose fingerprints differ.

        Unknown is not drift: a setting fleet never applied, or a reference that cannot be
        resolved now, has nothing to compare with and gives no entry.
        """
        if not protected:
            return []
        applied = self.applied.get(id_key(resource_id))
        if not applied:
            return []
        out: list[SecretDrift] = []
        for setting in sorted(protected):
            ref = protected[setting]
            want = self.desired.get(ref)
            have = applied.get(setting)
            if want is None or have is None or same(want, have):
                continue
            out.append(SecretDrift(setting, setting_path(setting), ref, want, have))
        return out
