"""Configuration writes: PUT, PATCH and DELETE of a cluster's KubernetesConfiguration children.

Extensions and flux configurations are written with a long-running operation (lro.py); Flux v1
sourceControlConfigurations synchronously. A write checks its body against the kind's rules
(rules.py), refuses what Azure refuses before accepting anything (a stopped AKS cluster, a
change of a create-only property), stores the new properties with ``systemData`` stamped, and
starts the operation with the outcome it will end in: an injected fault, or a failure the
cluster makes certain (Flux v1 configurations in the way of microsoft.flux, a version the
catalogue lacks, an old microsoft.flux on ARM64). The first flux configuration of a cluster
without microsoft.flux installs it first, as Azure does.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fleet.core.ids import KC_PROVIDER
from fleet.emulator import errors as e
from fleet.emulator import keys, regions, shapes
from fleet.emulator.clock import iso
from fleet.emulator.errors import LroError
from fleet.emulator.lro import Lro, Operation
from fleet.emulator.rules import (
    ARM64_MIN_FLUX,
    FLUX_TYPE,
    RULES,
    aks_stopped,
    arm64,
    extension_defaults,
    merge_patch,
    properties_of,
    same_value,
    target_version,
    version_key,
)
from fleet.emulator.snapshot import redact
from fleet.emulator.store import ClusterRef, key_of


@dataclass(slots=True)
class WriteContext:
    """Who writes, and what faults the server attached to this write."""

    principal: str
    identity_type: str = "Application"
    authorize: Callable[[str, str], None] = lambda action, scope: None
    lro_error: LroError | None = None
    non_compliant: bool = False
    #: The api-version the write was sent with (which members its body may carry).
    api_version: str = ""


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a write answers: status, body (None for no body) and the operation it started."""

    status: int
    body: dict[str, Any] | None
    operation: Operation | None = None
    timeout: str = "PT48H"


