"""The fleet snapshot (docs/contracts.md, Fleet snapshot, a contract): load, validate, redact
secrets, dump.

A snapshot is the emulator's whole state: subscriptions, the extension version catalogue and
the ARM resources exactly as ARM returns them. Loading validates the shape and reports every
problem with its place (``snapshot.json: resources[12]: missing 'id'``); dumping gives back the
same document, keys in the same order and unknown top-level keys (``generator``, ``emulator``,
...) untouched, so that load followed by dump is the identity for any secret-free snapshot.

Secrets never enter the state: ``configurationProtectedSettings`` keep their keys with empty
values and the other ``x-ms-secret`` fields of the 2023-05-01 and 2025-04-01 specs become
``""`` (the convention of the spec's AzureBlob example). The same rule applies to request
bodies, GET responses and dumps, so the three always agree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from fleet.core.ids import EXTENSIONS, FLUX_CONFIGURATIONS, SOURCE_CONTROL_CONFIGURATIONS
from fleet.emulator import regions, vaults
from fleet.emulator.faults import FaultSpecError, parse_fault

KIND = "FleetSnapshot"
RESOURCE_GROUPS = "microsoft.resources/resourcegroups"
CLUSTER_TYPES = frozenset(
    {"microsoft.containerservice/managedclusters", "microsoft.kubernetes/connectedclusters"}
)
KC_TYPES = frozenset(
    t.lower() for t in (EXTENSIONS, FLUX_CONFIGURATIONS, SOURCE_CONTROL_CONFIGURATIONS)
)
#: An AKS cluster's planned maintenance (children of a managed cluster, kept as ARM shows them).
MAINTENANCE_TYPE = "Microsoft.ContainerService/managedClusters/maintenanceConfigurations"
MAINTENANCE = MAINTENANCE_TYPE.lower()
_EMULATOR_KEYS = frozenset({"faults", "failingSources", "operations", "reconciling"})
_OP_KINDS = {"extensions", "fluxconfigurations", "sourcecontrolconfigurations"}
_OP_ACTIONS = frozenset({"create", "update", "delete"})
_OP_STATUSES = frozenset({"Creating", "Updating", "Deleting"})
_RECONCILE_TARGETS = frozenset({"Compliant", "Non-Compliant", "Suspended"})
_MAX_ISSUES = 25

#: x-ms-secret string fields below ``properties`` (beside configurationProtectedSettings).
_SECRET_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    FLUX_CONFIGURATIONS.lower(): (
        ("azureBlob", "accountKey"),
        ("azureBlob", "sasToken"),
        ("azureBlob", "servicePrincipal", "clientSecret"),
        ("azureBlob", "servicePrincipal", "clientCertificate"),
        ("azureBlob", "servicePrincipal", "clientCertificatePassword"),
        # 2025-04-01's OCI source.
        ("ociRepository", "tlsConfig", "clientCertificate"),
        ("ociRepository", "tlsConfig", "privateKey"),
        ("ociRepository", "tlsConfig", "caCertificate"),
    ),
}


class SnapshotError(ValueError):
    """A snapshot that cannot be loaded; ``issues`` lists every problem found."""

    def __init__(self, issues: list[str]) -> None:
        super().__init__("\n".join(issues))
        self.issues = issues


def resource_type_of(resource_id: str) -> tuple[str, str] | None:
    """``(type, name)`` that an ARM id implies, or None when it is not a resource id.

    ``/subscriptions/s/resourceGroups/rg`` -> ``Microsoft.Resources/resourceGroups``; otherwise
    the namespace after the last ``/providers/`` followed by every type segment (so a child's
    type is ``Microsoft.KubernetesConfiguration/extensions``).
    """
    parts = resource_id.strip("/").split("/")
    if (
        len(parts) < 4
        or parts[0].lower() != "subscriptions"
        or parts[2].lower() != "resourcegroups"
    ):
        return None
    if len(parts) == 4:
        return "Microsoft.Resources/resourceGroups", parts[3]
    lowered = [p.lower() for p in parts]
    last = len(lowered) - 1 - lowered[::-1].index("providers") if "providers" in lowered else -1
    rest = parts[last + 1 :]
    if last < 4 or len(rest) < 3 or len(rest) % 2 == 0:
        return None
    namespace, segments = rest[0], rest[1:]
    return "/".join([namespace, *segments[0::2]]), segments[-1]


def redact(resource: dict[str, Any]) -> bool:
    """Blank the secrets of one resource in place; True when something was blanked."""
    rtype = str(resource.get("type") or "").lower()
    props = resource.get("properties")
    if rtype not in KC_TYPES or not isinstance(props, dict):
        return False
    changed = False
    protected = props.get("configurationProtectedSettings")
    if isinstance(protected, dict) and any(v != "" for v in protected.values()):
        props["configurationProtectedSettings"] = dict.fromkeys(protected, "")
        changed = True
    for path in _SECRET_FIELDS.get(rtype, ()):
        node: Any = props
        for part in path[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and node.get(path[-1]) not in (None, ""):
            node[path[-1]] = ""
            changed = True
    return changed


#: Deepest nesting of objects and arrays a snapshot may have (ARM resources need about 10).
#: Deeper documents could not even be served: orjson refuses to write more than 254 levels.
MAX_DEPTH = 64
_ORJSON_DEPTH = 254


class _Duplicated(dict[str, Any]):
    """An object of the document in which a key appeared twice (``key`` says which)."""

    key = ""


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_$@\-]+(\.[A-Za-z0-9_$@\-]+)*")


def _part(key: Any) -> str:
    """One step of a place in a message: ``.key``, or ``["odd key"]`` escaped so that a key
    with line breaks or terminal escapes stays on one harmless line."""
    if isinstance(key, int):
        return f"[{key}]"
    text = str(key)
    return f".{text}" if _PLAIN_KEY.fullmatch(text) else f"[{json.dumps(text)}]"


def _where(path: list[Any]) -> str:
    out = "".join(_part(part) for part in path)
    return out[1:] if out.startswith(".") else (out or "(top level)")


def _find(doc: Any, bad: Any) -> tuple[str, str] | None:
    """(place, what) of the first node ``bad(node, depth)`` describes, walking iteratively."""
    stack: list[tuple[Any, list[Any]]] = [(doc, [])]
    while stack:
        node, path = stack.pop()
        what = bad(node, len(path))
        if what is not None:
            return _where(path), what
        if isinstance(node, dict):
            stack.extend((v, [*path, k]) for k, v in reversed(list(node.items())))
        elif isinstance(node, list):
            stack.extend((v, [*path, i]) for i, v in reversed(list(enumerate(node))))
    return None


def _unservable(node: Any, depth: int) -> str | None:
    if isinstance(node, _Duplicated):
        return f"duplicate key {node.key!r}"
    if depth > MAX_DEPTH:
        return f"nested more than {MAX_DEPTH} levels deep"
    if isinstance(node, int) and not isinstance(node, bool) and not (-(2**63) <= node < 2**64):
        return "an integer beyond 64 bits"
    if isinstance(node, str):
        try:
            node.encode("utf-8")
        except UnicodeEncodeError:
            return "a string that is not valid Unicode (a lone surrogate)"
    return None


def _check_servable(doc: Any, label: str) -> None:
    """Raise ``SnapshotError`` naming the place when the document cannot be written back as
    JSON (too deep, an integer beyond 64 bits, a lone surrogate): the emulator serves and
    dumps what it loaded, so what it cannot write it must not accept."""
    wrapped = doc
    for _ in range(_ORJSON_DEPTH - MAX_DEPTH):  # orjson's own depth limit checks ours
        wrapped = [wrapped]
    try:
        orjson.dumps(wrapped)
    except TypeError as exc:
        found = _find(doc, _unservable)
        if found is None:  # not JSON at all (a mapping with other key or value types)
            raise SnapshotError([f"{label}: not JSON-serializable: {exc}"]) from None
        raise SnapshotError([f"{label}: {found[0]}: {found[1]}"]) from None


def parse(raw: bytes, label: str) -> dict[str, Any]:
    """Parse snapshot bytes exactly: strict UTF-8 JSON, no NaN, integers kept exact, and a
    key given twice in one object is an error (parsers keep the last one: the rest of the
    document would be silently lost)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SnapshotError(
            [f"{label}: not JSON: not UTF-8 (byte {exc.start}: {raw[exc.start]:#04x})"]
        ) from None
    duplicated = []

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) == len(pairs):
            return obj
        marked = _Duplicated(obj)
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                marked.key = k
                break
            seen.add(k)
        duplicated.append(marked)
        return marked

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON value")

    try:
        doc = json.loads(text, object_pairs_hook=unique, parse_constant=constant)
    except RecursionError:
        raise SnapshotError(
            [f"{label}: not JSON: nested more than {MAX_DEPTH} levels deep"]
        ) from None
    except ValueError as exc:
        raise SnapshotError([f"{label}: not JSON: {exc}"]) from None
    if duplicated:
        found = _find(doc, _unservable)
        assert found is not None
        raise SnapshotError([f"{label}: {found[0]}: {found[1]}"])
    _check_servable(doc, label)
    return doc  # type: ignore[no-any-return]


