"""Hints for Flux's failure messages: what a known message means and what to do about it.

The fluxconfig agent copies each Flux object's conditions into ``statuses[].statusConditions``
(reason and message as the Flux controllers wrote them). Some messages recur across fleets and
are cryptic on their own; ``hint(reason, message)`` returns the advice for the first entry of
``HINTS`` that matches, or None. The table is data: add a row when a message keeps coming up.
Pure.
"""

from __future__ import annotations

import re
from typing import Final

#: (pattern matched case-insensitively against "reason: message", the hint).
HINTS: Final[tuple[tuple[str, str], ...]] = (
    (
        r"cross-namespace",
        "multi-tenancy (the extension's multiTenancy.enforce, on by default) forbids references "
        "to another namespace: keep the source in the object's namespace, or set "
        'multiTenancy.enforce to "false" on the extension',
    ),
    (
        r"no matches for kind .* in version|could not find the requested resource|"
        r"resource mapping not found",
        "the manifest uses an API version that is no longer served (the Flux of the extension "
        "or the cluster removed it): move it to the current version, e.g. "
        "helm.toolkit.fluxcd.io/v2, kustomize.toolkit.fluxcd.io/v1, source.toolkit.fluxcd.io/v1",
    ),
    (
        r"artifact not found|artifactfailed|source .* not (found|ready)|"
        r"no artifact",
        "the source has produced no artifact: look at the GitRepository, Bucket or "
        "OCIRepository of this configuration (URL, reference, credentials)",
    ),
    (
        r"dependency .* (is )?not ready|dependencynotready",
        "it waits for a kustomization it depends on (dependsOn): fix that one first",
    ),
    (
        r"authentication required|authorization failed|invalid credentials|"
        r"unable to authenticate|permission denied \(publickey\)|401 unauthorized|"
        r"403 forbidden",
        "the source refused fleet's credentials: check the protected settings (sshPrivateKey, "
        "httpsKey, bucketSecretKey) or the deploy key registered with the repository "
        "(fleet deploy-keys)",
    ),
    (
        r"couldn't find remote ref|reference not found|unable to resolve.*(branch|tag)|"
        r"no tags? (match|found)",
        "the branch, tag, semver range or commit does not exist in the repository",
    ),
    (
        r"kustomization path not found|no such file or directory",
        "the kustomization's path does not exist in the source",
    ),
    (
        r"(install|upgrade) retries exhausted|installfailed|upgradefailed",
        "Helm gave up after repeated failures: fix the chart or its values, then reconcile "
        "the HelmRelease again",
    ),
    (
        r"health ?check ?failed|timeout waiting for",
        "the manifests were applied but the workloads did not become ready within the "
        "kustomization's timeout: look at the objects the message names",
    ),
)

_COMPILED: Final = tuple((re.compile(p, re.IGNORECASE), h) for p, h in HINTS)


def hint(reason: str | None, message: str | None) -> str | None:
    """The advice for a known Flux failure, or None when the message is not a known one."""
    text = f"{reason or ''}: {message or ''}"
    for pattern, advice in _COMPILED:
        if pattern.search(text):
            return advice
    return None
