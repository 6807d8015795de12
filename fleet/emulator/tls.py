"""A throwaway certificate authority for the emulator's HTTPS.

The SDK refuses bearer tokens over plain HTTP, so the emulator serves HTTPS with a server
certificate issued by a fresh trustme CA. Only the CA certificate is written to disk (the
client passes it as ``connection_verify=``); the server key never leaves memory.
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True, slots=True)
class Tls:
    """The CA file clients trust, the server context, and whether we own the directory."""

    ca_path: Path
    context: ssl.SSLContext
    owns_directory: bool

    def cleanup(self) -> None:
        if self.owns_directory:
            shutil.rmtree(self.ca_path.parent, ignore_errors=True)


def make_tls(hosts: list[str], directory: str | None = None) -> Tls:
    """Issue a server certificate for ``hosts`` and write the CA to ``directory/ca.pem``."""
    ca = trustme.CA(organization_name="fleet ARM emulator")
    cert = ca.issue_cert(*dict.fromkeys(hosts))
    owns = directory is None
    folder = (
        Path(tempfile.mkdtemp(prefix="fleet-emulator-")) if directory is None else Path(directory)
    )
    folder.mkdir(parents=True, exist_ok=True)
    ca_path = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return Tls(ca_path=ca_path, context=context, owns_directory=owns)