class Writes(Lro):
    """The write side of the emulated Microsoft.KubernetesConfiguration resource provider."""

    def put_child(
        self, ref: ClusterRef, kind: str, name: str, body: Any, ctx: WriteContext
    ) -> WriteResult:
        cluster = self._cluster(ref, nested=True)
        rules = RULES[kind]
        rules.refuse_unknown(body, ctx.api_version)
        writable = rules.writable(properties_of(body))
        key = self._child_key(cluster, kind, name)
        existing = self._resources.get(key) if key else None
        creating = existing is None
        if kind != "sourceControlConfigurations":
            self._refuse_if_stopped(cluster)
        rules.accept(writable, name, True)
        if kind == "sourceControlConfigurations":
            return self._put_scc(cluster, name, writable, existing, ctx)
        if existing is not None:
            _refuse_change(kind, existing.get("properties") or {}, writable)
        error = ctx.lro_error
        ext_op: Operation | None = None
        if kind == "extensions":
            error = error or self._extension_precheck(cluster, writable, creating=creating)
        elif self._flux_extension(cluster) is None:
            ext_op = self._install_flux(cluster, ctx)
            if ext_op.error is not None:
                error = error or LroError(
                    e.EXTENSION_OPERATION_FAILED,
                    f"The microsoft.flux extension could not be installed: {ext_op.error.message}",
                )
        res = self._upsert_child(cluster, kind, name, existing)
        if kind == "extensions" and isinstance(body, dict):
            if isinstance(body.get("identity"), dict):
                res["identity"] = self._identity(res, body["identity"])
            if isinstance(body.get("plan"), dict):
                res["plan"] = body["plan"]
            if creating and isinstance(body.get("managedBy"), str):
                res["managedBy"] = body["managedBy"]  # read and create only (2025-03-01)
        self._write(res, kind, writable, ctx, creating=creating)
        if kind == "fluxConfigurations":
            self._deploy_key(res, properties_of(body))
        action = "create" if creating else "update"
        op = self._start(cluster, res, kind, action, error, ctx.non_compliant)
        if ext_op is not None:
            op.linked.append(ext_op)
        return WriteResult(201 if creating else 200, res, op)

    def patch_child(
        self, ref: ClusterRef, kind: str, name: str, body: Any, ctx: WriteContext
    ) -> WriteResult:
        cluster, res = self._child(ref, kind, name)
        if kind == "sourceControlConfigurations":
            raise e.MethodNotAllowed("sourceControlConfigurations do not support PATCH.")
        self._refuse_if_stopped(cluster)
        rules = RULES[kind]
        rules.refuse_unknown(body, ctx.api_version)
        patch = properties_of(body)
        props = res.get("properties") or {}
        for field_name in patch:
            if field_name in rules.create_only:
                if not same_value(field_name, patch[field_name], props.get(field_name)):
                    raise e.PropertyChangeNotAllowed(
                        f"Changing property '{field_name}' is not allowed: it can only be set "
                        "when the resource is created (delete and create it instead)."
                    )
            elif field_name not in rules.patchable and field_name not in rules.readonly:
                raise e.InvalidRequestContent(
                    f"The property 'properties.{field_name}' cannot be patched."
                )
        writable = {k: v for k, v in props.items() if k not in rules.readonly}
        merged = merge_patch(writable, {k: v for k, v in patch.items() if k in rules.patchable})
        has_secrets = "configurationProtectedSettings" in patch
        rules.accept(merged, name, False)
        redact({"type": res["type"], "properties": merged})
        if merged == writable and not has_secrets:
            return WriteResult(200, res)
        error = ctx.lro_error
        if kind == "extensions":
            error = error or self._extension_precheck(cluster, merged, creating=False)
        self._write(res, kind, merged, ctx, creating=False)
        if kind == "fluxConfigurations":
            self._deploy_key(res, patch)
        op = self._start(cluster, res, kind, "update", error, ctx.non_compliant)
        return WriteResult(202, res, op)

    def delete_child(
        self, ref: ClusterRef, kind: str, name: str, force: bool, ctx: WriteContext
    ) -> WriteResult:
        cluster = self._cluster(ref, nested=True)
        key = self._child_key(cluster, kind, name)
        if key is None:
            return WriteResult(204, None)
        if kind != "sourceControlConfigurations" and not force:
            self._refuse_if_stopped(cluster)
        res = self._resources[key]
        if force:
            # "Delete the extension resource in Azure - not the normal asynchronous delete".
            self._cancel(key)
            self._remove(key)
            return WriteResult(200, None)
        res.setdefault("properties", {})["provisioningState"] = "Deleting"
        op = self._start(cluster, res, kind, "delete", ctx.lro_error, ctx.non_compliant)
        return WriteResult(200 if kind == "sourceControlConfigurations" else 202, None, op, "PT1H")

    # ------------------------------------------------------------ PUT: the flux extension, Flux v1

    def _install_flux(self, cluster: dict[str, Any], ctx: WriteContext) -> Operation:
        """Azure installs microsoft.flux (named "flux") before a cluster's first configuration."""
        ext_id = f"{cluster['id']}/providers/{KC_PROVIDER}/extensions/flux"
        ctx.authorize(f"{KC_PROVIDER}/extensions/write", ext_id)
        ext_props: dict[str, Any] = {"extensionType": FLUX_TYPE}
        extension_defaults(ext_props)
        ext_error = self._extension_precheck(cluster, ext_props, creating=True)
        old_ext_key = self._child_key(cluster, "extensions", "flux")
        ext_existing = self._resources.get(old_ext_key) if old_ext_key else None
        ext_res = self._upsert_child(cluster, "extensions", "flux", ext_existing)
        self._write(ext_res, "extensions", ext_props, ctx, creating=ext_existing is None)
        return self._start(cluster, ext_res, "extensions", "create", ext_error, ctx.non_compliant)

    def _put_scc(
        self,
        cluster: dict[str, Any],
        name: str,
        writable: dict[str, Any],
        existing: dict[str, Any] | None,
        ctx: WriteContext,
    ) -> WriteResult:
        """Flux v1: a synchronous PUT (not an LRO), kept so that migrations can be tested."""
        res = self._upsert_child(cluster, "sourceControlConfigurations", name, existing)
        self._write(res, "sourceControlConfigurations", writable, ctx, creating=existing is None)
        shapes.scc_installed(res["properties"], iso(self.clock.now()))
        return WriteResult(201 if existing is None else 200, res)

    def _deploy_key(self, res: dict[str, Any], requested: Mapping[str, Any]) -> None:
        """``repositoryPublicKey`` after a write: of the key the request gave, else of the pair
        ARM generated for an SSH source (made once, kept), else none."""
        props = res["properties"]
        meta = self._meta_of(key_of(res["id"]))
        given = keys.given_key(requested)
        if given is not None:
            meta.ssh_private_key = None
            props["repositoryPublicKey"] = keys.public_of_given(given)
        elif not keys.is_ssh(props):
            meta.ssh_private_key = None
            props["repositoryPublicKey"] = ""
        elif not props.get("repositoryPublicKey"):
            # Once: a deploy key registered with the repository must not change under it.
            meta.ssh_private_key, props["repositoryPublicKey"] = keys.generate()

    def _identity(self, res: Mapping[str, Any], identity: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(identity)
        if str(out.get("type", "")).lower() == "systemassigned":
            out["principalId"] = str(uuid.uuid5(uuid.NAMESPACE_URL, str(res["id"])))
            out["tenantId"] = self.options.tenant_id
        return out

    # ------------------------------------------------------------------ pre-checks

    def _refuse_if_stopped(self, cluster: Mapping[str, Any]) -> None:
        if aks_stopped(cluster):
            raise e.OperationNotAllowed(
                f"Operation is not allowed because the managed cluster '{cluster['name']}' is "
                "stopped. Start the cluster and retry."
            )

    def _flux_extension(self, cluster: Mapping[str, Any]) -> dict[str, Any] | None:
        for key in self._child_keys(cluster, "extensions").values():
            res = self._resources[key]
            if str((res.get("properties") or {}).get("extensionType", "")).lower() == FLUX_TYPE:
                return res
        return None

    def _extension_precheck(
        self, cluster: Mapping[str, Any], props: Mapping[str, Any], *, creating: bool
    ) -> LroError | None:
        """Why installing or updating this extension will fail on this cluster, if it will."""
        ext_type = str(props.get("extensionType", "")).lower()
        if creating and ext_type == FLUX_TYPE:
            sccs = self._child_keys(cluster, "sourceControlConfigurations")
            if sccs:
                return LroError(
                    e.EXTENSION_OPERATION_FAILED,
                    "Flux v1 sourceControlConfigurations exist on this cluster "
                    f"({', '.join(sorted(sccs))}): the Flux v1 operator conflicts with the "
                    "microsoft.flux (Flux v2) extension. Delete the Flux v1 configurations first.",
                )
        trains = regions.trains_in(
            self._catalog, self._doc, ext_type, str(cluster.get("location") or ""), self.clock.now()
        )
        version, problem = target_version(trains, props)
        if problem:
            return LroError(e.EXTENSION_OPERATION_FAILED, problem)
        if (
            ext_type == FLUX_TYPE
            and version
            and arm64(cluster)
            and version_key(version)[0] < ARM64_MIN_FLUX
        ):
            return LroError(
                e.EXTENSION_OPERATION_FAILED,
                f"microsoft.flux version {version} does not support ARM64 clusters: "
                "use version 1.7.0 or later.",
            )
        return None

    # ------------------------------------------------------------------ storing

    def _upsert_child(
        self, cluster: Mapping[str, Any], kind: str, name: str, existing: dict[str, Any] | None
    ) -> dict[str, Any]:
        if existing is not None:
            return existing
        rid = f"{cluster['id']}/providers/{KC_PROVIDER}/{kind}/{name}"
        res: dict[str, Any] = {"id": rid, "name": name, "type": f"{KC_PROVIDER}/{kind}"}
        self._index(res)
        return res

    def _write(
        self,
        res: dict[str, Any],
        kind: str,
        writable: dict[str, Any],
        ctx: WriteContext,
        *,
        creating: bool,
    ) -> None:
        """Store the new writable properties (read-only ones kept) and stamp systemData."""
        now = iso(self.clock.now())
        old = res.get("properties") or {}
        props = dict(writable)
        for k in RULES[kind].readonly:
            if k in old:
                props[k] = old[k]
        redact({"type": res["type"], "properties": props})
        res["properties"] = props
        system = dict(res.get("systemData") or {}) if not creating else {}
        if creating or "createdAt" not in system:
            system.update(createdBy=ctx.principal, createdByType=ctx.identity_type, createdAt=now)
        system.update(
            lastModifiedBy=ctx.principal, lastModifiedByType=ctx.identity_type, lastModifiedAt=now
        )
        res["systemData"] = system
        meta = self._meta_of(key_of(res["id"]))
        meta.generation += 1
        meta.compliance = None


def _refuse_change(kind: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    """A PUT over an existing resource may not change what is fixed at creation."""
    if kind == "extensions":
        if str(old.get("extensionType", "")).lower() != str(new["extensionType"]).lower():
            raise e.PropertyChangeNotAllowed(
                "Changing property 'extensionType' is not allowed: delete and create the "
                "extension instead."
            )
        if "scope" in old and old.get("scope") != new.get("scope"):
            raise e.PropertyChangeNotAllowed(
                "Changing property 'scope' is not allowed: delete and create the extension instead."
            )
        return
    for field_name in RULES[kind].create_only:
        if field_name in old and old[field_name] != new[field_name]:
            raise e.PropertyChangeNotAllowed(
                f"Changing property '{field_name}' is not allowed: it can only be set "
                "when the flux configuration is created (delete and create it instead)."
            )
