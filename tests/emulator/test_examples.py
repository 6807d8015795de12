"""The spec's example requests replay through the SDK and answer in the examples' shapes.

For every example file under ``tests/arm-spec/.../examples``: build the SDK model from the
example's request body (``Model.deserialize``), call the SDK method with the example's path
parameters, and compare what the emulator answered (recorded raw responses: the initial one and,
for LROs, the final GET) with the example's response of the same status: every key of the
example must be there with a value of the same JSON type (``null`` in either matches anything:
the spec marks those fields ``x-nullable``), and every header the example shows must be sent.

State the examples presuppose (a Get needs the resource to exist) is made by PUTting the
example's own response body first; operation ids are the ones the emulator issued (an example's
``99999999-...`` id cannot exist).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.mgmt.kubernetesconfiguration import SourceControlConfigurationClient
from azure.mgmt.kubernetesconfiguration.v2023_05_01 import models

from fleet.emulator.testing import RunningEmulator, running_emulator

from .armspec import EXAMPLES_BY_VERSION, load_example
from .conftest import FAST, Recorded, Recorder, kc_client

#: The 2023-05-01 examples (test_examples_versions.py replays the newer versions').
EXAMPLES = EXAMPLES_BY_VERSION["2023-05-01"]
SUB, RG, CLUSTER = "subId1", "rg1", "clusterName1"
CID = (
    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Kubernetes/connectedClusters/"
    + CLUSTER
)
SNAPSHOT = {
    "kind": "FleetSnapshot",
    "subscriptions": [{"subscriptionId": SUB, "displayName": "examples"}],
    "extensionTypeVersions": {
        "microsoft.flux": {"Stable": ["1.17.3"]},
        "azuremonitor-containers": {"Preview": ["0.1.4"], "Stable": ["0.1.3"]},
    },
    "resources": [
        {
            "id": f"/subscriptions/{SUB}/resourceGroups/{RG}",
            "type": "Microsoft.Resources/resourceGroups",
            "name": RG,
            "location": "westeurope",
            "tags": {},
        },
        {
            "id": CID,
            "type": "Microsoft.Kubernetes/connectedClusters",
            "name": CLUSTER,
            "location": "westeurope",
            "tags": {},
            "properties": {"connectivityStatus": "Connected", "kubernetesVersion": "1.29.2"},
        },
    ],
}


def shape_mismatches(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where ``actual`` lacks a key of ``expected`` or has a value of another JSON type."""
    if expected is None or actual is None:
        return []
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path or '/'}: expected an object, got {type(actual).__name__}"]
        out: list[str] = []
        for key, value in expected.items():
            if key not in actual:
                if value is not None:
                    out.append(f"{path}/{key}: missing")
                continue
            out += shape_mismatches(value, actual[key], f"{path}/{key}")
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{path}: expected an array, got {type(actual).__name__}"]
        return [
            m
            for i, (e, a) in enumerate(zip(expected, actual, strict=False))
            for m in shape_mismatches(e, a, f"{path}/{i}")
        ]
    kinds = (bool, int, float, str)
    want = next(k for k in kinds if isinstance(expected, k))
    if not isinstance(actual, want) or (want is int and isinstance(actual, bool)):
        return [f"{path}: expected {want.__name__}, got {type(actual).__name__}"]
    return []


def assert_like(example: dict[str, Any], response: Recorded, *, headers: bool = True) -> None:
    """``response`` has the shape (and headers) of the example's response of the same status.

    ``headers=False`` for the final GET of an LRO, compared with the body of the example's 200
    PUT response (the headers of a PUT are not a GET's).
    """
    expected = example["responses"].get(str(response.status))
    assert expected is not None, f"the example has no {response.status} response"
    assert shape_mismatches(expected.get("body"), response.body) == []
    if expected.get("body") is not None:
        assert response.body is not None
    if headers:
        missing = [h for h in expected.get("headers", {}) if h.lower() not in response.headers]
        assert missing == []


def _args(example: dict[str, Any]) -> tuple[str, str, str, str]:
    p = example["parameters"]
    return p["resourceGroupName"], p["clusterRp"], p["clusterResourceName"], p["clusterName"]


def _example(name: str) -> dict[str, Any]:
    return load_example(next(p for p in EXAMPLES if p.stem == name))


