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
of clusters share the same set: the cluster-independent part is cached per set of policies and
bound to the cluster's id on each call (a dictionary look-up and a few small objects).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fleet.core.clusters import ClusterFacts
from fleet.core.diffing import copy_json, diff, pointer, resolve, split_pointer
from fleet.core.ids import child_id
from fleet.desired.fingerprints import setting_path
from fleet.desired.overrides import Override
from fleet.observe import essence
from fleet.policy.models import DEFAULT_WINDOW, FluxConfigurationSpec, Policy, SecretRef
from fleet.select.selection import Applicable

#: Pseudo-path of ``versionWindow``: a policy field, not an ARM property.
WINDOW_PATH = "/versionWindow"
NAME_PATH = "/name"
VERSION_PATH = "/properties/version"
AUTO_UPGRADE_PATH = "/properties/autoUpgradeMinorVersion"

# --- the data -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Conflict:
    """Policies of equal priority that disagree on one field of one resource."""

    resource: str
    path: str
    policies: tuple[str, ...]
    #: policy -> the value it asks for (secret references as ``env:VAR``, never values).
    values: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RemediationFlags:
    """The remediation switches of one policy."""

    delete_unmanaged: bool = False
    migrate_flux_v1: bool = False
    recreate_on_immutable_change: bool = False


@dataclass(frozen=True, slots=True)
class ExemptPolicy:
    """A targeting policy that is exempt on this cluster (reported, not judged)."""

    name: str
    reason: str
    expires_on: date | None
    mode: str


@dataclass(frozen=True, slots=True)
class DesiredExtension:
    """The merged ``microsoft.flux`` extension."""

    #: Resource name to create it under (``flux`` unless a policy names it).
    name: str
    resource: str
    #: The desired ARM body ``{"properties": {...}}``: extensionType, scope and every merged,
    #: non-conflicting field. Secrets are not in it (see ``protected``).
    body: Mapping[str, Any]
    #: Essence of ``body`` restricted to the governed fields (what evaluation compares).
    essence: Mapping[str, Any]
    #: Governed property names (besides extensionType and scope, always governed).
    fields: frozenset[str]
    #: True when a policy names the extension (then a differing name is drift).
    name_governed: bool
    #: Governed ``configurationSettings`` keys.
    settings: frozenset[str]
    #: Governed protected settings: setting name -> ``SecretRef.describe()``.
    protected: Mapping[str, str]
    #: JSON pointer of each governed field -> the policies that ask for its value.
    owners: Mapping[str, tuple[str, ...]]
    #: Every (non-exempt) policy that declares ``extension``.
    policies: tuple[str, ...]
    version_window: int
    #: Owners of ``versionWindow`` (empty: nobody sets it, the default applies).
    window_owners: tuple[str, ...]
    #: The pinned version when one is governed (``autoUpgradeMinorVersion: false`` + version).
    version: str | None
    #: Paths policies disagree on: never judged, never written.
    conflict_paths: tuple[str, ...] = ()

    @property
    def pinned(self) -> bool:
        return self.version is not None

    def owners_of(self, path: str) -> tuple[str, ...]:
        """Owners of ``path`` or of its nearest governed ancestor (all declarers if none)."""
        probe = path
        while probe:
            found = self.owners.get(probe)
            if found:
                return found
            probe = probe.rpartition("/")[0]
        return self.policies


@dataclass(frozen=True, slots=True)
class DesiredFluxConfig:
    """One merged flux configuration."""

    name: str
    resource: str
    #: The full desired ARM body ``{"properties": {...}}`` without secrets.
    body: Mapping[str, Any]
    essence: Mapping[str, Any]
    #: Protected settings: setting name -> ``SecretRef.describe()``.
    protected: Mapping[str, str]
    #: The policies that ask for exactly this body (the winner first).
    policies: tuple[str, ...]
    #: ``enforce`` when any of ``policies`` enforces, else ``audit``.
    mode: str
    conflict_paths: tuple[str, ...] = ()

    @property
    def owner(self) -> str:
        return self.policies[0]


