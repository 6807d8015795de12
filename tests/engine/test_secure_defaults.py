"""Secure by default (issue 13, item 1; docs/security.md, Security-relevant defaults).

A policy that leaves a source's ``insecure`` out never produces a PUT with ``insecure: true``,
whatever the cluster shows, and a TLS bucket created by the Azure CLI (which sends
``insecure: false``) is compliant with it. ARM's own swagger default for ``bucket.insecure``
is ``true``: fleet always says ``false`` unless the policy says ``true`` in so many words.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet.core.vocabulary import Code, State
from fleet.desired.flux import flux_body
from fleet.plan.actions import ActionKind
from fleet.plan.pipeline import judge
from tests.engine.fixtures import (
    CATALOG,
    NOW,
    aks,
    applicable,
    baseline,
    extension_json,
    flux_json,
    observe,
    policy,
)

F = aks()

#: What ``az k8s-configuration flux create --kind bucket`` sends (insecure false unless
#: ``--bucket-insecure``), as ARM then returns it.
CLI_BUCKET = {
    "url": "https://s3.eu-west-1.amazonaws.com",
    "bucketName": "manifests",
    "insecure": False,
    "timeoutInSeconds": 600,
    "syncIntervalInSeconds": 600,
    "accessKey": None,
    "localAuthRef": None,
}


def _observed_bucket(**bucket: Any) -> dict[str, Any]:
    body = flux_json(
        F.id,
        {"name": "objects", "namespace": "objects"},
        sourceKind="Bucket",
        gitRepository=None,
        bucket={**CLI_BUCKET, **bucket},
    )
    return body


def _policy(source: str, spec: dict[str, Any]) -> Any:
    return policy(
        "objects",
        fluxConfigurations=[{"name": "objects", "namespace": "objects", source: spec}],
    )


def _puts(observed_configs: list[dict[str, Any]], pol: Any) -> list[dict[str, Any]]:
    result = judge(
        observe(F, extensions=[extension_json(F.id)], configs=observed_configs),
        applicable(baseline(), pol),
        catalog=CATALOG,
        now=NOW,
    )
    return [
        a.body or {}
        for a in result.plan.actions
        if a.kind is ActionKind.PUT_FLUX_CONFIG and a.body is not None
    ]


def test_a_cli_created_tls_bucket_complies_with_a_policy_that_omits_insecure() -> None:
    pol = _policy("bucket", {"url": CLI_BUCKET["url"], "bucketName": "manifests"})
    result = judge(
        observe(F, extensions=[extension_json(F.id)], configs=[_observed_bucket()]),
        applicable(baseline(), pol),
        catalog=CATALOG,
        now=NOW,
    )
    assert result.verdict.state == State.COMPLIANT, result.verdict.findings
    assert result.plan.actions == []


def test_an_arm_defaulted_insecure_bucket_is_drift_and_the_fix_is_tls() -> None:
    pol = _policy("bucket", {"url": CLI_BUCKET["url"], "bucketName": "manifests"})
    result = judge(
        observe(F, extensions=[extension_json(F.id)], configs=[_observed_bucket(insecure=True)]),
        applicable(baseline(), pol),
        catalog=CATALOG,
        now=NOW,
    )
    [drift] = [f for f in result.verdict.findings if f.code is Code.FLUX_CONFIG_DRIFT]
    assert (drift.path, drift.desired, drift.actual) == ("/properties/bucket/insecure", False, True)
    [put] = [a for a in result.plan.actions if a.kind is ActionKind.PUT_FLUX_CONFIG]
    assert put.body is not None and put.body["properties"]["bucket"]["insecure"] is False


def test_only_a_policy_that_says_true_gets_plain_http() -> None:
    pol = _policy("bucket", {"url": "http://minio:9000", "bucketName": "m", "insecure": True})
    [body] = _puts([], pol)
    assert body["properties"]["bucket"]["insecure"] is True


def test_the_desired_body_always_says_insecure_false() -> None:
    for source, spec in (
        ("bucket", {"url": "https://s3", "bucketName": "x"}),
        ("ociRepository", {"url": "oci://example.azurecr.io/app"}),
    ):
        body, _ = flux_body(_policy(source, spec).spec.flux_configurations[0])
        assert body["properties"][source]["insecure"] is False


# --- property: no policy without insecure: true ever gets a PUT with insecure: true ---------

urls = st.sampled_from(["https://s3.example", "http://minio:9000", "https://storage.example"])
maybe_secure = st.sampled_from([None, False])
intervals = st.none() | st.integers(60, 3600)


@st.composite
def bucket_policies(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    source = draw(st.sampled_from(["bucket", "ociRepository"]))
    spec: dict[str, Any] = {"url": draw(urls)}
    if source == "bucket":
        spec["bucketName"] = draw(st.sampled_from(["a", "manifests"]))
        spec["accessKey"] = draw(st.none() | st.just("AKIA0000"))
    else:
        spec["url"] = "oci://example.azurecr.io/" + draw(st.sampled_from(["a", "b"]))
        spec["repositoryRef"] = draw(
            st.none() | st.fixed_dictionaries({"tag": st.sampled_from(["latest", "v1"])})
        )
        spec["useWorkloadIdentity"] = draw(st.none() | st.booleans())
    spec["insecure"] = draw(maybe_secure)
    spec["syncIntervalInSeconds"] = draw(intervals)
    return source, {k: v for k, v in spec.items() if v is not None}


@st.composite
def observed_states(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Nothing, or the configuration as ARM holds it: any insecure, or none at all."""
    kind = draw(st.sampled_from(["missing", "bucket", "oci"]))
    if kind == "missing":
        return []
    insecure = draw(st.sampled_from([True, False, None, "absent"]))
    if kind == "bucket":
        body = _observed_bucket()
        source = body["properties"]["bucket"]
    else:
        body = flux_json(
            F.id,
            {"name": "objects", "namespace": "objects"},
            sourceKind="OCIRepository",
            gitRepository=None,
            ociRepository={"url": "oci://example.azurecr.io/a", "insecure": False},
        )
        source = body["properties"]["ociRepository"]
    if insecure == "absent":
        source.pop("insecure", None)
    else:
        source["insecure"] = insecure
    return [copy.deepcopy(body)]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chosen=bucket_policies(), configs=observed_states())
def test_a_policy_without_insecure_true_never_puts_insecure_true(
    chosen: tuple[str, dict[str, Any]], configs: list[dict[str, Any]]
) -> None:
    source, spec = chosen
    for body in _puts(configs, _policy(source, spec)):
        assert body["properties"][source]["insecure"] is False
