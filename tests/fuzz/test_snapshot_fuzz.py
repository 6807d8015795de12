"""Fuzzing the snapshot loader and the emulator built from it (docs/contracts.md, Fleet snapshot).

Whatever the input — random JSON structures, a valid fleet with random parts replaced or
removed, random bytes, duplicate keys, deep nesting, huge files, odd Unicode — loading either
raises ``SnapshotError`` whose issues are single ``LABEL: where: what`` lines naming the
place, or gives a snapshot the emulator serves without an internal error: every read a sweep
makes (subscriptions, groups, resource lists, clusters, their children, the version
catalogue, Resource Graph rows, the dump) answers or raises an ARM error, never anything
else. ``fleet emulator serve --snapshot`` on a file that does not load exits 2 with the
same lines and no traceback.

Examples per test: at least ``EXAMPLES`` (bounded for CI); ``pytest tests/fuzz
--hypothesis-profile fuzz-long`` runs thousands.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from fleet.cli import app
from fleet.emulator import snapshot as snap
from fleet.emulator.backend import Backend
from fleet.emulator.errors import ArmError
from fleet.emulator.generate import generate
from fleet.emulator.options import EmulatorOptions
from fleet.emulator.server import EmulatorServer
from fleet.emulator.store import ClusterRef
from tests.fuzz import EXAMPLES

BASE = generate(clusters=6, subscriptions=2, seed=3)
LABEL = "fuzz.json"
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

text_st = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
odd_text = st.one_of(
    text_st,
    st.sampled_from(
        [
            "",
            " ",
            "/",
            "//",
            "\u0000",
            "é",
            "日本",
            "🙂",
            "x" * 300,
            "1.²",
            "1.17.3",
            "Stable",
            "microsoft.flux",
            "Running",
            "Stopped",
            "Offline",
            "2026-13-45T99:99:99Z",
            "Microsoft.Resources/resourceGroups",
            "Microsoft.ContainerService/managedClusters",
            "Microsoft.KubernetesConfiguration/extensions",
            "/subscriptions/00000000-0000-0000-0000-000000000001",
            "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg",
            "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Kubernetes/"
            "connectedClusters/c/providers/Microsoft.KubernetesConfiguration/"
            "extensions/flux",
        ]
    ),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    odd_text,
)
keys = st.one_of(
    text_st,
    st.sampled_from(
        [
            "kind",
            "subscriptions",
            "resources",
            "extensionTypeVersions",
            "emulator",
            "id",
            "type",
            "name",
            "location",
            "tags",
            "properties",
            "subscriptionId",
            "displayName",
            "state",
            "tenantId",
            "faults",
            "failingSources",
            "operations",
            "reconciling",
            "action",
            "count",
            "powerState",
            "code",
            "agentPoolProfiles",
            "vmSize",
            "connectivityStatus",
            "lastConnectivityTime",
            "extensionType",
            "provisioningState",
            "currentVersion",
            "configurationProtectedSettings",
            "azureBlob",
            "accountKey",
            "kustomizations",
            "resourceId",
            "startTime",
            "due",
            "target",
            "mode",
            "pathRegex",
            "delaySeconds",
        ]
    ),
)
trees = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)
    ),
    max_leaves=20,
)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out.extend(paths(v, (*prefix, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(paths(v, (*prefix, i)))
    return out


def mutate(doc: Any, data: st.DataObject) -> Any:
    """The document with a few random places replaced by random JSON, removed or duplicated."""
    doc = copy.deepcopy(doc)
    places = paths(doc)
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        where = data.draw(st.sampled_from(places), label="where")
        if not where:
            return data.draw(trees, label="whole")
        parent: Any = doc
        try:
            for part in where[:-1]:
                parent = parent[part]
            last = where[-1]
            action = data.draw(st.sampled_from(["replace", "delete", "duplicate", "scalar"]))
            if action == "delete":
                del parent[last]
            elif action == "duplicate" and isinstance(parent, list):
                parent.append(copy.deepcopy(parent[last]))
            elif action == "scalar":
                parent[last] = data.draw(scalars, label="scalar")
            else:
                parent[last] = data.draw(trees, label="tree")
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed the place
    return doc


def check_issues(exc: snap.SnapshotError) -> None:
    assert exc.issues
    for issue in exc.issues:
        assert issue.startswith(f"{LABEL}: "), issue
        assert "\n" not in issue and "Traceback" not in issue
        assert issue.count(": ") >= 1


def serve_reads(backend: Backend) -> None:
    """Every read a sweep (ARM or Graph inventory) makes, straight on the backend."""

    def call(fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except ArmError:
            return []

    backend.list_tenants()
    for sub in call(backend.list_subscriptions):
        sid = sub["subscriptionId"]
        call(backend.list_resource_groups, sid, None)
        call(backend.list_resources, sid, None, None, None)
        call(
            backend.list_resources,
            sid,
            None,
            "resourceType eq 'Microsoft.ContainerService/managedClusters'",
            None,
        )
        for provider, ctype in (
            ("Microsoft.ContainerService", "managedClusters"),
            ("Microsoft.Kubernetes", "connectedClusters"),
        ):
            for cluster in call(backend.list_clusters, sid, None, provider, ctype):
                parts = str(cluster["id"]).strip("/").split("/")
                ref = ClusterRef(parts[1], parts[3], provider, ctype, parts[-1])
                call(backend.get_by_id, str(cluster["id"]))
                call(backend.get_cluster, ref)
                for kind in ("extensions", "fluxConfigurations", "sourceControlConfigurations"):
                    call(backend.list_children, ref, kind)
                call(backend.list_operations, ref)
                call(
                    backend.list_extension_type_versions,
                    sid,
                    str(cluster.get("location")),
                    "microsoft.flux",
                )
    for table in ("resources", "kubernetesconfigurationresources", "resourcecontainers"):
        orjson.dumps(list(backend.graph_rows(table)))
    orjson.dumps(backend.dump())


def load_and_serve(source: Any) -> dict[str, Any] | None:
    """Load (path or mapping); when it loads, build the emulator and serve every read."""
    if not isinstance(source, Path | dict):
        source = {"value": source}  # load() takes a str as a path: wrap other JSON
    try:
        doc = snap.load(source, label=LABEL)
    except snap.SnapshotError as exc:
        check_issues(exc)
        return None
    server = EmulatorServer(doc, throttle="off")  # builds the backend and the faults
    serve_reads(server.components.backend)
    return doc


@FUZZ
@given(trees)
def test_random_structures(tree: Any) -> None:
    load_and_serve(tree)


@FUZZ
@given(st.data())
def test_a_valid_fleet_with_random_damage(data: st.DataObject) -> None:
    load_and_serve(mutate(BASE, data))


@FUZZ
@given(data=st.data())
def test_damaged_files(data: st.DataObject, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The same damage, and byte-level damage, through a file (the CLI's path)."""
    path = tmp_path_factory.mktemp("fuzz") / LABEL
    raw = json.dumps(mutate(BASE, data)).encode()
    how = data.draw(st.sampled_from(["as is", "cut", "bytes", "splice"]))
    if how == "cut":
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    elif how == "bytes":
        raw = data.draw(st.binary(max_size=200))
    elif how == "splice":
        at = data.draw(st.integers(0, len(raw)))
        raw = raw[:at] + data.draw(st.binary(min_size=1, max_size=8)) + raw[at:]
    path.write_bytes(raw)
    load_and_serve(path)


