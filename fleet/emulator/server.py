"""The emulator's HTTPS server: a raw ASGI app on uvicorn (httptools + uvloop), in a thread.

``EmulatorServer(snapshot, **options).start()`` binds loopback (anything else needs
``allow_remote=True``), writes the CA to a file and returns ``(endpoint, ca_path)``; ``stop()``
shuts it down. The CLI and ``testing.running_emulator`` both use it.

Key Vault data-plane requests (``/vaults/{vault}/...``) are handed to keyvault.py, which does
Key Vault's own challenge authentication. Every ARM request goes through one pipeline, in the
order Azure's front door would apply it::

    authenticate (any bearer token; its subject is the throttling principal)
    -> api-version required -> route -> injected latency / delay / reset
    -> throttle (ARM token buckets, or the Resource Graph quota) -> RBAC (if roles are set)
    -> injected errors -> handler (responses.py -> backend.py) -> statistics

No framework sits in between: a raw ASGI callable on httptools is what keeps the emulator above
1,000 requests per second on two cores (docs/emulator.md has the measurement).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import ipaddress
import logging
import random
import socket
import ssl
import struct
import threading
import time
import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from fleet.emulator import admin, keyvault, responses
from fleet.emulator import snapshot as snapshots
from fleet.emulator.backend import Backend
from fleet.emulator.clock import iso
from fleet.emulator.errors import (
    ArmError,
    AuthenticationFailed,
    ExpiredAuthenticationToken,
    InternalServerError,
    LroError,
    MissingApiVersionParameter,
    RateLimiting,
    ServiceUnavailable,
    StatusError,
    TooManyRequests,
    status_of,
)
from fleet.emulator.faults import FaultSet, Latency, RandomFaults, malform, parse_fault
from fleet.emulator.options import EmulatorOptions
from fleet.emulator.rbac import Roles
from fleet.emulator.routes import normalize, resolve
from fleet.emulator.stats import Stats
from fleet.emulator.throttle import ArmThrottle, GraphQuota
from fleet.emulator.tls import Tls, make_tls
from fleet.emulator.writes import WriteContext

log = logging.getLogger("fleet.emulator")

_TRANSPORT_KEY = "fleet.emulator"
_WRITES = frozenset({"PUT", "PATCH", "DELETE"})
_DELAY = frozenset({"delay"})
_RESET = frozenset({"reset"})
_ERROR = frozenset({"error"})
_LRO_FAIL = frozenset({"lro_fail"})
_NON_COMPLIANT = frozenset({"non_compliant"})
_MALFORMED = frozenset({"malformed"})


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Protocol(HttpToolsProtocol):
    """uvicorn's httptools protocol that hands the transport to the app (for resets).

    ASGI has no way to drop a connection without answering; a connection reset fault needs
    exactly that, so the transport travels in the scope's ``extensions``.
    """

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = {_TRANSPORT_KEY: {"transport": self.transport}}

    def shutdown(self) -> None:
        # An idle keep-alive TLS connection would wait for the client's close_notify, which a
        # pooled client never sends until it reuses the socket: drop idle ones at once.
        if self.cycle is None or self.cycle.response_complete:
            self.transport.abort()
        else:
            super().shutdown()


@dataclass(frozen=True, slots=True)
class Identity:
    principal: str  # throttling and RBAC key: the token's oid/sub, else a hash of the token
    display: str  # systemData.createdBy
    kind: str  # systemData.createdByType
    #: The JWT's ``exp`` claim (seconds since the epoch), when it has a numeric one.
    expires: float | None = None


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The claims of a JWT-shaped token, unverified (None when it is not one)."""
    if token.count(".") != 2:
        return None
    try:
        middle = token.split(".")[1]
        claims = orjson.loads(base64.urlsafe_b64decode(middle + "=" * (-len(middle) % 4)))
    except (ValueError, TypeError):
        return None
    return claims if isinstance(claims, dict) else None


def identity_of(token: str) -> Identity:
    """Derive the principal from a bearer token without verifying it (any token is accepted)."""
    claims = jwt_claims(token)
    if claims is not None and (claims.get("oid") or claims.get("sub")):
        principal = str(claims.get("oid") or claims.get("sub"))
        exp = claims.get("exp")
        expires = float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None
        user = claims.get("upn") or claims.get("unique_name")
        if user:
            return Identity(principal, str(user), "User", expires)
        return Identity(principal, str(claims.get("appid") or principal), "Application", expires)
    digest = "sha256:" + hashlib.sha256(token.encode()).hexdigest()[:16]
    return Identity(digest, digest, "Application")


