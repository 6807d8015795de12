"""Semantic checks of one policy: the rules a single field's type cannot express.

Called by ``fleet.policy.loading`` after a document has validated against the models. Each
check returns ``(path, message)`` pairs whose path is the YAML field path (camelCase keys, list
indexes as ints), so that the loader can point at the exact line of the offending field. The
functions are pure: no I/O, no clock (``today`` is a parameter).

Rules checked here (docs/contracts.md, Policy file):

- a pinned extension ``version`` needs ``autoUpgradeMinorVersion: false`` (ARM defaults it to
  true, so leaving it out is an error too);
- a flux configuration has exactly one source, consistent with ``sourceKind``; its name is
  unique in the policy; ``repositoryRef.commit`` comes with a ``branch`` (ARM requires it);
- ``dependsOn`` names kustomizations of the same configuration, with no cycle;
- wave names are unique and percentages are cumulative (never decrease);
- ``remediation.auto`` needs enforce mode and a ``schedule``;
- an exemption's ``cluster`` is a cluster id or a glob over ids; an empty exclusion is refused
  because it would exclude every cluster;
- warnings: an exemption that has expired, a policy that declares nothing.
"""

from __future__ import annotations

import difflib
from datetime import date

from fleet.core.ids import ClusterId, InvalidResourceId
from fleet.policy import globs, promotion
from fleet.policy.models import FluxConfigurationSpec, Kustomization, Policy, Selector

FieldPath = tuple[str | int, ...]
Finding = tuple[FieldPath, str]

_SOURCES: dict[str, str] = {
    # YAML field -> the sourceKind it implies
    "gitRepository": "GitRepository",
    "bucket": "Bucket",
    "azureBlob": "AzureBlob",
    "ociRepository": "OCIRepository",
}


def check_policy(policy: Policy) -> list[Finding]:
    """Every semantic error of ``policy``, in document order."""
    findings: list[Finding] = []
    findings += _check_extension(policy)
    findings += _check_exclusions(policy)
    findings += _check_exemptions(policy)
    seen: dict[str, int] = {}
    for index, config in enumerate(policy.spec.flux_configurations):
        base: FieldPath = ("spec", "fluxConfigurations", index)
        if config.name in seen:
            findings.append(
                (
                    (*base, "name"),
                    f"duplicate flux configuration name {config.name!r} "
                    f"(also fluxConfigurations[{seen[config.name]}])",
                )
            )
        else:
            seen[config.name] = index
        findings += _check_source(config, base)
        findings += _check_kustomizations(config.kustomizations or {}, (*base, "kustomizations"))
    findings += _check_waves(policy)
    findings += _check_auto(policy)
    return findings


def policy_warnings(policy: Policy, *, today: date) -> list[Finding]:
    """Problems that do not make the policy invalid but that its author should hear about."""
    findings: list[Finding] = []
    for index, exemption in enumerate(policy.spec.exemptions):
        if exemption.expires_on is not None and exemption.expires_on < today:
            findings.append(
                (
                    ("spec", "exemptions", index, "expiresOn"),
                    f"exemption expired on {exemption.expires_on.isoformat()}; "
                    "the cluster is judged again",
                )
            )
    if policy.spec.extension is None and not policy.spec.flux_configurations:
        findings.append(
            (("spec",), "the policy declares neither an extension nor fluxConfigurations")
        )
    return findings


# --- the extension -----------------------------------------------------------------------


def _check_extension(policy: Policy) -> list[Finding]:
    ext = policy.spec.extension
    if ext is None:
        return []
    promoting: list[Finding] = [
        (("spec", "extension", *path), message) for path, message in promotion.check(ext)
    ]
    if promoting or ext.version is None:
        return promoting
    path: FieldPath = ("spec", "extension", "version")
    if ext.auto_upgrade_minor_version is None:
        # ARM's default is true, and ARM refuses a pinned version with auto-upgrade on.
        return [
            (
                path,
                "a pinned version needs autoUpgradeMinorVersion: false "
                "(it defaults to true in ARM)",
            )
        ]
    if ext.auto_upgrade_minor_version:
        return [(path, "a pinned version needs autoUpgradeMinorVersion: false, not true")]
    return []


# --- selection -----------------------------------------------------------------------------


def _is_empty(selector: Selector) -> bool:
    return all(getattr(selector, name) is None for name in Selector.model_fields)


def _check_exclusions(policy: Policy) -> list[Finding]:
    return [
        (
            ("spec", "exclusions", index),
            "an empty exclusion matches, and so excludes, every cluster",
        )
        for index, selector in enumerate(policy.spec.exclusions)
        if _is_empty(selector)
    ]