def _write(tmp_path: Path, raw: bytes | str) -> Path:
    path = tmp_path / LABEL
    path.write_bytes(raw.encode() if isinstance(raw, str) else raw)
    return path


def _fails(path: Path, needle: str) -> list[str]:
    with pytest.raises(snap.SnapshotError) as caught:
        snap.load(path)
    check_issues(caught.value)
    assert any(needle in i for i in caught.value.issues), caught.value.issues
    return caught.value.issues


def test_duplicate_keys_are_refused_with_their_place(tmp_path: Path) -> None:
    """JSON parsers keep the last of duplicate keys: half a document silently lost."""
    text = orjson.dumps(BASE).decode()
    top = text.replace('"resources":', '"resources":[],"resources":', 1)
    assert _fails(_write(tmp_path, top), "duplicate key 'resources'") == [
        f"{LABEL}: (top level): duplicate key 'resources'"
    ]
    inner = text.replace('"properties":{', '"properties":{"provisioningState":"Failed",', 3)
    issues = _fails(_write(tmp_path, inner), "duplicate key")
    assert issues[0].startswith(f"{LABEL}: resources[")


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    for depth in (300, 5000, 100_000):
        deep = "[" * depth + "]" * depth
        doc = (
            orjson.dumps({**BASE, "x-deep": "PLACEHOLDER"}).decode().replace('"PLACEHOLDER"', deep)
        )
        _fails(_write(tmp_path, doc), "nested")


