"""The HTTP under the Azure SDK clients: one ``requests`` session and its SDK transport.

ARM (``fleet.azure.session``) and Key Vault (``fleet.azure.keyvault``) each keep one pool of
connections for every client of the process; this builds it the same way for both.
"""

from __future__ import annotations

import os

import requests
from azure.core.pipeline.transport import RequestsTransport
from requests.adapters import HTTPAdapter

from fleet.settings import Settings


def pooled_transport(
    settings: Settings, *, endpoint: str, ca_bundle: str | None, hosts: int
) -> tuple[requests.Session, RequestsTransport]:
    """A session for ``endpoint`` and the SDK transport over it (the caller closes the session).

    ``hosts`` is how many hosts keep a pool of their own (ARM is one host; vaults are many).
    """
    http = requests.Session()
    # With trust_env on, requests re-reads the proxy variables (a scan of os.environ) and looks
    # for ~/.netrc (file stats) on *every* request: ~10 % of a read's CPU. fleet talks to one
    # endpoint per session, so its proxy and CA bundle are resolved once, here.
    http.trust_env = False
    http.proxies.update(requests.utils.get_environ_proxies(endpoint))
    pool = settings.concurrency + 8  # + LRO polls and paging that overlap a full pool
    # Retries are fleet's own (fleet.azure.retrying), never urllib3's.
    http.mount("https://", HTTPAdapter(pool_connections=hosts, pool_maxsize=pool, max_retries=0))
    verify: str | bool = (
        ca_bundle
        or os.environ.get("REQUESTS_CA_BUNDLE")
        or os.environ.get("CURL_CA_BUNDLE")
        or True
    )
    transport = RequestsTransport(
        session=http,
        session_owner=False,
        connection_verify=verify,
        connection_timeout=min(10.0, settings.request_timeout),
        read_timeout=settings.request_timeout,
    )
    return http, transport