class EmulatorApp:
    """The raw ASGI application."""

    def __init__(self, components: responses.Components, options: EmulatorOptions) -> None:
        self.c = components
        self.options = options
        rng = random.Random(options.seed)
        self.latency = Latency(options.latency_ms, options.latency_p99_ms, rng)
        self.random = RandomFaults(
            rng,
            error_rate=options.error_rate,
            reset_rate=options.reset_rate,
            slow_rate=options.slow_rate,
            slow_seconds=options.slow_seconds,
            lro_fail_rate=options.lro_fail_rate,
        )
        self._identities: dict[str, Identity] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        reply = await self.handle(scope, body)
        if reply is None:
            await self._reset(scope)
            return
        await send(
            {"type": "http.response.start", "status": reply.status, "headers": reply.headers}
        )
        await send({"type": "http.response.body", "body": reply.body})

    async def _reset(self, scope: Any) -> None:
        transport = scope.get("extensions", {}).get(_TRANSPORT_KEY, {}).get("transport")
        if transport is None:  # not our protocol class: nothing better than a 500
            raise ConnectionAbortedError("injected reset")
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Linger 0: the peer sees a RST, as with a dropped load-balancer connection.
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        # Let connection_lost run so uvicorn knows nobody is waiting for a response.
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    def _identity(self, authorization: str | None) -> Identity:
        if not authorization:
            raise AuthenticationFailed(
                "Authentication failed. The 'Authorization' header is missing.",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationFailed(
                "Authentication failed. The 'Authorization' header is provided in an invalid "
                "format.",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        token = token.strip()
        found = self._identities.get(token)
        if found is None:
            if len(self._identities) > 4096:
                self._identities.clear()
            found = self._identities[token] = identity_of(token)
        if found.expires is not None and found.expires < time.time():
            # Like ARM: a token past its ``exp`` (wall-clock time, not the emulated clock) is
            # refused with a challenge, and the client is expected to get a new one.
            raise ExpiredAuthenticationToken(
                "The access token expiry UTC time "
                f"'{time.strftime('%m/%d/%Y %H:%M:%S', time.gmtime(found.expires))}' is earlier "
                "than current UTC time "
                f"'{time.strftime('%m/%d/%Y %H:%M:%S', time.gmtime())}'.",
                headers={
                    "WWW-Authenticate": 'Bearer authorization_uri="https://login.microsoftonline'
                    '.com/common", error="invalid_token", error_description="The access token '
                    'has expired."'
                },
            )
        return found

    def _caller(self, authorization: str | None) -> keyvault.Caller:
        """Who calls the Key Vault data plane (its own challenge handles a missing token)."""
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return keyvault.Caller(None)
        identity = identity_of(token)
        claims = jwt_claims(token) or {}
        audience = claims.get("aud")
        return keyvault.Caller(
            token, identity.principal, str(audience) if audience else None, identity.expires
        )

    async def handle(self, scope: Any, body: bytes) -> responses.Reply | None:
        """Serve one request; None means: reset the connection."""
        c = self.c
        method: str = scope["method"]
        path = normalize(scope["path"])
        query = responses.Query(
            urllib.parse.parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        )
        host = authorization = correlation = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"host":
                host = value.decode("latin-1")
            elif name == b"x-ms-correlation-request-id":
                correlation = value.decode("latin-1")
        base_url = f"https://{host}" if host else self.options_endpoint(scope)
        c.backend.tick()
        if path == "/_emulator" or path.startswith("/_emulator/"):
            return self._admin(scope, method, path, query, body)
        if method == "GET" and path.lower() == "/metadata/endpoints":
            # Anonymous in ARM (``az cloud register`` reads it before it has a token).
            return responses.metadata_endpoints(base_url, query)
        if keyvault.is_vault_path(path):
            return keyvault.serve(c, method, path, query, self._caller(authorization), base_url)

        request_id = str(uuid.uuid4())
        extra: list[tuple[bytes, bytes]] = [
            (b"x-ms-request-id", request_id.encode()),
            (b"x-ms-correlation-request-id", (correlation or request_id).encode()),
        ]
        resource_type, principal, is_write = "unknown", "anonymous", False
        try:
            identity = self._identity(authorization)
            principal = identity.principal
            if not query.get("api-version"):
                raise MissingApiVersionParameter(
                    "The api-version query parameter (?api-version=) is required for all requests."
                )
            # HEAD is ARM's existence check (check_existence*): served as a GET, answered 204.
            resolved = resolve("GET" if method == "HEAD" else method, path)
            resource_type = resolved.resource_type
            is_write = method in _WRITES
            delay = self.latency.sample() + self.random.slow()
            fault = c.faults.take(method, path, resource_type, _DELAY)
            if fault is not None:
                c.stats.fault("delay")
                delay += fault.delay_seconds
            if delay > 0:
                await asyncio.sleep(delay)
            if c.faults.take(method, path, resource_type, _RESET) or self.random.reset():
                c.stats.fault("reset")
                self._record(method, path, resource_type, 0, principal, body, is_write)
                return None
            if resolved.route.scope == "graph":
                verdict = c.quota.check(principal)
                extra.extend((k.encode(), v.encode()) for k, v in verdict.headers)
                if not verdict.allowed:
                    c.stats.throttled_graph += 1
                    raise RateLimiting(
                        "Client application has been throttled and should not attempt to repeat "
                        "the request until an amount of time has elapsed. Please see "
                        "https://aka.ms/resourcegraph-throttling for help.",
                        headers={"Retry-After": str(verdict.retry_after)},
                    )
                c.stats.graph_queries += 1
            else:
                verdict = c.throttle.check(resolved.subscription, principal, resolved.op_class)  # type: ignore[arg-type]
                extra.extend((k.encode(), v.encode()) for k, v in verdict.headers)
                if not verdict.allowed:
                    c.stats.throttled_arm += 1
                    kind = {"reads": "Read", "writes": "Write", "deletes": "Delete"}[
                        resolved.op_class
                    ]
                    raise TooManyRequests(
                        "The request is being throttled as the limit has been reached for "
                        f"operation type - {kind}. For more information, see "
                        "https://aka.ms/armthrottling",
                        headers={"Retry-After": str(verdict.retry_after)},
                    )
            c.roles.authorize(principal, resolved.action, path)
            fault = c.faults.take(method, path, resource_type, _ERROR)
            if fault is not None:
                c.stats.fault("error")
                headers = (
                    {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                )
                raise StatusError(fault.status, fault.code, fault.message, headers=headers)
            random_status = self.random.error_status()
            if random_status is not None:
                c.stats.fault("error")
                cls = InternalServerError if random_status == 500 else ServiceUnavailable
                raise cls("Injected random fault.")
            call = responses.Call(c, resolved_method(method), path, query, body, base_url, resolved)
            if is_write and resolved.route.name == "child":
                call.write = self._write_context(identity, method, path, resource_type)
            reply = responses.HANDLERS[resolved.route.name](call)
            if 200 <= reply.status < 300 and reply.body:
                fault = c.faults.take(method, path, resource_type, _MALFORMED)
                if fault is not None and fault.mode is not None:
                    c.stats.fault("malformed")
                    reply.body = malform(reply.body, fault.mode, fault.size_bytes)
            if method == "HEAD":
                reply = responses.Reply(204 if reply.status == 200 else reply.status, b"", [])
        except ArmError as exc:
            reply = responses.json_reply(
                status_of(exc),
                exc.body(),
                [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()],
            )
        except Exception:
            log.exception("internal error serving %s %s", method, path)
            err = InternalServerError("The emulator failed to serve the request (see its log).")
            reply = responses.json_reply(500, err.body())
        reply.headers.extend(extra)
        self._record(method, path, resource_type, reply.status, principal, body, is_write)
        return reply

    def _write_context(
        self, identity: Identity, method: str, path: str, rtype: str
    ) -> WriteContext:
        c = self.c
        lro_error: LroError | None = None
        fault = c.faults.take(method, path, rtype, _LRO_FAIL)
        if fault is not None:
            c.stats.fault("lro_fail")
            lro_error = LroError(fault.code, fault.message)
        elif self.random.lro_fail():
            c.stats.fault("lro_fail")
            lro_error = LroError(
                "OperationFailed", "Injected random long-running operation failure."
            )
        non_compliant = c.faults.take(method, path, rtype, _NON_COMPLIANT) is not None
        if non_compliant:
            c.stats.fault("non_compliant")

        def authorize(action: str, scope: str) -> None:
            c.roles.authorize(identity.principal, action, scope)

        return WriteContext(
            principal=identity.display,
            identity_type=identity.kind,
            authorize=authorize,
            lro_error=lro_error,
            non_compliant=non_compliant,
        )

    def _record(
        self,
        method: str,
        path: str,
        rtype: str,
        status: int,
        principal: str,
        body: bytes,
        is_write: bool,
    ) -> None:
        self.c.stats.record(
            method=method,
            path=path,
            resource_type=rtype,
            status=status,
            principal=principal,
            body=body,
            now=iso(self.c.backend.clock.now()),
            is_write=is_write,
        )

    def _admin(
        self, scope: Any, method: str, path: str, query: responses.Query, body: bytes
    ) -> responses.Reply:
        client = scope.get("client")
        try:
            if client and not is_loopback(str(client[0])):
                raise AuthenticationFailed(
                    "The /_emulator/ admin routes answer loopback clients only."
                )
            return admin.serve(self.c, method, path, query, body)
        except ArmError as exc:
            return responses.json_reply(status_of(exc), exc.body())

    def options_endpoint(self, scope: Any) -> str:
        server = scope.get("server") or ("127.0.0.1", 0)
        return f"https://{_host_for_url(str(server[0]))}:{server[1]}"


def resolved_method(method: str) -> str:
    return "GET" if method == "HEAD" else method


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


class EmulatorServer:
    """The emulator on a background thread. ``start()`` returns ``(endpoint, ca_path)``."""

    def __init__(
        self,
        snapshot: Mapping[str, Any] | str | Path,
        options: EmulatorOptions | None = None,
        **overrides: Any,
    ) -> None:
        unknown = set(overrides) - EmulatorOptions.names()
        if unknown:
            raise TypeError(f"unknown emulator option(s): {', '.join(sorted(unknown))}")
        self.options = replace(options or EmulatorOptions(), **overrides)
        if not is_loopback(self.options.host) and not self.options.allow_remote:
            raise ValueError(
                f"refusing to bind {self.options.host!r}: the emulator binds loopback only "
                "unless allow_remote (--allow-remote) is given explicitly"
            )
        doc = snapshots.load(snapshot)
        stats = Stats()
        backend = Backend(doc, self.options, stats=stats)
        faults = FaultSet(
            parse_fault(spec, f"emulator.faults[{i}]")
            for i, spec in enumerate((doc.get("emulator") or {}).get("faults") or ())
        )
        self.components = responses.Components(
            backend=backend,
            faults=faults,
            stats=stats,
            roles=Roles(),
            throttle=ArmThrottle(self.options.throttle, self.options.throttle_scale),  # type: ignore[arg-type]
            quota=GraphQuota(self.options.graph_quota, self.options.graph_window_seconds),
        )
        self.app = EmulatorApp(self.components, self.options)
        self._tls: Tls | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.endpoint = ""
        self.port = 0

    @property
    def ca_bundle(self) -> Path:
        if self._tls is None:
            raise RuntimeError("the emulator is not started")
        return self._tls.ca_path

    def start(self, timeout: float = 20.0) -> tuple[str, Path]:
        """Bind, serve on a daemon thread, and wait until ready."""
        if self._thread is not None:
            raise RuntimeError("the emulator is already started")
        host = self.options.host
        hosts = ["127.0.0.1", "localhost", "::1", host.strip("[]"), *self.options.tls_names]
        self._tls = tls = make_tls(hosts, self.options.ca_dir)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), self.options.port))
        self.port = sock.getsockname()[1]
        self.endpoint = f"https://{_host_for_url(host.strip('[]'))}:{self.port}"
        config = uvicorn.Config(
            self.app,
            http=_Protocol,
            loop="uvloop",
            lifespan="off",
            access_log=False,
            log_level="warning",
            server_header=False,
            timeout_keep_alive=120,
            timeout_graceful_shutdown=2,
            backlog=2048,
            ssl_context_factory=lambda _config, _default: tls.context,
        )
        self._server = server = uvicorn.Server(config)

        def run() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as exc:  # surfaced by start() below
                self._error = exc
            finally:
                sock.close()

        self._thread = threading.Thread(target=run, name="fleet-emulator", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if self._error is not None or not self._thread.is_alive():
                raise RuntimeError(f"the emulator failed to start: {self._error!r}")
            if time.monotonic() > deadline:
                raise TimeoutError("the emulator did not start in time")
            time.sleep(0.01)
        log.info("ARM emulator serving %s (CA %s)", self.endpoint, tls.ca_path)
        return self.endpoint, tls.ca_path

    def stop(self, timeout: float = 10.0) -> None:
        """Shut down (idempotent) and remove the temporary CA directory."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._tls is not None:
            self._tls.cleanup()

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def client_ssl_context(ca_path: str | Path) -> ssl.SSLContext:
    """An SSL context trusting only the emulator's CA (for admin clients and benchmarks)."""
    return ssl.create_default_context(cafile=str(ca_path))