def _op_id(response: Recorded) -> str:
    return response.headers["azure-asyncoperation"].split("/operations/")[1].split("?")[0]


def _final_get(rec: Recorder) -> Recorded:
    return next(r for r in reversed(rec.responses) if r.method == "GET")


Replay = Callable[[dict[str, Any], SourceControlConfigurationClient, Recorder], None]


def create_extension(
    ex: dict[str, Any], kc: SourceControlConfigurationClient, rec: Recorder
) -> None:
    p = ex["parameters"]
    body = models.Extension.deserialize(p["extension"])
    kc.extensions.begin_create(*_args(ex), p["extensionName"], body, polling_interval=0).result()
    assert_like(ex, rec.responses[0])
    assert rec.responses[0].status == 201
    assert_like(ex, _final_get(rec), headers=False)
    rec.clear()  # the same PUT on the existing extension: the example's 200
    kc.extensions.begin_create(*_args(ex), p["extensionName"], body, polling_interval=0).result()
    assert rec.responses[0].status == 200
    assert_like(ex, rec.responses[0])
    assert "secretKeyValue01" not in str(rec.responses)


def get_extension(ex: dict[str, Any], kc: SourceControlConfigurationClient, rec: Recorder) -> None:
    p = ex["parameters"]
    kc.extensions.begin_create(
        *_args(ex),
        p["extensionName"],
        models.Extension.deserialize(ex["responses"]["200"]["body"]),
        polling_interval=0,
    ).result()
    rec.clear()
    got = kc.extensions.get(*_args(ex), p["extensionName"])
    assert_like(ex, rec.responses[0])
    assert got.current_version == "0.1.4" and got.provisioning_state == "Succeeded"


def list_extensions(
    ex: dict[str, Any], kc: SourceControlConfigurationClient, rec: Recorder
) -> None:
    for item in ex["responses"]["200"]["body"]["value"]:
        kc.extensions.begin_create(
            *_args(ex), item["name"], models.Extension.deserialize(item), polling_interval=0
        ).result()
    rec.clear()
    listed = list(kc.extensions.list(*_args(ex)))
    assert [e.name for e in listed] == [i["name"] for i in ex["responses"]["200"]["body"]["value"]]
    assert listed[2].plan.product == "azure-vote-standard-offer-id"
    assert_like(ex, rec.responses[0])


def patch_extension(
    ex: dict[str, Any], kc: SourceControlConfigurationClient, rec: Recorder
) -> None:
    p = ex["parameters"]
    create = _example("CreateExtension")["parameters"]["extension"]
    kc.extensions.begin_create(
        *_args(ex), p["extensionName"], models.Extension.deserialize(create), polling_interval=0
    ).result()
    rec.clear()
    patch = models.PatchExtension.deserialize(p["patchExtension"])
    kc.extensions.begin_update(*_args(ex), p["extensionName"], patch, polling_interval=0).result()
    assert rec.responses[0].status == 202  # protected settings always count as a change
    assert_like(ex, rec.responses[0])
    final = _final_get(rec)
    assert final.status == 200
    assert_like(ex, final, headers=False)


def delete_extension(
    ex: dict[str, Any], kc: SourceControlConfigurationClient, rec: Recorder
) -> None:
    _delete(ex, kc, rec, "extensions", "extensionName")


def delete_flux_configuration(
    ex: dict[str, Any], kc: SourceControlConfigurationClient, rec: Recorder
) -> None:
    _delete(ex, kc, rec, "flux_configurations", "fluxConfigurationName")


def _delete(
    ex: dict[str, Any], kc: SourceControlConfigurationClient, rec: Recorder, group: str, key: str
) -> None:
    name = ex["parameters"][key]
    ops = getattr(kc, group)
    for n in (name, f"{name}-2"):
        if group == "extensions":
            ops.begin_create(
                *_args(ex), n, models.Extension(extension_type="microsoft.flux"), polling_interval=0
            ).result()
        else:
            body = models.FluxConfiguration.deserialize(
                _example("CreateFluxConfiguration")["parameters"]["fluxConfiguration"]
            )
            ops.begin_create_or_update(*_args(ex), n, body, polling_interval=0).result()
    rec.clear()
    ops.begin_delete(*_args(ex), name, polling_interval=0).result()  # 202
    ops.begin_delete(*_args(ex), name).result()  # now absent: 204
    ops.begin_delete(*_args(ex), f"{name}-2", force_delete=True).result()  # 200
    deletes = rec.of("DELETE")
    assert [r.status for r in deletes] == [202, 204, 200]
    for response in deletes:
        assert_like(ex, response)