def read(path: str | Path, label: str | None = None) -> tuple[dict[str, Any], str]:
    """Read a snapshot file: (document, label for messages: ``label`` or the file's name)."""
    p = Path(path)
    name = label or p.name
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise SnapshotError([f"{name}: cannot read: {exc.strerror or exc}"]) from None
    return parse(raw, name), name


def load(source: str | Path | Mapping[str, Any], label: str | None = None) -> dict[str, Any]:
    """Load and validate a snapshot from a file or a mapping; returns a private deep copy.

    Secrets found in it are blanked (a snapshot never carries them: docs/contracts.md, Fleet
    snapshot). Raises ``SnapshotError`` listing every problem.
    """
    if isinstance(source, str | Path):
        doc, label = read(source, label)
    else:
        label = label or "snapshot"
        # A JSON round trip is a deep copy (faster than copy.deepcopy on large fleets) that also
        # makes sure the state is plain JSON, as a file would be.
        try:
            _check_servable(dict(source), label)
            doc = orjson.loads(orjson.dumps(dict(source)))
        except TypeError as exc:
            raise SnapshotError([f"{label}: not JSON-serializable: {exc}"]) from None
    issues = validate(doc, label)
    if issues:
        raise SnapshotError(issues)
    for resource in doc["resources"]:
        redact(resource)
    return doc


