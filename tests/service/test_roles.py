"""Every route's answer per role: 401 without a token, 403 without the role, 2xx with it.

State-changing routes are called so that they succeed without writing to the fleet: a job of
a policy the server does not have (accepted, then refused while it is prepared), approvals
and cancels of a job recorded for the test, the kill switch engaged and released.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fleet.core.duties import Actor
from tests.service.conftest import PEOPLE, Served

JOB = "20260101T000000Z-matrix"
ALL = set(PEOPLE) - {"nobody"}
ACT = {"operator", "admin"}

#: (method, path, body, the callers that get 2xx)
ROUTES: list[tuple[str, str, object, set[str]]] = [
    ("GET", "/readyz", None, ALL),
    ("GET", "/metrics", None, ALL),
    ("GET", "/openapi.json", None, ALL),
    ("GET", "/api/v1/sweeps", None, ALL),
    ("GET", "/api/v1/sweeps/latest", None, ALL),
    ("GET", "/api/v1/sweeps/latest/clusters", None, ALL),
    ("GET", "/api/v1/trends", None, ALL),
    ("GET", "/api/v1/reports/latest?format=md", None, ALL),
    ("GET", "/api/v1/reports/latest?format=junit", None, ALL),
    ("GET", "/api/v1/jobs", None, ALL),
    ("GET", f"/api/v1/jobs/{JOB}", None, ALL),
    ("GET", f"/api/v1/jobs/{JOB}/report", None, ALL),
    ("GET", f"/api/v1/jobs/{JOB}/writes", None, ALL),
    ("GET", "/api/v1/kill-switch", None, ALL),
    ("GET", "/api/v1/audit", None, ALL),
    ("POST", "/api/v1/sweeps", {}, ACT),
    ("POST", "/api/v1/jobs", {"policy": "not-a-policy-of-the-server"}, ACT),
    ("POST", f"/api/v1/jobs/{JOB}/approve", {"wave": "rest"}, {"approver", "admin"}),
    ("POST", f"/api/v1/jobs/{JOB}/cancel", None, ACT),
    ("PUT", "/api/v1/kill-switch", {"engaged": False}, {"admin"}),
]


@pytest.fixture(scope="module", autouse=True)
def recorded(served: Served) -> Iterator[None]:
    """A finished sweep to read, and a job waiting at its approval gate."""
    answer = served.call("POST", "/api/v1/sweeps", "operator", json={})
    assert answer.status_code == 202, answer.text
    served.server.service.engine.join(60)  # type: ignore[union-attr]
    with served.history() as history:
        history.create_job(
            kind="remediation",
            job_id=JOB,
            status="awaiting-approval",
            options={
                "waves": [{"name": "rest", "approval": True, "approvers": 5}],
                "createdBy": Actor("Creator", "oid-creator", "api").to_json(),
            },
        )
        history.update_job(JOB, summary={"progress": {"waitingFor": "rest", "wave": "rest"}})
    yield


def _id(value: object) -> str:
    """Stable test ids (a set's order changes between processes, and pytest-xdist workers must
    collect the same ids)."""
    return ",".join(sorted(value)) if isinstance(value, set) else str(value)


@pytest.mark.parametrize(("method", "path", "body", "allowed"), ROUTES, ids=_id)
def test_the_role_matrix(
    served: Served, method: str, path: str, body: object, allowed: set[str]
) -> None:
    anonymous = served.call(method, path, json=body)
    assert anonymous.status_code == 401, anonymous.text
    for who in PEOPLE:
        answer = served.call(method, path, who, json=body)
        if who in allowed:
            assert 200 <= answer.status_code < 300, (who, answer.status_code, answer.text)
        else:
            assert answer.status_code == 403, (who, answer.status_code, answer.text)
            assert answer.json()["error"]["code"] == "forbidden"


def test_healthz_needs_no_token_and_me_needs_any_valid_one(served: Served) -> None:
    assert served.call("GET", "/healthz").json() == {"status": "ok"}
    assert served.call("GET", "/api/v1/me").status_code == 401
    assert served.call("GET", "/api/v1/me", "nobody").json()["roles"] == []


def test_resume_is_an_operators_call(served: Served) -> None:
    for who in PEOPLE:
        answer = served.call("POST", f"/api/v1/jobs/{JOB}/resume", who, json={})
        # the job looks alive (its heartbeat is fresh): an operator is refused by the job,
        # not by its role
        expected = 409 if who in ACT else 403
        assert answer.status_code == expected, (who, answer.text)
