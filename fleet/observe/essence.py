"""The "essence" of an extension or flux configuration: what fleet governs, nothing else.

ARM answers a GET with the writable properties, the defaults it filled in, read-only status
(``provisioningState``, ``statuses``, ``currentVersion``...) and blanked secrets. A desired body
rendered from a policy carries only what the policy says. Both go through the same function
here, which

* keeps only the writable, governed fields (a whitelist, so a new read-only field in a later
  API version never shows up as drift),
* fills ARM's defaults where a field is absent or ``null`` (docs/contracts.md, Policy file: a field
  the policy leaves out is not drift when Azure fills its default), with the values of the
  OpenAPI (``arm-spec/.../fluxconfiguration.json``, ``extensions.json``), except where fleet is
  secure by default: a source's ``insecure`` is judged ``false`` when absent, because fleet
  always sends ``false`` unless a policy says ``true`` (docs/security.md),
* canonicalises what ARM treats case-insensitively (``extensionType``, ``releaseTrain``,
  enum values), and treats ``null``, absent and empty objects alike,
* drops secrets (they are never returned; ``fleet.desired.fingerprints`` compares them).

so that ``diff(essence(desired), essence(observed))`` is empty exactly when nothing governed
differs. Observed JSON is untrusted: a value of an unexpected type is kept as it is (the diff
then reports it) and never raises.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from fleet.core.diffing import MAPPING as _MAP

FLUX_EXTENSION_TYPE = "microsoft.flux"
FLUX_NAMESPACE = "flux-system"
DEFAULT_EXTENSION_NAME = "flux"
DEFAULT_RELEASE_TRAIN = "Stable"
DEFAULT_INTERVAL = 600
#: What fleet sends, and judges an absent value as, for a source's ``insecure``: never plain
#: HTTP unless a policy says so in so many words.
SECURE_INSECURE = False

Json = Mapping[str, Any]

#: Child type segments for ``fleet.core.ids.child_id`` (it takes the segment, not the full type).
EXTENSIONS = "extensions"
FLUX_CONFIGURATIONS = "fluxConfigurations"
SOURCE_CONTROL_CONFIGURATIONS = "sourceControlConfigurations"

# --- helpers ------------------------------------------------------------------------------


def _props(resource: Any) -> Any:
    """``properties`` of an ARM resource or desired body ({} when absent or null)."""
    if not isinstance(resource, _MAP):
        return resource
    props = resource.get("properties")
    return {} if props is None else props


def _pick(source: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """The whitelisted fields of ``source`` that are not null."""
    out: dict[str, Any] = {}
    for name in fields:
        value = source.get(name)
        if value is not None:
            out[name] = value
    return out


def _defaults(target: dict[str, Any], defaults: Mapping[str, Any]) -> None:
    for name, value in defaults.items():
        if target.get(name) is None:
            target[name] = value


def _canon_word(value: Any, known: Mapping[str, str]) -> Any:
    """Canonical spelling of an enum value ARM compares case-insensitively; others unchanged."""
    if isinstance(value, str):
        return known.get(value.lower(), value)
    return value


def canonical_train(value: Any) -> Any:
    """``stable``/``STABLE`` -> ``Stable``: release trains compare case-insensitively."""
    if isinstance(value, str) and value:
        return value[:1].upper() + value[1:].lower()
    return value


# --- the extension ------------------------------------------------------------------------

_EXTENSION_FIELDS = (
    "extensionType",
    "autoUpgradeMinorVersion",
    "releaseTrain",
    "version",
    "scope",
    "configurationSettings",
)


def extension(
    resource: Json, *, governed_settings: Collection[str] | None = None
) -> dict[str, Any]:
    """Essence of a ``microsoft.flux`` extension: ``{"name"?, "properties": {...}}``.

    ``governed_settings`` restricts ``configurationSettings`` to the keys a policy names (None
    keeps every key, as the plan needs when it rewrites the whole resource). ``version`` is
    kept only when ``autoUpgradeMinorVersion`` is false: with auto-upgrade on, ARM reports the
    last requested version, which says nothing about what should be installed.
    ``configurationProtectedSettings`` never appears (secrets; compared by fingerprint).
    """
    out: dict[str, Any] = {}
    if isinstance(resource, _MAP) and resource.get("name") is not None:
        out["name"] = resource["name"]
    props = _props(resource)
    if not isinstance(props, _MAP):
        out["properties"] = props
        return out
    ess = _pick(props, _EXTENSION_FIELDS)
    kind = ess.get("extensionType")
    if isinstance(kind, str):
        ess["extensionType"] = kind.lower()
    _defaults(ess, {"autoUpgradeMinorVersion": True, "releaseTrain": DEFAULT_RELEASE_TRAIN})
    ess["releaseTrain"] = canonical_train(ess["releaseTrain"])
    if ess["autoUpgradeMinorVersion"] is not False:
        ess.pop("version", None)
    ess["scope"] = _extension_scope(ess.get("scope"))
    settings = ess.get("configurationSettings")
    if isinstance(settings, _MAP):
        if governed_settings is None:
            kept = {k: v for k, v in settings.items() if v is not None}
        else:
            kept = {k: settings[k] for k in governed_settings if settings.get(k) is not None}
        if kept:
            ess["configurationSettings"] = kept
        else:
            ess.pop("configurationSettings")
    out["properties"] = ess
    return out


#: Extension properties that are always governed: what makes it *the* Flux extension.
IMPLICIT_EXTENSION_FIELDS = frozenset({"extensionType", "scope"})


def restrict_extension(
    ess: Mapping[str, Any],
    fields: Collection[str],
    *,
    name: bool,
    settings: Collection[str] | None = None,
) -> dict[str, Any]:
    """Keep only the governed parts of an extension essence (a new dict; ``ess`` is kept).

    ``fields`` are the property names some policy declares; ``extensionType`` and ``scope``
    are always kept; ``name`` only when a policy names the extension; ``configurationSettings``
    narrowed to ``settings`` when given (None keeps the keys as they are).
    """
    out: dict[str, Any] = {}
    if name and "name" in ess:
        out["name"] = ess["name"]
    props = ess.get("properties")
    if not isinstance(props, _MAP):
        out["properties"] = props
        return out
    kept = {k: v for k, v in props.items() if k in fields or k in IMPLICIT_EXTENSION_FIELDS}
    current = props.get("configurationSettings")
    if settings is None:
        if current is not None:
            kept["configurationSettings"] = current
    elif isinstance(current, _MAP):
        narrowed = {k: current[k] for k in settings if current.get(k) is not None}
        if narrowed:
            kept["configurationSettings"] = narrowed
    elif current is not None and settings:
        # Not an object at all: governed keys cannot be read from it, which the diff reports.
        kept["configurationSettings"] = current
    out["properties"] = kept
    return out


def _extension_scope(scope: Any) -> Any:
    if scope is None:
        return {"cluster": {"releaseNamespace": FLUX_NAMESPACE}}
    if not isinstance(scope, _MAP):
        return scope
    out: dict[str, Any] = {}
    for kind, field in (("cluster", "releaseNamespace"), ("namespace", "targetNamespace")):
        part = scope.get(kind)
        if part is None:
            continue
        if isinstance(part, _MAP):
            # Whitelisted like every other object: a property a later API adds is not drift.
            part = {field: part[field]} if part.get(field) is not None else {}
        out[kind] = part
    cluster = out.get("cluster")
    if isinstance(cluster, dict) and cluster.get("releaseNamespace") is None:
        cluster["releaseNamespace"] = FLUX_NAMESPACE
    if not out:
        # ``{}`` or ``{"cluster": null}``: ARM installs cluster-scoped extensions in the
        # namespace the type declares, flux-system for Flux.
        return {"cluster": {"releaseNamespace": FLUX_NAMESPACE}}
    return out


def is_flux_extension(resource: Any) -> bool:
    """True for an extension of type ``microsoft.flux`` (any case)."""
    props = _props(resource)
    if not isinstance(props, _MAP):
        return False
    kind = props.get("extensionType")
    return isinstance(kind, str) and kind.lower() == FLUX_EXTENSION_TYPE


# --- flux configurations ------------------------------------------------------------------

_SCOPES = {"cluster": "cluster", "namespace": "namespace"}
_SOURCE_KINDS = {
    "gitrepository": "GitRepository",
    "bucket": "Bucket",
    "azureblob": "AzureBlob",
    "ocirepository": "OCIRepository",
}
_GIT_PROVIDERS = {"generic": "Generic", "azure": "Azure", "github": "GitHub"}
_LAYER_OPERATIONS = {"extract": "extract", "copy": "copy"}

#: Writable properties of a flux configuration that fleet governs. ``waitForReconciliation``
#: and ``reconciliationWaitDuration`` are left out: they say how a PUT waits, not what the
#: configuration is, and ARM does not promise to echo them.
_FLUX_FIELDS = (
    "scope",
    "namespace",
    "sourceKind",
    "suspend",
    "gitRepository",
    "bucket",
    "azureBlob",
    "ociRepository",
    "kustomizations",
)
_GIT_FIELDS = (
    "url",
    "timeoutInSeconds",
    "syncIntervalInSeconds",
    "repositoryRef",
    "sshKnownHosts",
    "httpsUser",
    "httpsCACert",
    "localAuthRef",
    "provider",
)
_REF_FIELDS = ("branch", "tag", "semver", "commit")
_BUCKET_FIELDS = (
    "url",
    "bucketName",
    "insecure",
    "timeoutInSeconds",
    "syncIntervalInSeconds",
    "accessKey",
    "localAuthRef",
)
# accountKey and sasToken are secrets: never returned, compared by fingerprint.
_BLOB_FIELDS = (
    "url",
    "containerName",
    "timeoutInSeconds",
    "syncIntervalInSeconds",
    "servicePrincipal",
    "managedIdentity",
    "localAuthRef",
)
# tlsConfig holds nothing but secrets (clientCertificate, privateKey, caCertificate): never
# returned, compared by fingerprint, so it is not a governed field at all.
_OCI_FIELDS = (
    "url",
    "timeoutInSeconds",
    "syncIntervalInSeconds",
    "repositoryRef",
    "layerSelector",
    "verify",
    "insecure",
    "useWorkloadIdentity",
    "serviceAccountName",
    "localAuthRef",
)
_OCI_REF_FIELDS = ("tag", "semver", "digest")
# clientSecret, clientCertificate and clientCertificatePassword are secrets.
_SP_FIELDS = ("clientId", "tenantId", "clientCertificateSendChain")
_KUSTOMIZATION_FIELDS = (
    "path",
    "dependsOn",
    "timeoutInSeconds",
    "syncIntervalInSeconds",
    "retryIntervalInSeconds",
    "prune",
    "force",
    "wait",
    "postBuild",
)
_INTERVALS = {"timeoutInSeconds": DEFAULT_INTERVAL, "syncIntervalInSeconds": DEFAULT_INTERVAL}
_KUSTOMIZATION_DEFAULTS = {"path": "", **_INTERVALS, "prune": False, "force": False, "wait": True}


def flux_configuration(resource: Json) -> dict[str, Any]:
    """Essence of a flux configuration: ``{"properties": {...}}`` (the name is its identity).

    Every governed field is present with its ARM default filled in, so two essences differ
    exactly where a PUT of one would change the other.
    """
    props = _props(resource)
    if not isinstance(props, _MAP):
        return {"properties": props}
    ess = _pick(props, _FLUX_FIELDS)
    _defaults(
        ess,
        {
            "scope": "cluster",
            "namespace": "default",
            "sourceKind": "GitRepository",
            "suspend": False,
        },
    )
    ess["scope"] = _canon_word(ess["scope"], _SCOPES)
    ess["sourceKind"] = _canon_word(ess["sourceKind"], _SOURCE_KINDS)
    for name, normalise in (
        ("gitRepository", _git),
        ("bucket", _bucket),
        ("azureBlob", _blob),
        ("ociRepository", _oci),
        ("kustomizations", _kustomizations),
    ):
        if name in ess:
            value = normalise(ess[name])
            if value == {}:
                del ess[name]
            else:
                ess[name] = value
    return {"properties": ess}


def _git(value: Any) -> Any:
    if not isinstance(value, _MAP):
        return value
    out = _pick(value, _GIT_FIELDS)
    # provider (2025-04-01) has no swagger default; the resource provider treats an absent one
    # as Generic (secret-based), so the two are one thing.
    _defaults(out, {"provider": "Generic", **_INTERVALS})
    out["provider"] = _canon_word(out["provider"], _GIT_PROVIDERS)
    ref = out.get("repositoryRef")
    if isinstance(ref, _MAP):
        ref = _pick(ref, _REF_FIELDS)
        if ref:
            out["repositoryRef"] = ref
        else:
            del out["repositoryRef"]
    return out


def _bucket(value: Any) -> Any:
    if not isinstance(value, _MAP):
        return value
    out = _pick(value, _BUCKET_FIELDS)
    # Secure by default (docs/security.md, Security-relevant defaults): ARM's swagger default
    # for bucket.insecure is true, but fleet always sends false unless a policy says true
    # (fleet.desired.flux), so an absent value is judged as false. Filling ARM's true here
    # would report a TLS bucket made by the Azure CLI (which sends false) as drift and
    # "fix" it to plain HTTP.
    _defaults(out, {"insecure": SECURE_INSECURE, **_INTERVALS})
    return out


def _oci(value: Any) -> Any:
    if not isinstance(value, _MAP):
        return value
    out = _pick(value, _OCI_FIELDS)
    # insecure: ARM's default is false too; fleet sends false unless a policy says true.
    _defaults(out, {"insecure": SECURE_INSECURE, "useWorkloadIdentity": False, **_INTERVALS})
    for name, fields in (
        ("repositoryRef", _OCI_REF_FIELDS),
        ("layerSelector", ("mediaType", "operation")),
    ):
        part = out.get(name)
        if isinstance(part, _MAP):
            part = _pick(part, fields)
            if part:
                out[name] = part
            else:
                del out[name]
    selector = out.get("layerSelector")
    if isinstance(selector, dict) and "operation" in selector:
        selector["operation"] = _canon_word(selector["operation"], _LAYER_OPERATIONS)
    verify = out.get("verify")
    if isinstance(verify, _MAP):
        verify = _pick(verify, ("provider", "verificationConfig", "matchOidcIdentity"))
        identities = verify.get("matchOidcIdentity")
        if isinstance(identities, list | tuple):
            # Any one identity matches: compare them as a set, and [] as absent.
            picked = [
                _pick(i, ("issuer", "subject")) if isinstance(i, _MAP) else i for i in identities
            ]
            if picked:
                verify["matchOidcIdentity"] = sorted(picked, key=repr)
            else:
                del verify["matchOidcIdentity"]
        if not verify.get("verificationConfig"):
            verify.pop("verificationConfig", None)
        if verify:
            out["verify"] = verify
        else:
            del out["verify"]
    return out


def _blob(value: Any) -> Any:
    if not isinstance(value, _MAP):
        return value
    out = _pick(value, _BLOB_FIELDS)
    _defaults(out, _INTERVALS)
    sp = out.get("servicePrincipal")
    if isinstance(sp, _MAP):
        sp = _pick(sp, _SP_FIELDS)
        _defaults(sp, {"clientCertificateSendChain": False})
        out["servicePrincipal"] = sp
    mi = out.get("managedIdentity")
    if isinstance(mi, _MAP):
        mi = _pick(mi, ("clientId",))
        if mi:
            out["managedIdentity"] = mi
        else:
            del out["managedIdentity"]
    return out


def _kustomizations(value: Any) -> Any:
    if not isinstance(value, _MAP):
        return value
    out: dict[str, Any] = {}
    for name, body in value.items():
        if body is None:
            # A merge-patch style null means "no such kustomization".
            continue
        out[name] = _kustomization(body)
    return out


def _kustomization(value: Any) -> Any:
    if not isinstance(value, _MAP):
        return value
    out = _pick(value, _KUSTOMIZATION_FIELDS)
    _defaults(out, _KUSTOMIZATION_DEFAULTS)
    out["dependsOn"] = _depends_on(out.get("dependsOn"))
    if "postBuild" in out:
        post = _post_build(out["postBuild"])
        if post == {}:
            del out["postBuild"]
        else:
            out["postBuild"] = post
    return out


def _depends_on(value: Any) -> Any:
    # Flux waits for every dependency whatever the order: compare dependsOn as a set, and
    # treat null, absent and [] alike.
    if value is None:
        return []
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return sorted(set(value))
    return value


def _post_build(value: Any) -> Any:
    if not isinstance(value, _MAP):
        return value
    out: dict[str, Any] = {}
    substitute = value.get("substitute")
    if substitute:
        out["substitute"] = substitute
    sources = value.get("substituteFrom")
    if isinstance(sources, list | tuple):
        # Order is kept: later sources override earlier ones in Flux.
        items = [_substitute_from(s) for s in sources]
        if items:
            out["substituteFrom"] = items
    elif sources is not None:
        out["substituteFrom"] = sources
    return out


def _substitute_from(value: Any) -> Any:
    if not isinstance(value, _MAP):
        return value
    out = _pick(value, ("kind", "name", "optional"))
    _defaults(out, {"optional": False})
    return out
