"""The policy reference (docs/policy-reference.md), rendered from the models.

``render_markdown()`` walks the models from ``Policy`` down and writes one table per model from
the attribute docstrings, types, defaults and constraints, framed by the prose below on
selection, merging, exemptions, secrets and waves. ``scripts/gen-policy-docs`` writes the file;
a test fails when the committed file differs from this output, so the reference cannot drift
from the code.
"""

from __future__ import annotations

import inspect
import json
import re
import typing
from collections.abc import Iterator
from datetime import date
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from fleet.policy import models, secret_refs
from fleet.policy.errors import yaml_name

_RST_LITERAL = re.compile(r"``(.+?)``")

_HEADER = """\
# Policy reference

<!-- Generated from fleet/policy/models.py and fleet/policy/reference.py by
     scripts/gen-policy-docs. Do not edit by hand: a test compares this file with the code. -->

A policy is a YAML document of `kind: FluxPolicy`. A file may hold several documents
(separated by `---`); `fleet validate` and every command taking `--policies` accept files and
directories (searched recursively for `*.yaml` and `*.yml`, hidden files and directories
skipped). Field names inside `extension` and `fluxConfigurations` are the ARM property names
of the `microsoft.flux` extension and of `fluxConfigurations` (API 2023-05-01), so what you
know from `az k8s-configuration` or an ARM template carries over.

Editors: put `# yaml-language-server: $schema=<path to docs/policy.schema.json>` at the top of
a policy file for completion and inline checks; `fleet schema` prints the same JSON Schema.

```yaml
# yaml-language-server: $schema=../docs/policy.schema.json
apiVersion: fleet/v1
kind: FluxPolicy
metadata:
  name: platform-baseline
  description: Flux and cluster-config on every prod cluster
spec:
  mode: enforce
  priority: 100
  targets:
    subscriptions: ["*"]
    resourceGroups: ["rg-prod-*"]
    tags: {env: prod}
  exclusions:
    - names: ["aks-legacy-*"]
  extension:
    autoUpgradeMinorVersion: true
    releaseTrain: Stable
    configurationSettings:
      multiTenancy.enforce: "true"
    versionWindow: 2
  fluxConfigurations:
    - name: cluster-config
      namespace: cluster-config
      gitRepository:
        url: https://github.com/fluxcd/flux2-kustomize-helm-example
        repositoryRef: {branch: main}
      kustomizations:
        infra: {path: ./infrastructure, prune: true}
        apps: {path: ./apps/staging, prune: true, dependsOn: [infra]}
      configurationProtectedSettings:
        httpsKey: {fromEnv: GIT_TOKEN}
```
"""

