"""``fleet rbac``: print the Azure custom role with exactly the actions fleet uses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from fleet.apply import secrets
from fleet.azure.keyvault import READER_ROLE
from fleet.cli.app import app
from fleet.cli.common import err, load_policies, load_settings
from fleet.core.permissions import role_definition
from fleet.select import selection

PLACEHOLDER = "/subscriptions/00000000-0000-0000-0000-000000000000"


@app.command()
def rbac(
    mode: Annotated[
        str,
        typer.Option("--mode", help="audit (read-only) or remediate (adds writes and deletes)."),
    ] = "audit",
    scope: Annotated[
        list[str] | None,
        typer.Option(
            "--scope",
            help="Assignable scope (repeatable): /subscriptions/ID or "
            "/subscriptions/ID/resourceGroups/RG.",
        ),
    ] = None,
    policies: Annotated[
        list[Path] | None,
        typer.Option(
            "--policies", "-p", help="Take the scopes from the subscriptions these policies name."
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Role name.")] = None,
) -> None:
    """Print the least-privilege Azure custom role for fleet (JSON for
    `az role definition create --role-definition @role.json`).

    audit covers sweeps, plans, reports and snapshots; remediate adds the writes of
    `fleet remediate`. Assign it at the subscriptions (or resource groups) fleet manages.
    With --policies, the Key Vaults their fromKeyVault references name are listed on stderr:
    fleet's principal needs the built-in data-plane role "Key Vault Secrets User" on each.
    """
    if mode not in ("audit", "remediate"):
        raise typer.BadParameter("use audit or remediate", param_hint="--mode")
    scopes = list(scope or [])
    vaults: list[str] = []
    if policies:
        policy_set = load_policies(policies)
        vaults = sorted(
            {
                ref.from_key_vault.vault
                for p in policy_set.policies
                for ref in secrets.references(p)
                if ref.from_key_vault is not None
            }
        )
        if not scopes:
            wanted = selection.subscriptions_in_scope(policy_set)
            scopes = [f"/subscriptions/{s}" for s in sorted(wanted or ())]
    if not scopes:
        settings = load_settings()
        scopes = [f"/subscriptions/{s}" for s in settings.subscriptions or ()]
    if not scopes:
        scopes = [PLACEHOLDER]
        err.print(
            "[yellow]no scope given (--scope, --policies or FLEET_SUBSCRIPTIONS): replace the "
            f"placeholder {PLACEHOLDER} before creating the role[/]"
        )
    typer.echo(json.dumps(role_definition(mode, scopes, name=name), indent=2))  # type: ignore[arg-type]
    for vault in vaults:
        # A data-plane role on the vault itself, not a subscription-wide data action: the
        # custom role above must not let fleet read every vault's secrets.
        err.print(
            f"fromKeyVault: also assign the built-in role '{READER_ROLE}' on vault {vault}: "
            f"az role assignment create --role '{READER_ROLE}' --assignee <fleet's principal> "
            f"--scope $(az keyvault show -n {vault} --query id -o tsv)",
            soft_wrap=True,
            highlight=False,
        )