@dataclass(frozen=True, slots=True)
class DesiredState:
    """Everything the targeting policies want on one cluster.

    Bodies, essences and owner maps are shared with every other cluster that has the same
    policies (the render cache): read them, never mutate them. The plan and the findings hand
    out copies.
    """

    cluster_id: str
    #: Non-exempt targeting policies, sorted by name.
    policies: tuple[str, ...]
    #: Mode (``enforce``/``audit``) of every targeting policy, exempt ones included.
    modes: Mapping[str, str]
    #: Remediation flags of every non-exempt policy.
    flags: Mapping[str, RemediationFlags]
    exempt: tuple[ExemptPolicy, ...]
    extension: DesiredExtension | None
    #: By name, sorted.
    flux_configurations: Mapping[str, DesiredFluxConfig]
    #: Lower-cased names of the flux configurations any targeting policy declares (exempt and
    #: overridden ones included): anything else on the cluster is unmanaged.
    declared_names: frozenset[str]
    #: Policies that declare at least one flux configuration (non-exempt).
    flux_policies: tuple[str, ...]
    conflicts: tuple[Conflict, ...] = ()
    overrides: tuple[Override, ...] = ()

    @property
    def version_window(self) -> int:
        return self.extension.version_window if self.extension else DEFAULT_WINDOW

    @property
    def pinned(self) -> bool:
        return bool(self.extension and self.extension.pinned)

    def enforcing(self, policies: Sequence[str]) -> list[str]:
        """Those of ``policies`` in ``enforce`` mode (order kept)."""
        return [p for p in policies if self.modes.get(p) == "enforce"]

    @property
    def enforce(self) -> tuple[str, ...]:
        return tuple(p for p in self.policies if self.modes.get(p) == "enforce")

    @property
    def audit(self) -> tuple[str, ...]:
        return tuple(p for p in self.policies if self.modes.get(p) != "enforce")


# --- merging ------------------------------------------------------------------------------


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


def _suffix(child_type: str, name: str) -> str:
    # Resources are stored relative to the cluster id ("/providers/...") so that the template
    # can be shared by every cluster with the same policies.
    return child_id("", child_type, name)


def _extension_template(
    declaring: list[Policy],
) -> tuple[DesiredExtension | None, list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    if not declaring:
        return None, [], []
    per_path: dict[str, list[_Candidate]] = {}

    def add(path: str, policy: Policy, value: Any) -> None:
        per_path.setdefault(path, []).append(_Candidate(policy.spec.priority, policy.name, value))

    for policy in declaring:
        spec = policy.spec.extension
        if spec is None:
            continue
        ext = spec
        if ext.name is not None:
            add(NAME_PATH, policy, ext.name)
        if ext.auto_upgrade_minor_version is not None:
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
    suffix = _suffix(essence.EXTENSIONS, name)

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
    )
    return desired, conflicts, overrides


def _last(path: str) -> str:
    return split_pointer(path)[-1]


def flux_body(spec: FluxConfigurationSpec) -> tuple[dict[str, Any], dict[str, str]]:
    """(desired ARM body without secrets, protected setting -> reference) of one config."""
    props = spec.model_dump(by_alias=True, exclude_none=True)
    props.pop("name", None)
    protected: dict[str, str] = {}
    props.pop("configurationProtectedSettings", None)
    for key, ref in (spec.configuration_protected_settings or {}).items():
        protected[key] = ref.describe()
    blob = spec.azure_blob
    if blob is not None:
        blob_body = props["azureBlob"]
        secrets: list[tuple[str, SecretRef | None, dict[str, Any]]] = [
            ("/azureBlob/accountKey", blob.account_key, blob_body),
            ("/azureBlob/sasToken", blob.sas_token, blob_body),
        ]
        sp = blob.service_principal
        if sp is not None:
            sp_body = blob_body["servicePrincipal"]
            secrets += [
                ("/azureBlob/servicePrincipal/clientSecret", sp.client_secret, sp_body),
                ("/azureBlob/servicePrincipal/clientCertificate", sp.client_certificate, sp_body),
                (
                    "/azureBlob/servicePrincipal/clientCertificatePassword",
                    sp.client_certificate_password,
                    sp_body,
                ),
            ]
        for setting, secret, holder in secrets:
            holder.pop(setting.rsplit("/", 1)[1], None)
            if secret is not None:
                protected[setting] = secret.describe()
    if "sourceKind" not in props:
        # The policy format lets the source imply the kind (models.FluxConfigurationSpec).
        if "bucket" in props:
            props["sourceKind"] = "Bucket"
        elif "azureBlob" in props:
            props["sourceKind"] = "AzureBlob"
        else:
            props["sourceKind"] = "GitRepository"
    return {"properties": props}, protected