_PROSE = """\
## Validation

`fleet validate PATH...` loads every document of every file and reports **all** problems, one
per line, as `FILE:LINE: field.path: message`, then exits 0 (valid) or 2 (invalid). The line is
the key's line for an unknown or misplaced key, the value's line for a bad value, and the
enclosing field's line for a missing one. Values are never echoed: they could be secrets.

Refused at load time:

- YAML syntax errors, duplicate keys, unsupported tags (`!foo`, `!!binary`), non-string keys,
  documents that are not mappings, nesting deeper than 64 levels, files over 2 MiB or not UTF-8;
- unknown fields (with the closest valid name suggested) and the snake_case spelling of a field
  (`source_kind`: the policy format is camelCase), wrong types, values outside their range;
- invalid globs, invalid or never-firing cron expressions, a `failureBudget` that is neither a
  count nor a percentage, wave percentages outside 0..100 or decreasing;
- a pinned extension `version` unless `autoUpgradeMinorVersion: false` is given (ARM's default
  is `true`, and ARM refuses a pinned version with auto-upgrade on);
- inline secrets: every protected setting and secret field takes a reference, never a value;
- a flux configuration without exactly one of `gitRepository`, `bucket`, `azureBlob`, or whose
  `sourceKind` disagrees with it; `repositoryRef.commit` without `branch`; duplicate flux
  configuration names within a policy;
- `dependsOn` naming a kustomization the configuration does not have, itself, or forming a
  cycle;
- duplicate policy names across all files (both places are named), duplicate wave names;
- an exemption without a `reason`, or whose `cluster` is neither a cluster id nor a glob; an
  empty exclusion (`{}` would exclude every cluster).

Warnings (printed, exit code still 0): an exemption whose `expiresOn` has passed, a policy that
declares neither an extension nor flux configurations.

The set of loaded policies has a **revision**: a hash of their normalised content, independent
of file order, comments and formatting. Every sweep records it.

## Selection

`targets`, each entry of `exclusions`, and a wave's `selector` are **selectors**. A selector
matches a cluster when **every field it gives** matches; the items of one list are
alternatives (OR). An empty selector (`{}`, or `targets` left out) matches every cluster.

{selector_table}

Globs are shell-style and case-insensitive: `*` any run of characters, `?` one character,
`[abc]`, `[a-z]`, `[!abc]` one of (or none of) a set. A malformed glob is a load-time error,
never a pattern that silently matches nothing.

A policy applies to a cluster when its `targets` match and **no** exclusion matches:
an exclusion always wins. The policies that apply to a cluster are taken highest `priority`
first, then by name, so the result never depends on file order.

## Merging, priorities and conflicts

Several policies may target the same cluster; their declarations are merged per cluster:

- **Extension**: field by field (`name`, `autoUpgradeMinorVersion`, `releaseTrain`, `version`,
  `versionWindow`), and `configurationSettings` / `configurationProtectedSettings` key by key.
  A field or key that no policy names is not governed: whatever the cluster has is fine, and a
  field Azure fills with its default is not drift.
- **Flux configurations**: by `name`, each as a whole object. A configuration's
  `kustomizations` map is the complete desired set: an extra kustomization on the cluster is
  drift.
- Where two policies set the same field, key or configuration, the higher `priority` wins.
  With **equal priority and different values** neither wins: the cluster is reported
  `conflicting` (`POLICY_CONFLICT`) for that resource until a priority or a value changes.
  Equal values are not a conflict.
- `mode: audit` policies only report; for `mode: enforce` policies remediation jobs may write.

## Exemptions

An exemption keeps a targeted cluster in the report, with state `exempt` and the exemption's
`reason` (and `ticket`), instead of judging it. `cluster` is the cluster's full ARM id or a glob
over ids (case-insensitive), for example `*/managedClusters/aks-lab-*`. The first exemption of
the policy that matches the cluster and has not expired is the one in force. `expiresOn` is the
last exempt day (UTC); from the next day the cluster is judged again, and `fleet validate` warns
about exemptions that have expired. Exemptions are per policy: a cluster exempt from one policy
is still judged by the others. To stop targeting a cluster at all, use `exclusions`.

## Secrets by reference

Secrets never appear in a policy. `configurationProtectedSettings` (of the extension and of a
flux configuration) and the secret fields of sources (`azureBlob.accountKey`, `sasToken`,
`servicePrincipal.clientSecret`, `clientCertificate`, `clientCertificatePassword`, and
`ociRepository.tlsConfig.clientCertificate`, `privateKey`, `caCertificate`) take a
reference:

```yaml
configurationProtectedSettings:
  httpsKey: {fromEnv: GIT_TOKEN}          # an environment variable of the fleet process
  sshPrivateKey: {fromFile: keys/id_rsa}  # a file, relative to the policy file's directory
  bucketSecretKey: {fromKeyVault: {vault: kv-platform, name: bucket-key}}  # Azure Key Vault
```

A reference is resolved only at the moment of writing to ARM. The value is never logged,
stored, printed or put in a plan. Azure never returns protected settings, so drift cannot be
read back: fleet keeps a keyed fingerprint (HMAC) of what it applied, and a rotated secret
shows as drift of that setting. An inline value is a load-time error that does not echo it.

`fromKeyVault` reads the secret with fleet's own credential (the role "Key Vault Secrets User"
on the vault). Without `version` the vault's current version is used; fleet records the
version id it applied next to the fingerprint, and when the vault has a newer one the setting
is reported as `SECRET_ROTATION_PENDING` until a remediation job has re-applied it, wave by
wave ([keyvault.md](keyvault.md)).

## Rollout waves

`remediation.rollout` shapes remediation jobs for the clusters a policy targets:

- `waves` run in order. A wave takes the targeted clusters its `selector` matches, or, with
  `percent`, the clusters up to that **cumulative** share of all targeted clusters (so
  `10` then `100` means 10 %, then the remaining 90 %). A cluster belongs to the first wave that
  takes it; percentage waves pick clusters by a stable hash of their id, so a re-run puts the
  same clusters in the same waves. Without `waves`, one wave holds every targeted cluster.
- `maxConcurrency` caps the clusters written at once; `soakSeconds` pauses between waves;
  `approval: true` on a wave waits for an operator before the wave starts.
- `failureBudget` stops the job once failures exceed a count (`3`) or a share (`"5%"`) of the
  job's clusters.
- `schedule` (cron, UTC) runs scheduled sweeps; `deleteUnmanaged`, `migrateFluxV1` and
  `recreateOnImmutableChange` allow the destructive fixes (deleting flux configurations no
  policy declares, deleting Flux v1 configurations that block the extension, delete + create
  when a create-only field such as `scope` or `namespace` differs). All are off by default.
- `windows`, `freezes` and `respectAksMaintenance` say when remediation may write the policy's
  clusters; a cluster outside them is `deferred`, never a failure
  ([windows.md](windows.md)). `auto` follows each scheduled sweep with a remediation that creates
  what new clusters lack ([enforcement.md](enforcement.md)).

## Flux health

`health` says how fleet judges what Flux itself reports about the policy's flux configurations
(the fluxconfig agent's `statuses[]`, `complianceState` and `statusUpdatedAt`, as ARM shows
them). Every field has a default, so a policy without `health` is judged with them:

```yaml
health:
  pendingFor: PT1H     # or 1h, 90m, 2d: one minute to 30 days
  staleAfter: PT6H
  objects: true
```

- `FLUX_OBJECT_NOT_READY` (noncompliant, medium): a Flux object of `statuses[]`
  (GitRepository, Kustomization, HelmRelease, ...) is `Non-Compliant` or its `Ready`
  condition is `False`. One finding per object, naming its kind, namespace and name, Flux's
  reason and message, and a hint when the message is a known one (a HelmRelease blocked by
  multi-tenancy's cross-namespace rule, an API version no longer served, no artifact, a
  dependency not ready, refused credentials).
- `FLUX_CONFIG_PENDING` (noncompliant, medium): `complianceState: Pending` for longer than
  `pendingFor`, counted from the configuration's last change in ARM
  (`systemData.lastModifiedAt`).
- `FLUX_STATUS_STALE` (unknown, low): `statusUpdatedAt` older than `staleAfter`; the agent
  stopped reporting, so nothing else Flux says about that configuration is judged.

"Now" is the sweep's clock (`FLEET_CLOCK`), never the judging process's own. None of these is
judged on an unreachable or stopped cluster (what Flux last said there is stale by
definition), and none is fixed by a write: remediation skips them (`not-writable`).
When policies of different priority declare the same flux configuration, the winning policy's
`health` applies.

## Field reference

Defaults: "–" means the field is optional and, when left out, not governed (Azure's own default
applies where there is one, and is not drift).
"""


