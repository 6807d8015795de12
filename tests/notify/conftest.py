"""A webhook receiver on loopback (a small HTTP server in the test), and a fleet to sweep.

``Receiver`` records every POST it gets and answers from a script: a list of status codes
used one per request (then 200), or ``hang`` to never answer (it holds the connection until
the test ends). The fleet is a small generated one served by the emulator; ``drift`` changes
the branch of governed flux configurations through the emulator's admin API, which is how a
person's edit in the portal shows up between two sweeps.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from fleet.cli import app
from fleet.emulator.generate import generate
from fleet.emulator.testing import RunningEmulator, running_emulator
from tests.conftest import POLICIES, emulator_env
from tests.distributed.conftest import redis_server  # noqa: F401  (the engines test's)

FLEET = generate(clusters=30, subscriptions=1, seed=16)
FAST = {"throttle": "off", "retry_after": 0, "lro_polls": 1, "reconcile_seconds": 0}
#: The flux configurations the example policies govern (their branch is ``main``), and the
#: policy that declares each.
GOVERNED = {
    "cluster-config": "cluster-config",
    "edge-baseline": "arc-edge",
    "team-alpha": "team-alpha",
}
#: A secret path: the test looks for it in every output, log and the database.
HOOK_PATH = "/hooks/T0SECRET/B0SECRET/notify-webhook-token-5f0c2a"


@dataclass
class Receiver:
    """A webhook receiver: ``url`` takes POSTs; ``requests`` holds what came in."""

    server: ThreadingHTTPServer
    script: list[int | str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}{HOOK_PATH}"

    def answer(self) -> int | str:
        return self.script.pop(0) if self.script else 200

    def events(self, type_: str | None = None) -> list[dict[str, Any]]:
        """The CloudEvents received (structured mode bodies), optionally of one type."""
        found = [json.loads(r["body"]) for r in self.requests if r["status"] == 200]
        return [e for e in found if type_ is None or e.get("type") == type_]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            answer = receiver.answer()
            if answer == "hang":
                receiver.release.wait(60)
                return
            receiver.requests.append(
                {
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body.decode(),
                    "status": answer,
                }
            )
            self.send_response(int(answer))
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def serving() -> Iterator[Receiver]:
    """A receiver listening on loopback for the ``with`` block."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.daemon_threads = True
    got = Receiver(server)
    server.RequestHandlerClass = _handler(got)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield got
    finally:
        got.release.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serving() as got:
        yield got


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    with running_emulator(FLEET, **FAST) as emu:
        yield emu


def notify_env(
    emu: RunningEmulator, state: Path, receiver: Receiver, **extra: Any
) -> dict[str, str]:
    """The CLI's environment: the emulator, a state dir, and the receiver as a secret
    reference (``env:FLEET_TEST_HOOK``); compliance drops are not announced unless asked
    (``FLEET_NOTIFY_COMPLIANCE_DROP``), so that tests of drift see drift events only."""
    defaults = {
        "FLEET_NOTIFY_URLS": "env:FLEET_TEST_HOOK",
        "FLEET_TEST_HOOK": receiver.url,
        "FLEET_NOTIFY_BACKOFF_SECONDS": "0.2",
        "FLEET_NOTIFY_DELIVER_SECONDS": "5",
        "FLEET_NOTIFY_COMPLIANCE_DROP": "100",
    }
    return emulator_env(emu, state, **{**defaults, **extra})


def sweep(env: dict[str, str], *args: str) -> Result:
    result = CliRunner().invoke(app, ["sweep", "-p", str(POLICIES), "-o", "json", *args], env=env)
    assert result.exit_code in (0, 2), result.stderr + result.stdout
    return result


def drift(emu: RunningEmulator, report: dict[str, Any], count: int) -> list[str]:
    """Change the branch of one governed flux configuration on ``count`` clusters whose
    branch is not drifted yet; returns those clusters' ids."""
    touched = {
        f["resource"].lower()
        for c in report["clusters"]
        for f in c["findings"]
        if str(f.get("path") or "").endswith("/repositoryRef/branch")
    }
    judged = {
        c["id"].lower(): {p["name"] for p in c["policies"] if p["state"] != "exempt"}
        for c in report["clusters"]
        # A compliant cluster is reachable and judged: drift on it counts.
        if c["state"] == "compliant"
    }
    clusters: list[str] = []
    for resource in emu.admin.snapshot()["resources"]:
        if len(clusters) == count:
            break
        rid = resource["id"]
        cluster = rid.split("/providers/Microsoft.KubernetesConfiguration/")[0]
        if (
            not resource["type"].endswith("/fluxConfigurations")
            or resource["name"] not in GOVERNED
            or GOVERNED[resource["name"]] not in judged.get(cluster.lower(), ())
            or rid.lower() in touched
            or cluster in clusters
        ):
            continue
        ref = resource["properties"].get("gitRepository", {}).get("repositoryRef") or {}
        if ref.get("branch") != "main":
            continue
        ref["branch"] = "notify-drift"
        emu.admin.put_resource(resource)
        clusters.append(cluster)
    assert len(clusters) == count, "the fleet has too few governed configurations to drift"
    return clusters


def cluster_ids(event: dict[str, Any]) -> Sequence[str]:
    return sorted({f["clusterId"] for f in event["data"]["findings"]})