def validate(doc: Any, label: str = "snapshot") -> list[str]:
    """Every problem of a snapshot document, as ``label: where: what`` lines."""
    issues: list[str] = []

    def issue(where: str, what: str) -> None:
        if len(issues) < _MAX_ISSUES:
            issues.append(f"{label}: {where}: {what}")

    if not isinstance(doc, dict):
        return [f"{label}: the snapshot must be a JSON object"]
    if doc.get("kind") != KIND:
        issue("kind", f"must be {KIND!r}")
    subs = _validate_subscriptions(doc.get("subscriptions"), issue)
    _validate_catalog(doc.get("extensionTypeVersions"), issue)
    regional = regions.check(doc.get(regions.SECTION))
    if regional is not None:
        issue(regions.SECTION, regional)
    types = doc.get("extensionTypes")
    if types is not None and not (
        isinstance(types, dict)
        and all(
            isinstance(t, dict) and isinstance(t.get("properties"), dict) for t in types.values()
        )
    ):
        issue("extensionTypes", "must be an object {extensionType: {properties: {...}}}")
    resources = _validate_resources(doc.get("resources"), subs, issue)
    _validate_emulator(doc.get("emulator"), resources, issue)
    vaults.validate(doc.get("vaults"), issue)
    if len(issues) == _MAX_ISSUES:
        issues.append(f"{label}: (further problems not listed)")
    return issues