_SELECTOR_FIELDS = [
    (
        "subscriptions",
        'the subscription id is listed (case-insensitive); `"*"` matches any subscription the '
        "credential can see",
    ),
    ("resourceGroups", "any glob matches the resource group name"),
    (
        "clusterTypes",
        "the cluster is `managedClusters` (AKS) or `connectedClusters` (Arc), as listed",
    ),
    ("locations", "the region is listed, ignoring case and spaces (`West Europe` = `westeurope`)"),
    (
        "tags",
        "**every** listed tag is present (tag names are case-insensitive, as in ARM) and its "
        'value matches the glob; `"*"` only requires the tag',
    ),
    ("names", "any glob matches the cluster name"),
]


def render_markdown() -> str:
    """The whole reference page, Markdown, ending with a newline."""
    table = "\n".join(
        ["| field | matches when |", "|---|---|"]
        + [f"| `{name}` | {text} |" for name, text in _SELECTOR_FIELDS]
    )
    parts = [_HEADER, _PROSE.replace("{selector_table}", table)]
    for model, paths in _models():
        parts.append(_section(model, paths))
    return "\n".join(p.rstrip("\n") + "\n" for p in parts)


# --- walking the models --------------------------------------------------------------------


def _models() -> list[tuple[type[BaseModel], list[str]]]:
    """Every model reachable from ``Policy``, depth first in field order, with the YAML paths
    where it appears."""
    order: list[type[BaseModel]] = []
    paths: dict[type[BaseModel], list[str]] = {}

    def visit(model: type[BaseModel], path: str) -> None:
        paths.setdefault(model, []).append(path)
        if model in order:
            return
        order.append(model)
        hints = typing.get_type_hints(model, include_extras=True)
        for attribute in model.model_fields:
            name = yaml_name(attribute, model)
            for child, suffix in _nested_models(hints[attribute]):
                visit(child, f"{path}.{name}{suffix}" if path else f"{name}{suffix}")

    visit(models.Policy, "")
    return [(m, [p for p in paths[m] if p]) for m in order]


