"""``FLEET_NOTIFY_URLS``: where notifications go, and how each target's URL is read.

An entry is ``[FORMAT=]TARGET``, entries are separated by commas:

    FLEET_NOTIFY_URLS=env:EVENTS_HOOK,teams=env:TEAMS_HOOK,slack=file:/run/secrets/slack-hook

FORMAT is a rendering of ``fleet.notify.render.FORMATS`` (``cloudevents`` when left out);
TARGET is a secret reference, ``env:NAME`` or ``file:PATH`` (the references of policies'
``fromEnv`` / ``fromFile``, read by ``fleet.apply.secrets``), or a literal ``https://`` URL
(plain ``http://`` only on loopback). A webhook URL is its own credential: whatever is read is
registered with ``fleet.core.redact`` before it is used, and a target is stored and shown only
by its ``label`` (the reference, or ``url#<hash>`` for a literal URL), never by its URL.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.parse import urlsplit

from fleet.apply import secrets
from fleet.core import redact
from fleet.core.errors import NotifyTargetInvalid
from fleet.notify.render import FORMATS
from fleet.settings import Settings, is_loopback_url

DEFAULT_FORMAT = "cloudevents"


@dataclass(frozen=True)
class Target:
    """One webhook: how to render for it, and where its URL comes from."""

    format: str
    #: ``env:NAME``, ``file:PATH`` or a literal URL (then secret: never shown).
    source: str
    label: str

    @property
    def literal(self) -> bool:
        return "://" in self.source

    def url(self) -> str:
        """The webhook URL, read now (registered for redaction). Raises ``SecretUnavailable``
        when a reference cannot be read, ``NotifyTargetInvalid`` when it is no usable URL."""
        if self.literal:
            value = self.source.strip()
        else:
            value = secrets.resolve(secrets.parse_ref(self.source), None).strip()
        _register(value)
        parts = urlsplit(value)
        secure = parts.scheme == "https" or (parts.scheme == "http" and is_loopback_url(value))
        if not secure or not parts.hostname:
            raise NotifyTargetInvalid(
                f"notification target {self.label}: not an https:// URL (plain http only on "
                "loopback)"
            )
        return value


def _register(url: str) -> None:
    """Mask the URL, and its path and query on their own: HTTP libraries log the request
    line without the host."""
    redact.register(url)
    parts = urlsplit(url)
    tail = parts.path + (f"?{parts.query}" if parts.query else "")
    if tail.strip("/"):
        redact.register(tail)


def parse(text: str) -> list[Target]:
    """The targets of a ``FLEET_NOTIFY_URLS`` value. Raises ``NotifyTargetInvalid``."""
    targets: list[Target] = []
    for position, raw in enumerate((e.strip() for e in text.split(",")), start=1):
        if not raw:
            continue
        head, sep, rest = raw.partition("=")
        fmt, source = (
            (head.strip().lower(), rest.strip())
            if sep and "://" not in head
            else (
                DEFAULT_FORMAT,
                raw,
            )
        )
        if "://" in source:
            _register(source)
            digest = hashlib.sha256(source.encode()).hexdigest()[:10]
            label = f"{fmt}=url#{digest}"
        else:
            label = f"{fmt}={source}"
        if fmt not in FORMATS:
            # The entry's text may be a mistyped URL: name its position only.
            raise NotifyTargetInvalid(
                f"FLEET_NOTIFY_URLS entry {position}: unknown format (use one of "
                f"{', '.join(FORMATS)})"
            )
        if "://" not in source:
            try:
                ref = secrets.parse_ref(source)
            except ValueError:
                ref = None
            # A Key Vault reference needs fleet's Azure credential, which delivery (from any
            # process, the beat included) does not hold.
            if ref is None or ref.from_key_vault is not None:
                raise NotifyTargetInvalid(
                    f"FLEET_NOTIFY_URLS entry {position}: neither env:NAME, file:PATH nor a URL"
                )
        targets.append(Target(fmt, source, label))
    return targets


def configured(settings: Settings) -> list[Target]:
    """The targets of the settings (none when ``FLEET_NOTIFY_URLS`` is unset)."""
    if settings.notify_urls is None:
        return []
    return parse(settings.notify_urls.get_secret_value())