def _objects(
    value: Any, name: str, issue: Any, not_a_list: str = "must be a list"
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The objects of a list section with where each is; an issue for anything else."""
    if not isinstance(value, list):
        issue(name, not_a_list)
        return
    for i, item in enumerate(value):
        where = f"{name}[{i}]"
        if not isinstance(item, dict):
            issue(where, "must be an object")
            continue
        yield where, item


def _validate_subscriptions(value: Any, issue: Any) -> set[str]:
    subs: set[str] = set()
    for where, sub in _objects(value, "subscriptions", issue, "missing or not a list"):
        sid = sub.get("subscriptionId")
        if not isinstance(sid, str) or not sid:
            issue(where, "missing 'subscriptionId'")
            continue
        if sid.lower() in subs:
            issue(where, f"duplicate subscription {sid!r}")
        subs.add(sid.lower())
        for key in ("displayName", "state", "tenantId"):
            if key in sub and not isinstance(sub[key], str):
                issue(f"{where}.{key}", "must be a string")
        providers = sub.get("providers")
        if providers is not None and not (
            isinstance(providers, dict) and all(isinstance(v, str) for v in providers.values())
        ):
            issue(f"{where}.providers", "must map provider namespaces to a registrationState")
    return subs


def _validate_catalog(value: Any, issue: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        issue("extensionTypeVersions", "must be an object {extensionType: {train: [versions]}}")
        return
    for ext_type, trains in value.items():
        if not isinstance(trains, dict):
            issue(
                f"extensionTypeVersions{_part(ext_type)}", "must be an object {train: [versions]}"
            )
            continue
        for train, versions in trains.items():
            if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
                issue(
                    f"extensionTypeVersions{_part(ext_type)}{_part(train)}",
                    "must be a list of version strings",
                )


def _validate_resources(value: Any, subs: set[str], issue: Any) -> dict[str, str]:
    """Checks the resources; returns lower-cased id -> lower-cased type of the valid ones."""
    seen: dict[str, str] = {}
    groups: set[str] = set()
    clusters: set[str] = set()
    parents: list[tuple[str, str]] = []
    for where, res in _objects(value, "resources", issue, "missing or not a list"):
        missing = [
            k for k in ("id", "type", "name") if not isinstance(res.get(k), str) or not res[k]
        ]
        if missing:
            issue(where, "missing " + ", ".join(repr(k) for k in missing))
            continue
        rid, rtype, name = res["id"], res["type"], res["name"]
        implied = resource_type_of(rid)
        if implied is None:
            issue(f"{where}.id", f"not an ARM resource id: {rid!r}")
            continue
        if implied[0].lower() != rtype.lower():
            issue(
                f"{where}.type", f"{rtype!r} does not match the id (which implies {implied[0]!r})"
            )
        if implied[1].lower() != name.lower():
            issue(f"{where}.name", f"{name!r} does not match the id (which ends in {implied[1]!r})")
        key = rid.rstrip("/").lower()
        if key in seen:
            issue(f"{where}.id", f"duplicate id {rid!r}")
        seen[key] = rtype.lower()
        sub = rid.strip("/").split("/")[1].lower()
        if sub not in subs:
            issue(f"{where}.id", f"subscription {rid.split('/')[2]!r} is not in 'subscriptions'")
        for field_name in ("properties", "tags"):
            if (
                field_name in res
                and res[field_name] is not None
                and not isinstance(res[field_name], dict)
            ):
                issue(f"{where}.{field_name}", "must be an object")
        tags = res.get("tags")
        if isinstance(tags, dict) and not all(isinstance(v, str) for v in tags.values()):
            issue(f"{where}.tags", "tag values must be strings")
        lowered = rtype.lower()
        rg_key = "/".join(key.split("/")[:5])
        if lowered == RESOURCE_GROUPS:
            groups.add(key)
        else:
            parents.append((where, rg_key))
        if lowered in CLUSTER_TYPES:
            clusters.add(key)
        if lowered in KC_TYPES:
            cluster_key = key[: key.rfind("/providers/microsoft.kubernetesconfiguration/")]
            parents.append((where, cluster_key))
        if lowered == MAINTENANCE:
            parents.append((where, key[: key.rfind("/maintenanceconfigurations/")]))
    for where, parent in parents:
        if parent not in groups and parent not in clusters:
            kind = "resource group" if parent.count("/") == 4 else "parent cluster"
            issue(f"{where}.id", f"{kind} {parent!r} is not in the snapshot")
    return seen


def _is_time(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    try:
        (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    except (OverflowError, OSError, ValueError):
        return False
    return True


def _validate_operations(value: Any, resources: dict[str, str], issue: Any) -> None:
    """``emulator.operations``: the in-flight operations of a dumped emulator."""
    ids: set[str] = set()
    for where, op in _objects(value, "emulator.operations", issue):
        problems = []
        oid, rid = op.get("id"), op.get("resourceId")
        if not isinstance(oid, str) or not oid:
            problems.append("'id' must be a non-empty string")
        elif oid.lower() in ids:
            problems.append(f"duplicate operation id {oid!r}")
        else:
            ids.add(oid.lower())
        if not isinstance(rid, str) or resources.get(rid.rstrip("/").lower()) not in KC_TYPES:
            problems.append(
                "'resourceId' must be a KubernetesConfiguration resource of the snapshot"
            )
        kind = op.get("kind")
        if not isinstance(kind, str) or kind.lower() not in _OP_KINDS:
            problems.append(
                "'kind' must be extensions, fluxConfigurations or sourceControlConfigurations"
            )
        if op.get("action") not in _OP_ACTIONS:
            problems.append("'action' must be create, update or delete")
        if op.get("status") not in _OP_STATUSES:
            problems.append("'status' must be Creating, Updating or Deleting")
        if not _is_time(op.get("startTime")):
            problems.append("'startTime' must be an ISO 8601 time")
        if op.get("due") is not None and not _is_time(op.get("due")):
            problems.append("'due' must be an ISO 8601 time or null")
        polls = op.get("pollsLeft")
        if polls is not None and (
            not isinstance(polls, int) or isinstance(polls, bool) or polls < 0
        ):
            problems.append("'pollsLeft' must be a non-negative integer or null")
        error = op.get("error")
        if error is not None and not (
            isinstance(error, dict)
            and isinstance(error.get("code"), str)
            and isinstance(error.get("message"), str)
        ):
            problems.append("'error' must be null or {code, message} strings")
        for flag in ("blocked", "nonCompliant"):
            if not isinstance(op.get(flag, False), bool):
                problems.append(f"{flag!r} must be a boolean")
        linked = op.get("linked", [])
        if not isinstance(linked, list) or not all(isinstance(x, str) for x in linked):
            problems.append("'linked' must be a list of operation ids")
        for problem in problems:
            issue(where, problem)


def _validate_reconciling(value: Any, resources: dict[str, str], issue: Any) -> None:
    """``emulator.reconciling``: flux configurations a dumped emulator was still reconciling."""
    flux = FLUX_CONFIGURATIONS.lower()
    for where, item in _objects(value, "emulator.reconciling", issue):
        rid = item.get("resourceId")
        if not isinstance(rid, str) or resources.get(rid.rstrip("/").lower()) != flux:
            issue(where, "'resourceId' must be a flux configuration of the snapshot")
        if item.get("target") not in _RECONCILE_TARGETS:
            issue(where, "'target' must be Compliant, Non-Compliant or Suspended")
        if not _is_time(item.get("due")):
            issue(where, "'due' must be an ISO 8601 time")


def _validate_emulator(value: Any, resources: dict[str, str], issue: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        issue("emulator", "must be an object {faults, failingSources}")
        return
    # (``operations`` and ``reconciling`` are written by a dump of a running emulator.)
    for key in sorted(set(value) - _EMULATOR_KEYS):
        issue(f"emulator{_part(key)}", "unknown key (expected faults, failingSources)")
    if "operations" in value:
        _validate_operations(value["operations"], resources, issue)
    if "reconciling" in value:
        _validate_reconciling(value["reconciling"], resources, issue)
    faults = value.get("faults", [])
    if not isinstance(faults, list):
        issue("emulator.faults", "must be a list")
    else:
        for i, spec in enumerate(faults):
            try:
                parse_fault(spec, f"emulator.faults[{i}]")
            except FaultSpecError as exc:
                where, _, what = str(exc).partition(": ")
                issue(where, what)
    sources = value.get("failingSources", [])
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        issue("emulator.failingSources", "must be a list of source URLs")


def dumps(doc: Mapping[str, Any], *, indent: bool = False) -> bytes:
    """Serialize a snapshot document, key order kept (compact unless ``indent``)."""
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2 if indent else 0)
