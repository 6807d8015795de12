"""Every load-time rule, each asserted as the exact ``FILE:LINE: path: message`` lines.

Each case changes one thing in ``helpers.VALID`` (line numbers refer to that text) and lists
every issue the loader must report, so a rule that starts reporting the wrong line, the wrong
path, an extra error, or an echo of the value fails here.
"""

from __future__ import annotations

import pytest

from tests.policy.helpers import VALID, edit, errors_of

INLINE = (
    "inline secrets are not allowed; reference the value with {fromEnv: VAR}, {fromFile: PATH} "
    "or {fromKeyVault: {vault: NAME, name: SECRET}}"
)
NAME_RULE = (
    "must be 1-63 lower-case letters, digits or '-', starting and ending with a letter or digit"
)

CASES: list[tuple[str, str, str, list[str]]] = [
    # (id, old, new, expected issues)
    # --- unknown keys, with suggestions ------------------------------------------------------
    (
        "unknown-key-suggestion",
        "      kustomizations:\n",
        "      kustomisations:\n",
        [
            "p.yaml:32: spec.fluxConfigurations[0].kustomisations: "
            "unknown field 'kustomisations'; did you mean 'kustomizations'?"
        ],
    ),
    (
        "unknown-top-level-key",
        "apiVersion: fleet/v1\n",
        "apiversion: fleet/v1\n",
        [
            "p.yaml:1: apiVersion: required field is missing",
            "p.yaml:1: apiversion: unknown field 'apiversion'; did you mean 'apiVersion'?",
        ],
    ),
    (
        "unknown-key-no-suggestion",
        "    versionWindow: 2\n",
        "    frobnicate: 2\n",
        [
            "p.yaml:24: spec.extension.frobnicate: unknown field 'frobnicate'; expected one of: "
            "versionPolicy, promotion, name, autoUpgradeMinorVersion, releaseTrain, version, "
            "configurationSettings, configurationProtectedSettings, versionWindow"
        ],
    ),
    (
        "snake-case-is-not-policy-syntax",
        "      scope: cluster\n",
        "      source_kind: GitRepository\n",
        [
            "p.yaml:27: spec.fluxConfigurations[0].source_kind: "
            "unknown field 'source_kind'; did you mean 'sourceKind'?"
        ],
    ),
    (
        "secret-ref-unknown-key",
        "httpsKey: {fromEnv: GIT_TOKEN}",
        "httpsKey: {value: GIT_TOKEN}",
        [
            "p.yaml:36: spec.fluxConfigurations[0].configurationProtectedSettings.httpsKey.value: "
            "unknown field 'value'; expected one of: fromEnv, fromFile, fromKeyVault",
        ],
    ),
    # --- wrong types ---------------------------------------------------------------------------
    (
        "int-expected",
        "  priority: 100\n",
        "  priority: [100]\n",
        ["p.yaml:8: spec.priority: expected an integer, got a list"],
    ),
    (
        "literal",
        "  mode: enforce\n",
        "  mode: Enforce\n",
        ["p.yaml:7: spec.mode: expected 'audit' or 'enforce'"],
    ),
    (
        "mapping-expected",
        "    tags: {env: prod}\n",
        "    tags: [env, prod]\n",
        ["p.yaml:12: spec.targets.tags: expected a mapping, got a list"],
    ),
    (
        "list-expected",
        '    resourceGroups: ["rg-prod-*"]\n',
        '    resourceGroups: "rg-prod-*"\n',
        ["p.yaml:11: spec.targets.resourceGroups: expected a list, got a string"],
    ),
    (
        "model-expected",
        "  targets:\n",
        "  targets: everything\n  extra:\n",
        [
            "p.yaml:9: spec.targets: expected a mapping, got a string",
            "p.yaml:10: spec.extra: unknown field 'extra'; expected one of: mode, priority, "
            "targets, exclusions, exemptions, extension, fluxConfigurations, remediation, health",
        ],
    ),
    (
        "bool-expected",
        "prune: true}\n        apps",
        "prune: maybe}\n        apps",
        [
            "p.yaml:33: spec.fluxConfigurations[0].kustomizations.infra.prune: "
            "expected true or false, got a string"
        ],
    ),
    (
        "unquoted-setting-bool",
        '      multiTenancy.enforce: "true"\n',
        "      multiTenancy.enforce: true\n",
        [
            "p.yaml:23: spec.extension.configurationSettings.multiTenancy.enforce: "
            'expected a string, got a boolean; quote it: "true"'
        ],
    ),
    (
        "unquoted-tag-number",
        '{tags: {ring: "0"}}',
        "{tags: {ring: 0}}",
        [
            "p.yaml:41: spec.remediation.rollout.waves[0].selector.tags.ring: "
            "expected a string, got a number; quote it"
        ],
    ),
    (
        "date-expected",
        "      expiresOn: 2099-12-31\n",
        "      expiresOn: next year\n",
        ["p.yaml:18: spec.exemptions[0].expiresOn: expected a date (YYYY-MM-DD), got a string"],
    ),
    (
        "impossible-date",
        "      expiresOn: 2099-12-31\n",
        "      expiresOn: 2099-02-30\n",
        ["p.yaml:18: spec.exemptions[0].expiresOn: not a valid date or timestamp"],
    ),
    (
        "wrong-api-version",
        "apiVersion: fleet/v1\n",
        "apiVersion: fleet/v2\n",
        ["p.yaml:1: apiVersion: expected 'fleet/v1'"],
    ),
    # --- names and patterns --------------------------------------------------------------------
    (
        "policy-name",
        "  name: platform\n",
        "  name: Platform_1\n",
        [f"p.yaml:4: metadata.name: {NAME_RULE}"],
    ),
    (
        "kustomization-name-key",
        "        infra: {path: ./infrastructure, prune: true}\n",
        "        Infra: {path: ./infrastructure, prune: true}\n",
        [
            f"p.yaml:33: spec.fluxConfigurations[0].kustomizations.Infra: invalid name 'Infra': "
            f"{NAME_RULE}",
        ],
    ),
    (
        "git-url",
        "        url: https://github.com/fluxcd/flux2-kustomize-helm-example\n",
        "        url: github.com/fluxcd/flux2-kustomize-helm-example\n",
        [
            "p.yaml:30: spec.fluxConfigurations[0].gitRepository.url: "
            "must start with https://, http://, ssh:// or git@"
        ],
    ),
    (
        "version-pattern",
        "    autoUpgradeMinorVersion: true\n",
        "    autoUpgradeMinorVersion: false\n    version: latest\n",
        ["p.yaml:21: spec.extension.version: must be a version such as 1.17.3"],
    ),
    (
        "env-var-name",
        "{fromEnv: GIT_TOKEN}",
        "{fromEnv: 1-TOKEN}",
        [
            "p.yaml:36: spec.fluxConfigurations[0].configurationProtectedSettings.httpsKey."
            "fromEnv: must be an environment variable name (letters, digits, '_')"
        ],
    ),
    (
        "subscription-id",
        '    subscriptions: ["00000000-0000-0000-0000-000000000001"]\n',
        '    subscriptions: ["prod-subscription"]\n',
        [
            "p.yaml:10: spec.targets.subscriptions: "
            "'prod-subscription' is not a subscription id (a GUID) or '*'"
        ],
    ),
    (
        "empty-list",
        '    resourceGroups: ["rg-prod-*"]\n',
        "    resourceGroups: []\n",
        [
            "p.yaml:11: spec.targets.resourceGroups: "
            "an empty list matches no cluster; leave the field out instead"
        ],
    ),
    # --- globs ---------------------------------------------------------------------------------
    (
        "bad-glob-name",
        '    - names: ["aks-legacy-*"]\n',
        '    - names: ["aks-legacy-[*"]\n',
        [
            "p.yaml:14: spec.exclusions[0].names[0]: "
            "invalid glob: unclosed '[' at position 12 in 'aks-legacy-[*'"
        ],
    ),
    (
        "bad-glob-tag-value",
        "    tags: {env: prod}\n",
        '    tags: {env: "prod]"}\n',  # quoted: unquoted, YAML itself rejects the ]
        ["p.yaml:12: spec.targets.tags.env: invalid glob: unmatched ']' at position 5 in 'prod]'"],
    ),
    (
        "bad-glob-exemption",
        '    - cluster: "*/managedClusters/aks-lab-*"\n',
        '    - cluster: "*/managedClusters/aks-lab-[z-a]"\n',
        [
            "p.yaml:16: spec.exemptions[0].cluster: invalid glob: bad range z-a in "
            "'*/managedClusters/aks-lab-[z-a]'"
        ],
    ),
    # --- extension version pin -------------------------------------------------------------------
    (
        "version-with-auto-upgrade",
        "    releaseTrain: Stable\n",
        '    releaseTrain: Stable\n    version: "1.17.3"\n',
        [
            "p.yaml:22: spec.extension.version: "
            "a pinned version needs autoUpgradeMinorVersion: false, not true"
        ],
    ),
    (
        "version-auto-upgrade-left-out",
        "    autoUpgradeMinorVersion: true\n",
        '    version: "1.17.3"\n',
        [
            "p.yaml:20: spec.extension.version: "
            "a pinned version needs autoUpgradeMinorVersion: false (it defaults to true in ARM)"
        ],
    ),
    # --- secrets -------------------------------------------------------------------------------
    (
        "inline-protected-setting",
        "httpsKey: {fromEnv: GIT_TOKEN}",
        "httpsKey: hunter2-do-not-print",
        [
            "p.yaml:36: spec.fluxConfigurations[0].configurationProtectedSettings.httpsKey: "
            + INLINE
        ],
    ),
    (
        "inline-extension-protected-setting",
        "    versionWindow: 2\n",
        "    versionWindow: 2\n    configurationProtectedSettings:\n      token: 12345\n",
        [f"p.yaml:26: spec.extension.configurationProtectedSettings.token: {INLINE}"],
    ),
    (
        "secret-ref-both",
        "{fromEnv: GIT_TOKEN}",
        "{fromEnv: GIT_TOKEN, fromFile: token.txt}",
        [
            "p.yaml:36: spec.fluxConfigurations[0].configurationProtectedSettings.httpsKey: "
            "give exactly one of fromEnv, fromFile and fromKeyVault"
        ],
    ),
    # --- flux configurations -------------------------------------------------------------------
    (
        "depends-on-unknown",
        "dependsOn: [infra]",
        "dependsOn: [infra2]",
        [
            "p.yaml:34: spec.fluxConfigurations[0].kustomizations.apps.dependsOn: "
            "unknown kustomization 'infra2'; did you mean 'infra'?"
        ],
    ),
    (
        "depends-on-itself",
        "dependsOn: [infra]",
        "dependsOn: [apps]",
        [
            "p.yaml:34: spec.fluxConfigurations[0].kustomizations.apps.dependsOn: "
            "kustomization 'apps' depends on itself"
        ],
    ),
    (
        "depends-on-twice",
        "dependsOn: [infra]",
        "dependsOn: [infra, infra]",
        [
            "p.yaml:34: spec.fluxConfigurations[0].kustomizations.apps.dependsOn: "
            "'infra' is listed twice"
        ],
    ),
    (
        "depends-on-cycle-of-three",
        "        infra: {path: ./infrastructure, prune: true}\n",
        "        infra: {path: ./infrastructure, dependsOn: [crds]}\n"
        "        crds: {path: ./crds, dependsOn: [apps]}\n",
        [
            "p.yaml:33: spec.fluxConfigurations[0].kustomizations.infra.dependsOn: "
            "dependsOn cycle: infra -> crds -> apps -> infra"
        ],
    ),
    (
        "no-source",
        "      gitRepository:\n"
        "        url: https://github.com/fluxcd/flux2-kustomize-helm-example\n"
        "        repositoryRef: {branch: main}\n",
        "",
        [
            "p.yaml:26: spec.fluxConfigurations[0]: "
            "a flux configuration needs a source: one of gitRepository, bucket, azureBlob, "
            "ociRepository"
        ],
    ),
    (
        "source-kind-mismatch",
        "      scope: cluster\n",
        "      scope: cluster\n      sourceKind: AzureBlob\n",
        [
            "p.yaml:28: spec.fluxConfigurations[0].sourceKind: sourceKind is AzureBlob but the "
            "source given is gitRepository (sourceKind GitRepository)"
        ],
    ),
    (
        "two-sources",
        "      kustomizations:\n",
        "      azureBlob: {url: https://x.blob.core.windows.net, containerName: c}\n"
        "      kustomizations:\n",
        [
            "p.yaml:32: spec.fluxConfigurations[0].azureBlob: "
            "give exactly one source; found gitRepository and azureBlob"
        ],
    ),
    (
        "empty-repository-ref",
        "        repositoryRef: {branch: main}\n",
        "        repositoryRef: {}\n",
        [
            "p.yaml:31: spec.fluxConfigurations[0].gitRepository.repositoryRef: "
            "give one of branch, tag, semver or commit"
        ],
    ),
    (
        "duplicate-flux-configuration",
        "  remediation:\n",
        "    - name: cluster-config\n"
        "      gitRepository: {url: https://example.com/x.git}\n"
        "  remediation:\n",
        [
            "p.yaml:37: spec.fluxConfigurations[1].name: "
            "duplicate flux configuration name 'cluster-config' (also fluxConfigurations[0])"
        ],
    ),
    # --- remediation ---------------------------------------------------------------------------
    (
        "percent-over-100",
        "{name: broad, percent: 100}",
        "{name: broad, percent: 100.5}",
        ["p.yaml:42: spec.remediation.rollout.waves[1].percent: must be less than or equal to 100"],
    ),
    (
        "percent-negative",
        "{name: broad, percent: 100}",
        "{name: broad, percent: -1}",
        [
            "p.yaml:42: spec.remediation.rollout.waves[1].percent: "
            "must be greater than or equal to 0"
        ],
    ),
    (
        "percent-decreasing",
        "        - {name: broad, percent: 100}\n",
        "        - {name: broad, percent: 50}\n        - {name: rest, percent: 20}\n",
        [
            "p.yaml:43: spec.remediation.rollout.waves[2].percent: "
            "percentages are cumulative: 20 after 50"
        ],
    ),
    (
        "wave-both-kinds",
        "{name: broad, percent: 100}",
        "{name: broad, percent: 100, selector: {names: [x]}}",
        [
            "p.yaml:42: spec.remediation.rollout.waves[1]: "
            "a wave needs exactly one of selector and percent"
        ],
    ),
    (
        "duplicate-wave-name",
        "{name: broad, percent: 100}",
        "{name: canary, percent: 100}",
        [
            "p.yaml:42: spec.remediation.rollout.waves[1].name: "
            "duplicate wave name 'canary' (also waves[0])"
        ],
    ),
    (
        "cron-invalid",
        '    schedule: "0 */6 * * *"\n',
        '    schedule: "0 */6 * * * *"\n',
        [
            "p.yaml:38: spec.remediation.schedule: "
            "'0 */6 * * * *' is not a valid 5-field cron expression"
        ],
    ),
    (
        "cron-out-of-range",
        '    schedule: "0 */6 * * *"\n',
        '    schedule: "0 25 * * *"\n',
        [
            "p.yaml:38: spec.remediation.schedule: "
            "'0 25 * * *' is not a valid 5-field cron expression"
        ],
    ),
    (
        "failure-budget-percent",
        "      failureBudget: 5%\n",
        "      failureBudget: 150%\n",
        ["p.yaml:43: spec.remediation.rollout.failureBudget: percentage '150%' is outside 0..100"],
    ),
    (
        "failure-budget-bool",
        "      failureBudget: 5%\n",
        "      failureBudget: true\n",
        [
            "p.yaml:43: spec.remediation.rollout.failureBudget: "
            "expected a count (3) or a percentage ('5%')"
        ],
    ),
    (
        "failure-budget-negative",
        "      failureBudget: 5%\n",
        "      failureBudget: -2\n",
        [
            "p.yaml:43: spec.remediation.rollout.failureBudget: "
            "a failure budget count cannot be negative"
        ],
    ),
    (
        "max-concurrency",
        "      failureBudget: 5%\n",
        "      failureBudget: 5%\n      maxConcurrency: 0\n",
        ["p.yaml:44: spec.remediation.rollout.maxConcurrency: must be greater than or equal to 1"],
    ),
    # --- exemptions and exclusions -----------------------------------------------------------
    (
        "exemption-without-reason",
        "      reason: lab\n",
        "",
        ["p.yaml:16: spec.exemptions[0].reason: required field is missing"],
    ),
    (
        "exemption-blank-reason",
        "      reason: lab\n",
        '      reason: "  "\n',
        ["p.yaml:17: spec.exemptions[0].reason: an exemption needs a reason"],
    ),
    (
        "exemption-not-a-cluster-id",
        '    - cluster: "*/managedClusters/aks-lab-*"\n',
        "    - cluster: aks-lab-1\n",
        [
            "p.yaml:16: spec.exemptions[0].cluster: not an AKS or Arc cluster id "
            "(/subscriptions/.../resourceGroups/.../providers/Microsoft.ContainerService/"
            "managedClusters/NAME) nor a glob"
        ],
    ),
    (
        "empty-exclusion",
        '    - names: ["aks-legacy-*"]\n',
        "    - {}\n",
        [
            "p.yaml:14: spec.exclusions[0]: "
            "an empty exclusion matches, and so excludes, every cluster"
        ],
    ),
    # --- YAML level ----------------------------------------------------------------------------
    (
        "duplicate-key",
        "  priority: 100\n",
        "  priority: 100\n  priority: 200\n",
        ["p.yaml:9: spec.priority: duplicate key 'priority' (first at line 8)"],
    ),
    (
        "non-string-key",
        "    tags: {env: prod}\n",
        "    tags: {env: prod, 7: x}\n",
        ["p.yaml:12: spec.targets.tags.7: key '7' is not a string; quote it"],
    ),
    (
        "unsupported-tag",
        "  description: test policy\n",
        "  description: !vault secret/path\n",
        ["p.yaml:5: metadata.description: unsupported YAML tag '!vault'"],
    ),
    (
        "binary",
        "  description: test policy\n",
        "  description: !!binary aGVsbG8=\n",
        ["p.yaml:5: metadata.description: binary values are not supported"],
    ),
    (
        "syntax-error",
        "    tags: {env: prod}\n",
        "    tags: {env: prod\n",
        [
            "p.yaml:13: YAML syntax error: expected ',' or '}', but got ':' "
            "(while parsing a flow mapping started at line 12)"
        ],
    ),
    (
        "tab-indentation",
        "  mode: enforce\n",
        "\tmode: enforce\n",
        ["p.yaml:7: YAML syntax error: found character '\\t' that cannot start any token"],
    ),
    (
        "control-character",
        "  description: test policy\n",
        "  description: test\x07policy\n",
        ["p.yaml:5: unacceptable character: special characters are not allowed"],
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_rule(old: str, new: str, expected: list[str]) -> None:
    assert errors_of(edit(old, new)) == expected


def test_the_base_policy_is_valid() -> None:
    assert errors_of(VALID) == []


def test_inline_secret_value_is_never_echoed() -> None:
    text = edit("httpsKey: {fromEnv: GIT_TOKEN}", "httpsKey: hunter2-do-not-print")
    text = edit("  priority: 100\n", "  priority: [100]\n", text)
    issues = errors_of(text)
    assert len(issues) == 2
    assert not any("hunter2" in line for line in issues)


def test_values_in_syntax_errors_are_not_echoed() -> None:
    # A broken quoted scalar holding a token: the message must not quote the source line.
    text = edit("httpsKey: {fromEnv: GIT_TOKEN}", "httpsKey: 'ghp_secret_token")
    issues = errors_of(text)
    assert issues == [
        "p.yaml:44: YAML syntax error: found unexpected end of stream "
        "(while scanning a quoted scalar started at line 36)"
    ]


def test_every_error_of_a_document_is_reported() -> None:
    text = edit("  mode: enforce\n", "  mode: always\n")
    text = edit("dependsOn: [infra]", "dependsOn: [infra, 3]", text)
    text = edit("      failureBudget: 5%\n", "      failureBudget: lots\n", text)
    assert errors_of(text) == [
        "p.yaml:7: spec.mode: expected 'audit' or 'enforce'",
        "p.yaml:34: spec.fluxConfigurations[0].kustomizations.apps.dependsOn[1]: "
        "expected a string, got a number; quote it",
        "p.yaml:43: spec.remediation.rollout.failureBudget: "
        "'lots' is neither a count (3) nor a percentage ('5%')",
    ]


def test_a_failure_budget_count_is_an_int() -> None:
    from tests.policy.helpers import load_ok

    policy_set = load_ok(edit("      failureBudget: 5%\n", "      failureBudget: 3\n"))
    assert policy_set.policies[0].spec.remediation.rollout.failure_budget == 3