def _check_exemptions(policy: Policy) -> list[Finding]:
    findings: list[Finding] = []
    for index, exemption in enumerate(policy.spec.exemptions):
        if globs.is_glob(exemption.cluster):
            continue  # a glob over ids, e.g. */managedClusters/aks-lab-*
        try:
            ClusterId.parse(exemption.cluster)
        except InvalidResourceId:
            findings.append(
                (
                    ("spec", "exemptions", index, "cluster"),
                    "not an AKS or Arc cluster id (/subscriptions/.../resourceGroups/.../"
                    "providers/Microsoft.ContainerService/managedClusters/NAME) nor a glob",
                )
            )
    return findings


# --- flux configurations -------------------------------------------------------------------


def _check_source(config: FluxConfigurationSpec, base: FieldPath) -> list[Finding]:
    given = [field for field in _SOURCES if getattr(config, _attr(field)) is not None]
    if not given:
        return [
            (
                base,
                "a flux configuration needs a source: one of gitRepository, bucket, azureBlob, "
                "ociRepository",
            )
        ]
    if len(given) > 1:
        return [
            (
                (*base, given[1]),
                f"give exactly one source; found {' and '.join(given)}",
            )
        ]
    findings: list[Finding] = []
    implied = _SOURCES[given[0]]
    if config.source_kind is not None and config.source_kind != implied:
        findings.append(
            (
                (*base, "sourceKind"),
                f"sourceKind is {config.source_kind} but the source given is {given[0]} "
                f"(sourceKind {implied})",
            )
        )
    git = config.git_repository
    if git is not None and git.repository_ref is not None:
        ref = git.repository_ref
        ref_path: FieldPath = (*base, "gitRepository", "repositoryRef")
        if not (ref.branch or ref.tag or ref.semver or ref.commit):
            findings.append((ref_path, "give one of branch, tag, semver or commit"))
        elif ref.commit and not ref.branch:
            findings.append(((*ref_path, "commit"), "ARM requires a branch together with commit"))
    return findings


def _attr(yaml_name: str) -> str:
    return {
        "gitRepository": "git_repository",
        "azureBlob": "azure_blob",
        "ociRepository": "oci_repository",
    }.get(yaml_name, yaml_name)


def _check_kustomizations(
    kustomizations: dict[str, Kustomization], base: FieldPath
) -> list[Finding]:
    findings: list[Finding] = []
    graph: dict[str, list[str]] = {}
    for name, kustomization in kustomizations.items():
        path: FieldPath = (*base, name, "dependsOn")
        deps = kustomization.depends_on or []
        known: list[str] = []
        for dep in deps:
            if dep == name:
                findings.append((path, f"kustomization {name!r} depends on itself"))
            elif dep not in kustomizations:
                hint = _closest(dep, list(kustomizations))
                findings.append((path, f"unknown kustomization {dep!r}{hint}"))
            elif dep in known:
                findings.append((path, f"{dep!r} is listed twice"))
            else:
                known.append(dep)
        graph[name] = known
    for cycle in _cycles(graph):
        findings.append(((*base, cycle[0], "dependsOn"), f"dependsOn cycle: {' -> '.join(cycle)}"))
    return findings


def _closest(word: str, candidates: list[str]) -> str:
    match = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else ""


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Each elementary cycle found by a depth-first walk, once, as ``[a, b, ..., a]``.

    Self-loops are reported separately and are not in ``graph``. The walk follows the
    declaration order so that the same file always reports the same cycle.
    """
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node)
    return cycles


# --- rollout -------------------------------------------------------------------------------


def _check_waves(policy: Policy) -> list[Finding]:
    findings: list[Finding] = []
    waves = policy.spec.remediation.rollout.waves or []
    base: FieldPath = ("spec", "remediation", "rollout", "waves")
    names: dict[str, int] = {}
    last_percent: float | None = None
    for index, wave in enumerate(waves):
        if wave.name in names:
            findings.append(
                (
                    (*base, index, "name"),
                    f"duplicate wave name {wave.name!r} (also waves[{names[wave.name]}])",
                )
            )
        else:
            names[wave.name] = index
        if wave.percent is not None:
            if last_percent is not None and wave.percent < last_percent:
                findings.append(
                    (
                        (*base, index, "percent"),
                        f"percentages are cumulative: {wave.percent:g} after {last_percent:g}",
                    )
                )
            last_percent = wave.percent
    return findings


def _check_auto(policy: Policy) -> list[Finding]:
    """``remediation.auto`` follows scheduled sweeps and writes: it needs both."""
    remediation = policy.spec.remediation
    if remediation.auto is None:
        return []
    path: FieldPath = ("spec", "remediation", "auto")
    if policy.spec.mode != "enforce":
        return [(path, "remediation.auto writes: the policy must be in enforce mode")]
    if remediation.schedule is None:
        return [(path, "remediation.auto follows scheduled sweeps: give remediation.schedule")]
    return []
