"""SSH key pairs for flux configurations with an ``ssh://`` source and no private key.

As ARM does, the emulator generates the pair itself when such a configuration is written: it
keeps the private key (never returned, never in a dump) and answers the public key in
``repositoryPublicKey``, base64-encoded OpenSSH (``ecdsa-sha2-nistp384 AAAA...``, the key type
Flux generates), so that it can be registered as the repository's deploy key. A private key the
request does give (``configurationProtectedSettings.sshPrivateKey``, base64 PEM or OpenSSH) is
the one whose public half is answered instead; one that cannot be read answers ``""``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def is_ssh(props: Mapping[str, Any]) -> bool:
    """Whether a flux configuration's source is a Git repository reached over SSH."""
    git = props.get("gitRepository")
    url = git.get("url") if isinstance(git, Mapping) else None
    kind = str(props.get("sourceKind") or "GitRepository")
    return kind == "GitRepository" and isinstance(url, str) and url.lower().startswith("ssh://")


def given_key(requested: Mapping[str, Any]) -> str | None:
    """The ``sshPrivateKey`` a request's properties carry, if any."""
    protected = requested.get("configurationProtectedSettings")
    value = protected.get("sshPrivateKey") if isinstance(protected, Mapping) else None
    return value if isinstance(value, str) and value else None


def generate() -> tuple[bytes, str]:
    """A new key pair: (the private key in OpenSSH PEM, ``repositoryPublicKey``)."""
    key = ec.generate_private_key(ec.SECP384R1())
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    return private, _public_of(key)


def public_of_given(private_b64: str) -> str:
    """``repositoryPublicKey`` of a private key given base64-encoded ("" if unreadable)."""
    try:
        data = base64.b64decode(private_b64, validate=True)
    except (binascii.Error, ValueError):
        return ""
    for load in (serialization.load_ssh_private_key, serialization.load_pem_private_key):
        try:
            return _public_of(load(data, password=None))
        except (ValueError, TypeError, binascii.Error):
            continue
    return ""


def _public_of(key: Any) -> str:
    line = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return base64.b64encode(line).decode()
