"""Desired state of one cluster: the policies that target it, merged (docs/contracts.md, Policy
file).

``render(applicable, facts)`` merges the non-exempt policies into one ``DesiredState``:

* the ``microsoft.flux`` extension merges **key by key** (each field, each
  ``configurationSettings`` and ``configurationProtectedSettings`` key, ``versionWindow``): the
  highest priority wins and every lower-priority policy that said something else is recorded as
  an ``Override``; policies of the same (highest) priority that disagree are a ``Conflict`` and
  the field is not governed by anyone;
* flux configurations merge **by name as whole objects** with the same rule (two bodies are
  equal when their essences are, so spelling out an ARM default is not a disagreement);
* for every governed field the DesiredState records who owns it (every policy that asked for
  the winning value), so findings can be attributed and audit-owned fields left alone.

Rendering depends only on the set of applicable policies, not on the cluster, and thousands
of clusters share the same set: the cluster-independent part is cached by the content of the
set of policies (their canonical JSON digests, so two different policies never share a
template) and bound to the cluster's id on each call (a look-up and a few small objects).

The merges themselves are ``fleet.desired.extension`` and ``fleet.desired.flux``; the data they
produce is ``fleet.desired.state``.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from fleet.core.clusters import ClusterFacts
from fleet.core.diffing import copy_json
from fleet.desired.extension import extension_template
from fleet.desired.flux import flux_template
from fleet.desired.overrides import Override
from fleet.desired.state import (
    Conflict,
    DesiredExtension,
    DesiredFluxConfig,
    DesiredState,
    ExemptPolicy,
    RemediationFlags,
)
from fleet.policy.health import FluxHealth
from fleet.policy.loading import digest_of
from fleet.policy.models import Policy
from fleet.select.selection import Applicable


@dataclass(frozen=True, slots=True)
class _Template:
    """The cluster-independent part of a DesiredState (cached per set of policies)."""

    policies: tuple[str, ...]
    modes: Mapping[str, str]
    flags: Mapping[str, RemediationFlags]
    extension: DesiredExtension | None
    flux_configurations: Mapping[str, DesiredFluxConfig]
    declared_names: frozenset[str]
    flux_policies: tuple[str, ...]
    #: (resource suffix, path, policies, values)
    conflicts: tuple[tuple[str, str, tuple[str, ...], Mapping[str, Any]], ...]
    #: (resource suffix, path, winner, loser, winner value, loser value)
    overrides: tuple[tuple[str, str, str, str, Any, Any], ...]
    health: Mapping[str, FluxHealth]


def _build_template(policies: list[Policy]) -> _Template:
    ext, ext_conflicts, ext_overrides = extension_template(
        [p for p in policies if p.spec.extension is not None]
    )
    configs, flux_conflicts, flux_overrides = flux_template(policies)
    return _Template(
        policies=tuple(p.name for p in policies),
        modes={p.name: p.spec.mode for p in policies},
        flags={
            p.name: RemediationFlags(
                p.spec.remediation.delete_unmanaged,
                p.spec.remediation.migrate_flux_v1,
                p.spec.remediation.recreate_on_immutable_change,
            )
            for p in policies
        },
        extension=ext,
        flux_configurations=configs,
        declared_names=frozenset(n.lower() for n in configs),
        flux_policies=tuple(p.name for p in policies if p.spec.flux_configurations),
        conflicts=tuple(ext_conflicts + flux_conflicts),
        overrides=tuple(ext_overrides + flux_overrides),
        health={p.name: p.spec.health for p in policies},
    )


class _Digests:
    """Content digests of policy objects, each computed once while its object lives.

    Keyed by ``id`` for speed, but an entry is only used while its weak reference still points
    at the very same object and is dropped when the object is freed, so a new object that
    reuses a freed one's id never gets its digest.
    """

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[weakref.ref[Policy], str]] = {}

    def __call__(self, policy: Policy) -> str:
        pid = id(policy)
        found = self._by_id.get(pid)
        if found is not None and found[0]() is policy:
            return found[1]
        digest = digest_of(policy)

        def forget(ref: weakref.ref[Policy], pid: int = pid) -> None:
            if self._by_id.get(pid, (None,))[0] is ref:
                del self._by_id[pid]

        self._by_id[pid] = (weakref.ref(policy, forget), digest)
        return digest


_digest = _Digests()


@dataclass(frozen=True, slots=True)
class _Key:
    """A set of policies as the template cache sees it: by content only."""

    digests: tuple[str, ...]
    #: What to build the template from on a miss (not part of the key).
    policies: tuple[Policy, ...] = field(compare=False)


# Bounded: a sweep has few distinct policy sets; a pathological one just recomputes.
@lru_cache(maxsize=4096)
def _cached_template(key: _Key) -> _Template:
    return _build_template(list(key.policies))


def _template(policies: list[Policy]) -> _Template:
    """The template of ``policies``, shared by every set of policies with the same content."""
    return _cached_template(_Key(tuple(_digest(p) for p in policies), tuple(policies)))


def clear_cache() -> None:
    """Forget cached templates (tests; a long-running worker after a policy reload)."""
    _cached_template.cache_clear()


def _bind_extension(ext: DesiredExtension, cid: str) -> DesiredExtension:
    # Positional construction instead of dataclasses.replace: this runs once per cluster and
    # replace() costs several times more. Everything but the id is shared with the template.
    return DesiredExtension(
        ext.name,
        cid + ext.resource,
        ext.body,
        ext.essence,
        ext.fields,
        ext.name_governed,
        ext.settings,
        ext.protected,
        ext.owners,
        ext.policies,
        ext.version_window,
        ext.window_owners,
        ext.version,
        ext.conflict_paths,
        ext.promotion,
    )


def _bind_config(config: DesiredFluxConfig, cid: str) -> DesiredFluxConfig:
    return DesiredFluxConfig(
        config.name,
        cid + config.resource,
        config.body,
        config.essence,
        config.protected,
        config.policies,
        config.mode,
        config.conflict_paths,
    )


def render(applicable: Sequence[Applicable], facts: ClusterFacts) -> DesiredState:
    """Merge the policies that target ``facts`` into the cluster's desired state."""
    ordered = sorted(applicable, key=lambda a: a.policy.name)
    active = [a.policy for a in ordered if a.exemption is None]
    exempt = tuple(
        ExemptPolicy(a.policy.name, a.exemption.reason, a.exemption.expires_on, a.policy.spec.mode)
        for a in ordered
        if a.exemption is not None
    )
    tpl = _template(active)
    cid = facts.id.rstrip("/")
    modes = dict(tpl.modes)
    for e in exempt:
        modes[e.name] = e.mode
    declared = tpl.declared_names
    if exempt:
        # A configuration an exempt policy declares is still managed (just not judged now).
        declared = declared | {
            spec.name.lower()
            for a in ordered
            if a.exemption is not None
            for spec in a.policy.spec.flux_configurations
        }
    ext = tpl.extension
    if ext is not None:
        ext = _bind_extension(ext, cid)
    return DesiredState(
        cluster_id=facts.id,
        policies=tpl.policies,
        modes=modes,
        flags=tpl.flags,
        exempt=exempt,
        extension=ext,
        flux_configurations={n: _bind_config(c, cid) for n, c in tpl.flux_configurations.items()},
        declared_names=declared,
        flux_policies=tpl.flux_policies,
        health=tpl.health,
        conflicts=tuple(
            Conflict(cid + suffix, path, policies, values)
            for suffix, path, policies, values in tpl.conflicts
        ),
        overrides=tuple(
            Override(
                resource=cid + suffix,
                path=path,
                winner=w,
                loser=lo,
                winner_value=copy_json(wv),
                loser_value=copy_json(lv),
            )
            for suffix, path, w, lo, wv, lv in tpl.overrides
        ),
    )
