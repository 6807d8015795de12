"""``fleet validate`` and ``fleet schema``: check policy files and publish the policy schema.

``validate`` is what CI and pre-commit hooks run: problems go to stderr, one per line as
``FILE:LINE: field.path: message`` (the format editors and CI annotations understand), the
one-line summary to stdout, and the exit code is exactly 0 (valid, warnings allowed) or 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fleet.cli.app import app
from fleet.core.errors import PolicyLoadError
from fleet.policy.loading import load
from fleet.policy.schema import render

#: Exit code of ``fleet validate`` for invalid policies (also click's code for usage errors).
EXIT_INVALID = 2


def _count(count: int, singular: str, plural: str) -> str:
    return f"{count} {singular if count == 1 else plural}"


@app.command("validate")
def validate(
    paths: Annotated[
        list[str],
        typer.Argument(
            metavar="PATH...",
            help="Policy files, or directories searched recursively for *.yaml and *.yml.",
            show_default=False,
        ),
    ],
) -> None:
    """Check policy files: exit 0 when valid, 2 when not (FILE:LINE: field.path: message)."""
    label = " ".join(paths)
    try:
        policy_set = load(paths)
    except PolicyLoadError as exc:
        for issue in exc.issues:
            typer.echo(str(issue), err=True)
        errors = sum(1 for i in exc.issues if i.severity == "error")
        typer.echo(f"{label}: invalid ({_count(errors, 'error', 'errors')})", err=True)
        raise typer.Exit(exc.exit_code) from None
    for warning in policy_set.warnings:
        typer.echo(str(warning), err=True)
    typer.echo(
        f"{label}: {_count(len(policy_set), 'policy', 'policies')} valid "
        f"(revision {policy_set.revision})"
    )


@app.command("schema")
def schema(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Write the schema to this file instead of stdout.",
            dir_okay=False,
            writable=True,
        ),
    ] = None,
) -> None:
    """Print the JSON Schema of a policy document (for editors: yaml-language-server)."""
    text = render()
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {out}", err=True)
