"""Merging the policies' ``microsoft.flux`` extension, key by key.

Each field, each ``configurationSettings`` and ``configurationProtectedSettings`` key and
``versionWindow`` merges on its own: the highest priority wins and every lower-priority policy
that said something else is recorded as an override; policies of the same (highest) priority
that disagree are a conflict and the field is not governed by anyone. A pinned ``version``
is governed only with ``autoUpgradeMinorVersion: false`` (ARM refuses it otherwise). A policy
with ``versionPolicy: promote`` asks for ``autoUpgradeMinorVersion: false`` and, when that wins,
the extension carries its ``PromotionRule``; the version is pinned per cluster later
(``fleet.plan.promotion``). Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fleet.core.diffing import pointer, split_pointer
from fleet.desired.fingerprints import setting_path
from fleet.desired.state import (
    AUTO_UPGRADE_PATH,
    NAME_PATH,
    VERSION_PATH,
    WINDOW_PATH,
    DesiredExtension,
    PromotionRule,
    relative_id,
)
from fleet.observe import essence
from fleet.policy.models import DEFAULT_WINDOW, Policy


@dataclass(slots=True)
class _Candidate:
    priority: int
    policy: str
    value: Any


@dataclass(slots=True)
class _Merged:
    """Outcome of merging one field: the winning value and its owners, or a conflict."""

    value: Any = None
    owners: tuple[str, ...] = ()
    conflict: dict[str, Any] | None = None
    overrides: list[tuple[str, str, Any, Any]] = field(default_factory=list)


def _merge(candidates: list[_Candidate]) -> _Merged:
    # Highest priority first, then by policy name, so the winner is reproducible.
    ordered = sorted(candidates, key=lambda c: (-c.priority, c.policy))
    top = [c for c in ordered if c.priority == ordered[0].priority]
    winner = top[0]
    if any(c.value != winner.value for c in top[1:]):
        return _Merged(conflict={c.policy: c.value for c in top})
    merged = _Merged(value=winner.value)
    merged.owners = tuple(c.policy for c in ordered if c.value == winner.value)
    merged.overrides = [
        (winner.policy, c.policy, winner.value, c.value) for c in ordered if c.value != winner.value
    ]
    return merged


def extension_template(
    declaring: list[Policy],
) -> tuple[DesiredExtension | None, list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    if not declaring:
        return None, [], []
    per_path: dict[str, list[_Candidate]] = {}

    def add(path: str, policy: Policy, value: Any) -> None:
        per_path.setdefault(path, []).append(_Candidate(policy.spec.priority, policy.name, value))

    promoters: list[Policy] = []
    for policy in declaring:
        spec = policy.spec.extension
        if spec is None:
            continue
        ext = spec
        if ext.name is not None:
            add(NAME_PATH, policy, ext.name)
        if ext.promotes:
            # fleet moves the version itself: the extension must not upgrade on its own.
            promoters.append(policy)
            add(AUTO_UPGRADE_PATH, policy, False)
        elif ext.auto_upgrade_minor_version is not None:
            add(AUTO_UPGRADE_PATH, policy, ext.auto_upgrade_minor_version)
        if ext.release_train is not None:
            add("/properties/releaseTrain", policy, essence.canonical_train(ext.release_train))
        if ext.version is not None:
            add(VERSION_PATH, policy, ext.version)
        if ext.version_window is not None:
            add(WINDOW_PATH, policy, ext.version_window)
        for key, value in (ext.configuration_settings or {}).items():
            add(pointer("properties", "configurationSettings", key), policy, value)
        for key, ref in (ext.configuration_protected_settings or {}).items():
            add(setting_path(key), policy, ref.describe())

    merged = {path: _merge(cands) for path, cands in sorted(per_path.items())}
    conflicts: list[tuple[Any, ...]] = []
    overrides: list[tuple[Any, ...]] = []
    conflict_paths: list[str] = []
    name_m = merged.get(NAME_PATH)
    name = (
        name_m.value
        if name_m is not None and name_m.conflict is None
        else essence.DEFAULT_EXTENSION_NAME
    )
    suffix = relative_id(essence.EXTENSIONS, name)

    # autoUpgradeMinorVersion decides whether a pinned version can be governed at all: ARM
    # refuses a version with auto-upgrade on, so a version that lost to a higher-priority
    # "auto-upgrade on" is overridden (visibly), and one whose auto-upgrade is in conflict is
    # in conflict too.
    version_m = merged.get(VERSION_PATH)
    auto_m = merged.get(AUTO_UPGRADE_PATH)
    if version_m is not None and version_m.conflict is None:
        if auto_m is not None and auto_m.conflict is not None:
            conflict_paths.append(VERSION_PATH)
            del merged[VERSION_PATH]
        elif auto_m is None or auto_m.value is not False:
            winner = auto_m.owners[0] if auto_m is not None else "(autoUpgradeMinorVersion default)"
            for loser in version_m.owners:
                overrides.append((suffix, VERSION_PATH, winner, loser, None, version_m.value))
            del merged[VERSION_PATH]

    properties: dict[str, Any] = {
        "extensionType": essence.FLUX_EXTENSION_TYPE,
        "scope": {"cluster": {"releaseNamespace": essence.FLUX_NAMESPACE}},
    }
    owners: dict[str, tuple[str, ...]] = {}
    fields: set[str] = set()
    settings: dict[str, Any] = {}
    protected: dict[str, str] = {}
    window = DEFAULT_WINDOW
    window_owners: tuple[str, ...] = ()
    name_governed = False
    declarers = tuple(sorted(p.name for p in declaring))
    owners["/properties/extensionType"] = declarers
    owners["/properties/scope"] = declarers
    for path, m in merged.items():
        if m.conflict is not None:
            conflict_paths.append(path)
            conflicts.append((suffix, path, tuple(sorted(m.conflict)), dict(m.conflict)))
            continue
        overrides.extend((suffix, path, *o) for o in m.overrides)
        owners[path] = m.owners
        if path == NAME_PATH:
            name_governed = True
        elif path == WINDOW_PATH:
            window, window_owners = int(m.value), m.owners
        elif path.startswith("/properties/configurationSettings/"):
            settings[_last(path)] = m.value
        elif path.startswith("/properties/configurationProtectedSettings/"):
            protected[_last(path)] = m.value
        else:
            prop = path.removeprefix("/properties/")
            properties[prop] = m.value
            fields.add(prop)
    if settings:
        properties["configurationSettings"] = settings
    body = {"properties": properties}
    essence_body = {"name": name, **body} if name_governed else body
    ess = essence.restrict_extension(
        essence.extension(essence_body, governed_settings=settings.keys()),
        fields,
        name=name_governed,
    )
    version = properties.get("version")
    desired = DesiredExtension(
        name=name,
        resource=suffix,
        body=body,
        essence=ess,
        fields=frozenset(fields),
        name_governed=name_governed,
        settings=frozenset(settings),
        protected=protected,
        owners=owners,
        policies=declarers,
        version_window=window,
        window_owners=window_owners,
        version=version if isinstance(version, str) else None,
        conflict_paths=tuple(sorted(conflict_paths)),
        promotion=_promotion(promoters, merged.get(AUTO_UPGRADE_PATH)),
    )
    return desired, conflicts, overrides


def _promotion(promoters: list[Policy], auto: _Merged | None) -> PromotionRule | None:
    """The promotion rule, when a promoting policy's "auto-upgrade off" won the merge."""
    owners = set(auto.owners) if auto is not None and auto.conflict is None else set()
    winners = [p for p in promoters if p.name in owners]
    if not winners or auto is None or auto.value is not False:
        return None
    best = min(winners, key=lambda p: (-p.spec.priority, p.name))
    assert best.spec.extension is not None
    rule = best.spec.extension.promotion_or_default()
    return PromotionRule(
        policy=best.name,
        soak_seconds=rule.soak_time.total_seconds(),
        gate=rule.gate,
        policies=tuple(sorted(p.name for p in winners)),
    )


def _last(path: str) -> str:
    return split_pointer(path)[-1]
