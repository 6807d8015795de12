"""Bad input and hostile callers over HTTP: JSON errors everywhere (422 for bodies, 404, 405,
413 for bodies over the bound), security headers on every answer, the OpenAPI document for
callers with a token, and two operators starting jobs over the same clusters: a cluster
another job is writing is left for retry, never written twice at once."""

from __future__ import annotations

import pytest

from fleet.core.ids import key
from tests.service.conftest import Served


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/jobs", {"maxClusters": 0}),
        ("/api/v1/jobs", {"unknown": True}),
        ("/api/v1/jobs", {"approvalTimeout": "soon"}),
        ("/api/v1/jobs", [1, 2]),
        ("/api/v1/sweeps", {"policies": ["/etc"]}),
    ],
)
def test_invalid_bodies_are_422_with_json_errors(served: Served, path: str, body: object) -> None:
    answer = served.call("POST", path, "operator", json=body)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid-request" and error["details"][0]["location"]


def test_a_body_that_is_not_json_is_422(served: Served) -> None:
    answer = served.call(
        "POST",
        "/api/v1/jobs",
        "operator",
        data=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "invalid-request"


def test_bodies_over_the_bound_are_413(served: Served) -> None:
    big = {"plan": {"padding": "x" * (served.settings.api_max_body_bytes + 10)}}
    answer = served.call("POST", "/api/v1/jobs", "operator", json=big)
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "too-large"

    def chunks():  # no Content-Length: the bound holds while the body streams
        for _ in range(40):
            yield b"x" * 65536

    streamed = served.call(
        "POST",
        "/api/v1/jobs",
        "operator",
        data=chunks(),
        headers={"content-type": "application/json"},
    )
    assert streamed.status_code == 413


def test_unknown_routes_and_methods_are_json(served: Served) -> None:
    missing = served.call("GET", "/api/v1/nothing-here", "viewer")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not-found"
    wrong = served.call("DELETE", "/api/v1/jobs", "admin")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method-not-allowed"
    job = served.call("GET", "/api/v1/jobs/no-such-job", "viewer")
    assert job.status_code == 404 and job.json()["error"]["code"] == "job-not-found"


def test_security_headers_on_every_answer(served: Served) -> None:
    for answer in (
        served.call("GET", "/healthz"),
        served.call("GET", "/api/v1/sweeps"),
        served.call("GET", "/api/v1/jobs", "viewer"),
    ):
        headers = answer.headers
        assert "default-src 'none'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert "server" not in headers
    assert served.call("GET", "/api/v1/jobs", "viewer").headers["cache-control"] == "no-store"


def test_the_openapi_document_needs_a_token_and_lists_the_routes(served: Served) -> None:
    assert served.call("GET", "/openapi.json").status_code == 401
    paths = served.call("GET", "/openapi.json", "viewer").json()["paths"]
    for path in (
        "/healthz",
        "/api/v1/sweeps",
        "/api/v1/sweeps/{ref}",
        "/api/v1/reports/{ref}",
        "/api/v1/jobs",
        "/api/v1/jobs/{ref}",
        "/api/v1/jobs/{ref}/approve",
        "/api/v1/jobs/{ref}/cancel",
        "/api/v1/kill-switch",
    ):
        assert path in paths, path
    assert served.call("GET", "/docs").status_code == 404  # no CDN-loading docs page


def test_the_kill_switch_refuses_new_jobs_with_409(served: Served) -> None:
    engaged = served.call(
        "PUT", "/api/v1/kill-switch", "admin", json={"engaged": True, "reason": "incident"}
    )
    assert engaged.status_code == 200 and engaged.json()["engaged"] is True
    try:
        refused = served.call("POST", "/api/v1/jobs", "operator", json={})
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "kill-switch-engaged"
        assert "incident" in refused.json()["error"]["message"]
    finally:
        served.call("PUT", "/api/v1/kill-switch", "admin", json={"engaged": False})
    events = served.call("GET", "/api/v1/audit?action=kill-switch.engage", "viewer").json()
    assert events["events"][0]["actor"]["oid"] == "oid-admin"


def test_two_operators_never_write_one_cluster_at_once(served: Served) -> None:
    """Another job holds one cluster's write lock (it is writing it): a new job leaves that
    cluster for retry, writes nothing to it, and writes the others."""
    clusters = [
        r["id"]
        for r in served.emu.admin.snapshot()["resources"]
        if r["type"].endswith(("/managedClusters", "/connectedClusters"))
    ]
    held = clusters[0]
    with served.history() as history:
        assert history.lock_cluster(held, "the-other-job", ttl_seconds=600)
    try:
        started = served.call("POST", "/api/v1/jobs", "operator", json={})
        assert started.status_code == 202, started.text
        job = started.json()["id"]
        served.wait_job(
            job,
            lambda v: (
                v.get("waitingFor") == "rest" or v["job"]["status"] in ("succeeded", "completed")
            ),
        )
        approvals = [
            served.token("approver"),
            served.issuer.token("oid-approver-2", ["Fleet.Approver"]),
        ]
        for token in approvals:
            served.call("POST", f"/api/v1/jobs/{job}/approve", token=token, json={})
        view = served.wait_job(job, lambda v: v["job"]["status"] in ("succeeded", "completed"))
    finally:
        with served.history() as history:
            history.unlock_cluster(held, "the-other-job")
    rows = {key(c["clusterId"]): c for c in view["clusters"]}
    assert rows[key(held)]["status"] == "retry"
    assert "another job (the-other-job)" in rows[key(held)]["reason"]
    report = served.call("GET", f"/api/v1/jobs/{job}/report", "viewer").json()
    mine = next(c for c in report["clusters"] if key(c["id"]) == key(held))
    assert mine["category"] == "locked" and mine["writes"] == []
    assert any(c["status"] == "fixed" for c in report["clusters"])
    with served.history() as history:
        assert history.cluster_lock_holder(clusters[1]) is None  # released once settled