def _flux_template(
    policies: list[Policy],
) -> tuple[dict[str, DesiredFluxConfig], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    by_name: dict[str, list[tuple[int, str, dict[str, Any], dict[str, Any], dict[str, str]]]] = {}
    for policy in policies:
        for spec in policy.spec.flux_configurations:
            body, protected = flux_body(spec)
            ess = essence.flux_configuration(body)
            by_name.setdefault(spec.name, []).append(
                (policy.spec.priority, policy.name, body, ess, protected)
            )
    configs: dict[str, DesiredFluxConfig] = {}
    conflicts: list[tuple[Any, ...]] = []
    overrides: list[tuple[Any, ...]] = []
    modes = {p.name: p.spec.mode for p in policies}
    for name in sorted(by_name):
        suffix = _suffix(essence.FLUX_CONFIGURATIONS, name)
        cands = sorted(by_name[name], key=lambda c: (-c[0], c[1]))
        top = [c for c in cands if c[0] == cands[0][0]]
        winner = top[0]
        conflict_paths: set[str] = set()
        for other in top[1:]:
            conflict_paths.update(_body_diff(winner, other))
        top_names = tuple(sorted({c[1] for c in top}))
        for path in sorted(conflict_paths):
            values = {c[1]: _value_at(c, path) for c in top}
            conflicts.append((suffix, path, top_names, values))
        if conflict_paths:
            owners = top_names
        else:
            owners = tuple(c[1] for c in cands if not _body_diff(winner, c))
            for loser in cands:
                for path in _body_diff(winner, loser):
                    overrides.append(
                        (
                            suffix,
                            path,
                            winner[1],
                            loser[1],
                            _value_at(winner, path),
                            _value_at(loser, path),
                        )
                    )
        owners = tuple(dict.fromkeys(owners))
        configs[name] = DesiredFluxConfig(
            name=name,
            resource=suffix,
            body=winner[2],
            essence=winner[3],
            protected=winner[4],
            policies=owners,
            mode="enforce" if any(modes[p] == "enforce" for p in owners) else "audit",
            conflict_paths=tuple(sorted(conflict_paths)),
        )
    return configs, conflicts, overrides


def _body_diff(a: tuple[Any, ...], b: tuple[Any, ...]) -> list[str]:
    paths = [d.path for d in diff(a[3], b[3])]
    for setting in sorted(set(a[4]) | set(b[4])):
        if a[4].get(setting) != b[4].get(setting):
            paths.append(setting_path(setting))
    return paths


def _value_at(cand: tuple[Any, ...], path: str) -> Any:
    for setting, ref in cand[4].items():
        if setting_path(setting) == path:
            return ref
    return resolve(cand[3], path)


def _build_template(policies: list[Policy]) -> _Template:
    ext, ext_conflicts, ext_overrides = _extension_template(
        [p for p in policies if p.spec.extension is not None]
    )
    configs, flux_conflicts, flux_overrides = _flux_template(policies)
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
    )


# Cache of templates keyed by the identities of the contributing policy objects. The cached
# value keeps the policies alive, so an id cannot be reused by another object while its
# entry exists. Bounded: a sweep has few distinct policy sets; a pathological one just
# recomputes.
_CACHE: dict[tuple[int, ...], tuple[tuple[Policy, ...], _Template]] = {}
_CACHE_LIMIT = 4096


def _template(policies: list[Policy]) -> _Template:
    cache_key = tuple(id(p) for p in policies)
    hit = _CACHE.get(cache_key)
    if hit is not None and all(a is b for a, b in zip(hit[0], policies, strict=True)):
        return hit[1]
    built = _build_template(policies)
    if len(_CACHE) >= _CACHE_LIMIT:
        _CACHE.clear()
    _CACHE[cache_key] = (tuple(policies), built)
    return built


def clear_cache() -> None:
    """Forget cached templates (tests; a long-running worker after a policy reload)."""
    _CACHE.clear()


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
