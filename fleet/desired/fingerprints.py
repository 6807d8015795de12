"""Secret drift without secrets: keyed fingerprints of protected settings.

ARM never returns ``configurationProtectedSettings`` (nor ``accountKey``, ``sasToken`` and the
service principal secrets), so drift in a secret cannot be read from Azure. Instead fleet keeps
an HMAC of every protected value it applied (``applied``, stored by the history layer) and the
HMAC of the value each secret reference resolves to now (``desired``, computed by the shell at
sweep time). When the two differ the secret was rotated (or changed behind fleet's back after a
re-apply) and the resource needs a PUT. Only fingerprints ever enter the engine: the key lives
with the shell, and a fingerprint cannot be turned back into the value.

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


def fingerprint(key: bytes, value: str) -> str:
    """Keyed fingerprint of a secret value: ``hmac-sha256:`` + 32 hex digits (128 bits)."""
    digest = hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()
    return PREFIX + digest[:32]


def short(fp: str | None) -> str | None:
    """A short, still secret-free form for reports: ``hmac-sha256:1a2b3c4d``."""
    if fp is None:
        return None
    body = fp[len(PREFIX) :] if fp.startswith(PREFIX) else fp
    return PREFIX + body[:8]


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
            if want is None or have is None or want == have:
                continue
            out.append(SecretDrift(setting, setting_path(setting), ref, want, have))
        return out
