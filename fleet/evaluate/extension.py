"""Judging the ``microsoft.flux`` extension: presence, state, drift, protected settings and
the version (the N-2 window, pinned versions, the ARM64 floor; docs/contracts.md, Domain facts).

Without a policy that declares the extension, an installed one is still judged for its version
when flux configurations need it (Azure installs it on their first PUT). Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fleet.core.clusters import ClusterFacts
from fleet.core.diffing import MAPPING as _MAP
from fleet.core.diffing import diff
from fleet.core.vocabulary import Code
from fleet.desired.fingerprints import Fingerprints
from fleet.desired.state import VERSION_PATH, WINDOW_PATH, DesiredExtension, DesiredState
from fleet.evaluate.findings import Findings, as_text, drift_findings, secret_findings
from fleet.evaluate.versions import ARM64_MINIMUM, DEFAULT_WINDOW, Catalog, judge, parse_version
from fleet.observe import essence
from fleet.observe.view import ObservedView, properties

CURRENT_VERSION_PATH = "/properties/currentVersion"


def judge_extension(
    seen: ObservedView,
    desired: DesiredState,
    found: Findings,
    catalog: Catalog,
    fingerprints: Fingerprints | None,
) -> tuple[str | None, bool | None]:
    facts = seen.observed.facts
    d = desired.extension
    ext = seen.extension
    if d is None:
        # No policy declares the extension, but flux configurations need it (Azure installs
        # it on the first PUT): it is not missing, yet what is installed must be supported.
        if ext is None or seen.extension_id is None:
            return None, None
        rid = seen.extension_id
        if not desired.flux_policies:
            return as_text(properties(ext).get("currentVersion")), None
        return _judge_version(
            ext, rid, None, desired.flux_policies, desired.flux_policies, facts, catalog, found
        )

    if ext is None or seen.extension_id is None or seen.extension_essence is None:
        found.add(
            Code.EXTENSION_MISSING,
            d.policies,
            d.resource,
            "the microsoft.flux extension is not installed",
        )
        _arm64_guard(d, d.resource, None, facts, found)
        return None, None

    rid = seen.extension_id
    props = properties(ext)
    state = as_text(props.get("provisioningState"))
    if state is not None and state.lower() == "failed":
        found.add(
            Code.EXTENSION_FAILED,
            d.policies,
            rid,
            "the microsoft.flux extension is in provisioningState Failed" + _error_info(props),
            path="/properties/provisioningState",
            desired="Succeeded",
            actual=state,
        )
    obs = essence.restrict_extension(
        seen.extension_essence, d.fields, name=d.name_governed, settings=d.settings
    )
    seen_name = obs.get("name")
    if d.name_governed and isinstance(seen_name, str) and seen_name.lower() == d.name.lower():
        obs["name"] = d.name  # ARM names are case-insensitive
    drift_findings(
        Code.EXTENSION_DRIFT,
        diff(d.essence, obs),
        d.conflict_paths,
        d.owners_of,
        rid,
        "extension",
        found,
    )
    secret_findings(Code.EXTENSION_DRIFT, fingerprints, rid, d.protected, d.owners_of, found)
    current = as_text(props.get("currentVersion"))
    _arm64_guard(d, rid, current, facts, found)
    if WINDOW_PATH in d.conflict_paths:
        return current, None
    return _judge_version(
        ext, rid, d, d.window_owners or d.policies, d.policies, facts, catalog, found
    )


def _error_info(props: Mapping[str, Any]) -> str:
    info = props.get("errorInfo")
    if isinstance(info, _MAP):
        message = as_text(info.get("message")) or as_text(info.get("code"))
        if message:
            return f": {message[:200]}"
    return ""


def _arm64_guard(
    d: DesiredExtension, rid: str, current: str | None, facts: ClusterFacts, found: Findings
) -> None:
    if not (facts.arm64 and d.version):
        return
    pinned = parse_version(d.version)
    if pinned is not None and pinned < ARM64_MINIMUM:
        found.add(
            Code.EXTENSION_VERSION_UNSUPPORTED_ARCH,
            d.owners_of(VERSION_PATH),
            rid,
            f"the policy pins version {d.version}, but ARM64 clusters need {ARM64_MINIMUM} "
            "or later",
            path=VERSION_PATH,
            desired=d.version,
            actual=current,
        )


def _judge_version(
    ext: Any,
    rid: str,
    d: DesiredExtension | None,
    window_owners: Sequence[str],
    arch_owners: Sequence[str],
    facts: ClusterFacts,
    catalog: Catalog,
    found: Findings,
) -> tuple[str | None, bool | None]:
    props = properties(ext)
    current = as_text(props.get("currentVersion"))
    # The train the policies ask for, else Stable: Microsoft's support window is stated over
    # releases, and a train nobody governs says nothing about which releases are current.
    train = (
        as_text(d.body["properties"].get("releaseTrain"))
        if d is not None and "releaseTrain" in d.fields
        else None
    )
    window = d.version_window if d is not None else DEFAULT_WINDOW
    result = judge(
        current,
        catalog=catalog,
        train=train,
        window=window,
        arm64=facts.arm64,
        pinned=props.get("autoUpgradeMinorVersion") is False,
    )
    for code in result.codes:
        # The window is a policy's choice (its owner answers for it); the ARM64 floor is a
        # property of the extension itself, so every policy that declares it answers for it.
        if code is Code.EXTENSION_VERSION_OUT_OF_WINDOW:
            found.add(
                code,
                window_owners,
                rid,
                result.message,
                path=CURRENT_VERSION_PATH,
                desired=list(result.window_versions),
                actual=current,
            )
        else:
            found.add(
                code,
                arch_owners,
                rid,
                f"{current} is below {ARM64_MINIMUM}, the oldest microsoft.flux version "
                "ARM64 clusters support",
                path=CURRENT_VERSION_PATH,
                desired=f">= {ARM64_MINIMUM}",
                actual=current,
            )
    return current, result.in_window