def test_a_huge_file_loads_or_fails_cleanly(tmp_path: Path) -> None:
    big = copy.deepcopy(BASE)
    big["x-padding"] = "x" * (64 << 20)  # 64 MiB of one unknown key: kept, dumped as is
    path = _write(tmp_path, orjson.dumps(big))
    doc = load_and_serve(path)
    assert doc is not None and len(doc["x-padding"]) == 64 << 20
    many = copy.deepcopy(BASE)
    many["resources"] = many["resources"] + [{"id": 1}] * 200_000
    issues = _fails(_write(tmp_path, orjson.dumps(many)), "missing 'id'")
    assert issues[-1] == f"{LABEL}: (further problems not listed)" and len(issues) == 26


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"", "not JSON"),
        (b"\xff\xfe{}", "not JSON"),
        (b'{"kind": NaN}', "not JSON"),
        (b'{"kind": "\\ud800"}', "kind: a string that is not valid Unicode"),
        (b"[]", "must be a JSON object"),
        (b'{"kind": "FleetSnapshot"}', "subscriptions"),
        (
            '{"kind": "FleetSnapshot", "subscriptions": [], "resources": [{"id": "/subscriptions/'
            's/resourceGroups/日本", "type": "Microsoft.Resources/resourceGroups", '
            '"name": "日本"}]}',
            "not in 'subscriptions'",
        ),
    ],
)
def test_bad_files_name_the_problem(raw: bytes | str, needle: str, tmp_path: Path) -> None:
    _fails(_write(tmp_path, raw), needle)


@settings(max_examples=max(25, EXAMPLES // 6), deadline=None)
@given(data=st.data())
def test_serve_exits_2_with_the_issues_and_no_traceback(
    data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("serve") / LABEL
    doc = mutate(BASE, data)
    raw = json.dumps(doc).encode()
    if data.draw(st.booleans(), label="cut"):
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    path.write_bytes(raw)
    try:
        snap.load(path)
    except snap.SnapshotError as exc:
        expected = exc.issues
    else:
        return  # it loads: serving it would run for ever (covered by load_and_serve)
    result = CliRunner().invoke(app, ["emulator", "serve", "--snapshot", str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stderr.splitlines() == expected
    assert result.stdout == ""


def test_a_loaded_snapshot_is_what_a_dump_gives_back(tmp_path: Path) -> None:
    """Nothing partial: a snapshot that loads is served whole (load -> dump is the identity)."""
    path = _write(tmp_path, orjson.dumps(BASE))
    backend = EmulatorServer(snap.load(path), EmulatorOptions()).components.backend
    assert json.loads(orjson.dumps(backend.dump())) == json.loads(orjson.dumps(BASE))


def test_odd_keys_stay_on_one_line(tmp_path: Path) -> None:
    """A key with a line break (or a terminal escape) is quoted and escaped where an issue
    names it, so one problem stays on one line of the CLI's output."""
    doc = {
        **BASE,
        "extensionTypeVersions": {"evil\nkey": None, "x\x1b[31m": {"\r": 5}},
        "emulator": {"bad\nkey": 1},
    }
    with pytest.raises(snap.SnapshotError) as caught:
        snap.load(doc, label=LABEL)
    assert (
        f'{LABEL}: extensionTypeVersions["evil\\nkey"]: must be an object'
        in (caught.value.issues[0])
    )
    assert any('extensionTypeVersions["x\\u001b[31m"]["\\r"]' in i for i in caught.value.issues)
    assert any('emulator["bad\\nkey"]: unknown key' in i for i in caught.value.issues)
    check_issues(caught.value)
    plain = {**BASE, "extensionTypeVersions": {"microsoft.flux": {"Stable": [1]}}}
    with pytest.raises(
        snap.SnapshotError,
        match=r"extensionTypeVersions\.microsoft\.flux\."
        r"Stable: must be a list of version strings",
    ):
        snap.load(plain, label=LABEL)


def test_integers_are_kept_exact_or_refused(tmp_path: Path) -> None:
    """A JSON parser that reads big integers as floats changes the document silently."""
    text = orjson.dumps({**BASE, "x-number": 0}).decode()
    largest = text.replace('"x-number":0', '"x-number":18446744073709551615')
    doc = snap.load(_write(tmp_path, largest))
    assert doc["x-number"] == 2**64 - 1
    _fails(
        _write(tmp_path, text.replace('"x-number":0', '"x-number":18446744073709551616')),
        "x-number: an integer beyond 64 bits",
    )