def get_extension_operation(
    ex: dict[str, Any], kc: SourceControlConfigurationClient, rec: Recorder
) -> None:
    p = ex["parameters"]
    kc.extensions.begin_create(
        *_args(ex),
        p["extensionName"],
        models.Extension(extension_type="microsoft.flux"),
        polling_interval=0,
    ).result()
    op_id = _op_id(rec.responses[0])
    rec.clear()
    status = kc.operation_status.get(*_args(ex), p["extensionName"], op_id)
    assert status.status == "Succeeded" and status.name == op_id
    assert_like(ex, rec.responses[0])


def create_flux_configuration(
    ex: dict[str, Any], kc: SourceControlConfigurationClient, rec: Recorder
) -> None:
    p = ex["parameters"]
    body = models.FluxConfiguration.deserialize(p["fluxConfiguration"])
    done = kc.flux_configurations.begin_create_or_update(
        *_args(ex), p["fluxConfigurationName"], body, polling_interval=0
    ).result()
    assert rec.responses[0].status == 201
    assert_like(ex, rec.responses[0])
    assert_like(ex, _final_get(rec), headers=False)
    rec.clear()
    kc.flux_configurations.begin_create_or_update(
        *_args(ex), p["fluxConfigurationName"], body, polling_interval=0
    ).result()
    assert rec.responses[0].status == 200
    assert_like(ex, rec.responses[0])
    assert done.kustomizations["srs-kustomization2"].depends_on == ["srs-kustomization1"]
    assert done.git_repository.https_ca_cert == "ZXhhbXBsZWNlcnRpZmljYXRl"


def get_flux_configuration(
    ex: dict[str, Any], kc: SourceControlConfigurationClient, rec: Recorder
) -> None:
    p = ex["parameters"]
    body = models.FluxConfiguration.deserialize(ex["responses"]["200"]["body"])
    kc.flux_configurations.begin_create_or_update(
        *_args(ex), p["fluxConfigurationName"], body, polling_interval=0
    ).result()
    rec.clear()
    got = kc.flux_configurations.get(*_args(ex), p["fluxConfigurationName"])
    assert_like(ex, rec.responses[0])
    assert got.kustomizations["srs-kustomization1"].post_build.substitute == {
        "cluster_env": "prod",
        "replica_count": "2",
    }


def list_flux_configurations(
    ex: dict[str, Any], kc: SourceControlConfigurationClient, rec: Recorder
) -> None:
    items = ex["responses"]["200"]["body"]["value"]
    # The example lists the same name twice; distinct names make two resources of its shape.
    names = [f"{item['name']}-{i}" for i, item in enumerate(items)]
    for name, item in zip(names, items, strict=True):
        kc.flux_configurations.begin_create_or_update(
            *_args(ex), name, models.FluxConfiguration.deserialize(item), polling_interval=0
        ).result()
    rec.clear()
    assert [c.name for c in kc.flux_configurations.list(*_args(ex))] == names
    assert_like(ex, rec.responses[0])


def patch_flux_configuration(
    ex: dict[str, Any], kc: SourceControlConfigurationClient, rec: Recorder
) -> None:
    p = ex["parameters"]
    create = _example("CreateFluxConfiguration")["parameters"]["fluxConfiguration"]
    kc.flux_configurations.begin_create_or_update(
        *_args(ex),
        p["fluxConfigurationName"],
        models.FluxConfiguration.deserialize(create),
        polling_interval=0,
    ).result()
    rec.clear()
    patch = models.FluxConfigurationPatch.deserialize(p["fluxConfigurationPatch"])
    done = kc.flux_configurations.begin_update(
        *_args(ex), p["fluxConfigurationName"], patch, polling_interval=0
    ).result()
    assert rec.responses[0].status == 202
    assert_like(ex, rec.responses[0])
    final = _final_get(rec)
    assert final.status == 200
    assert_like(ex, final, headers=False)
    # The merge semantics the example shows: k1 removed, k2 merged, k3 added, url replaced.
    assert set(done.kustomizations) == {"srs-kustomization2", "srs-kustomization3"}
    k2 = done.kustomizations["srs-kustomization2"]
    assert (k2.path, k2.sync_interval_in_seconds, k2.timeout_in_seconds) == (
        "./test/alt-path",
        300,
        600,
    )
    assert (
        done.git_repository.url
        == "https://github.com/jonathan-innis/flux2-kustomize-helm-example.git"
    )
    assert done.git_repository.repository_ref.branch == "master"
    assert done.suspend is True


