"""A fleet serve API for a test module: the tests' own issuer, an emulator serving a small
generated fleet, policies with an approval gate needing two approvers, and the real server on
loopback (in this process), driven over HTTP with ``requests``."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from fleet.emulator.testing import RunningEmulator, running_emulator
from fleet.record.history import History
from fleet.service.server import ApiServer
from fleet.settings import Settings
from tests.distributed.test_parity import FAST, FLEET
from tests.distributed.test_parity import POLICY as PARITY_POLICY
from tests.service.issuer import AUDIENCE, LocalIssuer

#: The parity test's fleet and policy (its second wave needs two approvers here).
POLICY = (
    PARITY_POLICY.replace("approval: APPROVAL", "approval: true, approvers: 2")
    .replace("MAXC", "4")
    .replace("BUDGET", "100%")
)
#: The secret the policy references: it must never appear in an answer.
SECRET = "served-token-0123456789abcdef"
assert "approvers: 2" in POLICY

VIEWER, OPERATOR, APPROVER, ADMIN = (
    "Fleet.Viewer",
    "Fleet.Operator",
    "Fleet.Approver",
    "Fleet.Admin",
)
#: Callers of the matrix tests: oid -> roles.
PEOPLE: dict[str, list[str]] = {
    "nobody": [],
    "viewer": [VIEWER],
    "operator": [OPERATOR],
    "approver": [APPROVER],
    "admin": [ADMIN],
}


def policy_dir(tmp: Path, token_file: Path) -> Path:
    folder = tmp / "policies"
    folder.mkdir(parents=True, exist_ok=True)
    token_file.write_text(SECRET + "\n")
    (folder / "served.yaml").write_text(POLICY.replace("TOKEN", str(token_file)))
    return folder


def settings_for(emu: RunningEmulator, state: Path, issuer: LocalIssuer, **more: Any) -> Settings:
    return Settings(
        arm_endpoint=emu.endpoint,
        arm_ca_bundle=str(emu.ca_bundle),
        auth="emulator",
        state_dir=state,
        database_url=f"sqlite:///{state / 'fleet.db'}",
        lro_poll_interval=0,
        api_issuer=issuer.issuer,
        api_jwks_url=issuer.jwks_url,
        api_audience=[AUDIENCE],
        **more,
    )


@dataclass
class Served:
    """A running API and what it stands on."""

    url: str
    issuer: LocalIssuer
    emu: RunningEmulator
    settings: Settings
    policies: Path
    server: ApiServer

    def token(self, who: str, roles: list[str] | None = None) -> str:
        return self.issuer.token(f"oid-{who}", PEOPLE[who] if roles is None else roles)

    def call(
        self,
        method: str,
        path: str,
        who: str | None = None,
        *,
        token: str | None = None,
        **kw: Any,
    ) -> requests.Response:
        headers = dict(kw.pop("headers", {}))
        if token is None and who is not None:
            token = self.token(who)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(method, self.url + path, headers=headers, timeout=60, **kw)

    def history(self) -> History:
        return History(self.settings.effective_database_url)

    def wait_job(
        self, job_id: str, until: Callable[[dict[str, Any]], bool], timeout: float = 90
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            answer = self.call("GET", f"/api/v1/jobs/{job_id}", "viewer")
            if answer.status_code == 200:
                last = answer.json()
                if until(last):
                    return last
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} did not get there: {last.get('job')}")


@contextmanager
def serving(tmp: Path, issuer: LocalIssuer, **more: Any) -> Iterator[Served]:
    with running_emulator(copy.deepcopy(FLEET), **FAST) as emu:
        policies = policy_dir(tmp, tmp / "git-token")
        settings = settings_for(emu, tmp / "state", issuer, **more)
        with ApiServer(settings, [policies]) as server:
            yield Served(server.url, issuer, emu, settings, policies, server)


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    found = LocalIssuer()
    yield found
    found.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, issuer: LocalIssuer) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("served"), issuer) as found:
        yield found