def _nested_models(hint: Any, suffix: str = "") -> Iterator[tuple[type[BaseModel], str]]:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Annotated:
        yield from _nested_models(args[0], suffix)
    elif origin in (Union, typing.get_origin(int | None)):
        for arg in args:
            yield from _nested_models(arg, suffix)
    elif origin is list:
        yield from _nested_models(args[0], suffix + "[]")
    elif origin is dict:
        yield from _nested_models(args[1], suffix + ".*")
    elif isinstance(hint, type) and issubclass(hint, BaseModel):
        yield hint, suffix


def _section(model: type[BaseModel], paths: list[str]) -> str:
    lines = [f"### {model.__name__}", ""]
    doc = _text(model.__doc__ or "")
    if doc:
        lines += [doc, ""]
    if paths:
        lines += ["At: " + ", ".join(f"`{p}`" for p in paths), ""]
    lines += ["| field | type | default | description |", "|---|---|---|---|"]
    hints = typing.get_type_hints(model, include_extras=True)
    for attribute, info in model.model_fields.items():
        description = _text(info.description or "")
        for meta in info.metadata:
            pattern = getattr(meta, "pattern", None)
            if pattern in models.PATTERN_HINTS:
                hint = models.PATTERN_HINTS[pattern]
                description += f" {hint[0].upper()}{hint[1:]}."
        type_text = _type(hints[attribute]) + _bounds(info.metadata)
        lines.append(
            f"| `{yaml_name(attribute, model)}` | {_cell(type_text)} | "
            f"{_cell(_default(info))} | {_cell(description.strip())} |"
        )
    return "\n".join(lines) + "\n"


# --- rendering pieces ----------------------------------------------------------------------

_NAMED: list[tuple[Any, str]] = [
    (models.Glob, "glob"),
    (models.Name, "name"),
    (models.K8sName, "Kubernetes name"),
    (secret_refs.SecretField, "[SecretRef](#secretref)"),
]
_SCALARS: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    date: "date (YYYY-MM-DD)",
}


def _type(hint: Any) -> str:
    for alias, text in _NAMED:
        if hint == alias:
            return text
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Annotated:
        return _type(args[0]) + _bounds(args[1:])
    if origin in (Union, typing.get_origin(int | None)):
        return " or ".join(_type(a) for a in args if a is not type(None))
    if origin is Literal:
        return " \\| ".join(f"`{json.dumps(a)}`" for a in args)
    if origin is list:
        return f"list of {_type(args[0])}"
    if origin is dict:
        key = _type(args[0])
        return f"map of {_type(args[1])}" if key == "string" else f"map {key} → {_type(args[1])}"
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return f"[{hint.__name__}](#{hint.__name__.lower()})"
    return _SCALARS.get(hint, getattr(hint, "__name__", str(hint)))


def _bounds(metadata: Any) -> str:
    low = high = None
    for meta in metadata:
        # annotated_types.Ge / Le, recognised by their attribute (no import of that package)
        if isinstance(getattr(meta, "ge", None), int | float):
            low = meta.ge
        elif isinstance(getattr(meta, "le", None), int | float):
            high = meta.le
        else:
            nested = getattr(meta, "metadata", None)  # a FieldInfo inside Annotated
            if isinstance(nested, list) and nested:
                return _bounds(nested)
    if low is not None and high is not None:
        return f" ({low:g}..{high:g})"
    if low is not None:
        return f" (≥ {low:g})"
    if high is not None:
        return f" (≤ {high:g})"
    return ""


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    default = info.get_default(call_default_factory=True)
    if default is None:
        return "–"
    if isinstance(default, BaseModel):
        return "see below" if default.model_fields_set else "all defaults"
    return f"`{json.dumps(default)}`"


def _text(doc: str) -> str:
    """A docstring as one Markdown paragraph (RST literals to Markdown code)."""
    cleaned = inspect.cleandoc(doc)
    return _RST_LITERAL.sub(r"`\1`", " ".join(cleaned.split()))


def _cell(text: str) -> str:
    # A literal | inside a table cell must be escaped (already-escaped ones stay as they are).
    return re.sub(r"(?<!\\)\|", r"\\|", text)