def get_flux_operation(
    ex: dict[str, Any], kc: SourceControlConfigurationClient, rec: Recorder
) -> None:
    p = ex["parameters"]
    body = models.FluxConfiguration.deserialize(
        _example("CreateFluxConfiguration")["parameters"]["fluxConfiguration"]
    )
    kc.flux_configurations.begin_create_or_update(
        *_args(ex), p["fluxConfigurationName"], body, polling_interval=0
    ).result()
    op_id = _op_id(rec.responses[0])
    rec.clear()
    status = kc.flux_config_operation_status.get(*_args(ex), p["fluxConfigurationName"], op_id)
    assert status.status == "Succeeded"
    assert_like(ex, rec.responses[0])


def list_operations(
    ex: dict[str, Any], kc: SourceControlConfigurationClient, rec: Recorder
) -> None:
    kc.extensions.begin_create(
        *_args(ex),
        "cassandraExtension1",
        models.Extension(extension_type="microsoft.flux"),
        polling_interval=0,
    ).result()
    kc.extensions.begin_delete(*_args(ex), "cassandraExtension1", polling=False)
    kc.extensions.begin_create(
        *_args(ex),
        "ClusterMonitor",
        models.Extension(extension_type="microsoft.flux"),
        polling=False,
    )
    rec.clear()
    running = list(kc.operation_status.list(*_args(ex)))
    assert [o.status for o in running] == ["Deleting", "Creating"]
    assert_like(ex, rec.responses[0])


REPLAYS: dict[str, Replay] = {
    "CreateExtension": create_extension,
    "GetExtension": get_extension,
    "ListExtensions": list_extensions,
    "PatchExtension": patch_extension,
    "DeleteExtension": delete_extension,
    "GetExtensionAsyncOperationStatus": get_extension_operation,
    "CreateFluxConfiguration": create_flux_configuration,
    "GetFluxConfiguration": get_flux_configuration,
    "ListFluxConfigurations": list_flux_configurations,
    "PatchFluxConfiguration": patch_flux_configuration,
    "DeleteFluxConfiguration": delete_flux_configuration,
    "GetFluxConfigurationAsyncOperationStatus": get_flux_operation,
    "ListAsyncOperationStatus": list_operations,
}


@pytest.fixture
def example_emulator() -> Iterator[RunningEmulator]:
    with running_emulator(SNAPSHOT, **FAST) as emu:
        yield emu


def test_every_example_file_has_a_replay() -> None:
    assert len(EXAMPLES) >= 13
    assert sorted(p.stem for p in EXAMPLES) == sorted(REPLAYS)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: Path(p).stem)
def test_example_replays_through_the_sdk(path: Path, example_emulator: RunningEmulator) -> None:
    example = load_example(path)
    assert example["parameters"]["subscriptionId"] == SUB
    rec = Recorder()
    kc = kc_client(example_emulator, sub=SUB, raw_response_hook=rec)
    REPLAYS[path.stem](example, kc, rec)


def test_shape_comparison_can_fail() -> None:
    assert shape_mismatches({"a": 1, "b": {"c": "x"}}, {"a": 2, "b": {"c": "y"}, "extra": 1}) == []
    assert shape_mismatches({"a": 1}, {}) == ["/a: missing"]
    assert shape_mismatches({"a": None}, {}) == []
    assert shape_mismatches({"a": True}, {"a": 1}) == ["/a: expected bool, got int"]
    assert shape_mismatches({"a": 1}, {"a": True}) == ["/a: expected int, got bool"]
    assert shape_mismatches({"a": [{"b": "x"}]}, {"a": [{"b": 3}]}) == [
        "/a/0/b: expected str, got int"
    ]
    assert shape_mismatches({"a": {"b": 1}}, {"a": "s"}) == ["/a: expected an object, got str"]
