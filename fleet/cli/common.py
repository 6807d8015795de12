"""Helpers every command shares: settings, policies, the history database, logging, output,
exit codes.

Errors the user can fix (bad settings, bad policies, unreachable endpoint) end the command with
a one-line message and a documented exit code, never a traceback:

- 0  success
- 1  the job ran but failed (e.g. the failure budget stopped a remediation, a gate was hit)
- 2  bad input: invalid policies, settings or arguments (also ``--detailed-exitcode``: changes)
- 3  Azure (or the emulator) could not be reached or refused the credentials
- 130 interrupted (Ctrl-C) — what was done is kept and reported
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console

from fleet.core.errors import (
    EXIT_INVALID,
)
from fleet.policy.loading import PolicySet, load
from fleet.settings import Settings

#: Human-facing output (tables, progress, messages) goes to stderr unless it *is* the result.
err = Console(stderr=True, highlight=False)

DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database",
        envvar="FLEET_DATABASE_URL",
        show_envvar=True,
        help="History database URL (default: SQLite in the state directory).",
    ),
]
VerboseOpt = Annotated[
    int, typer.Option("--verbose", "-v", count=True, help="More logs on stderr (-vv for debug).")
]


def fail(message: str, code: int = EXIT_INVALID) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(code)


def setup_logging(verbose: int = 0, *, json_logs: bool = False) -> None:
    """Logs go to stderr: WARNING by default, INFO with -v, DEBUG with -vv."""
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    from fleet.core.logs import configure

    configure(level=level, json_logs=json_logs)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with command-line overrides; exit 2 on invalid values."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except ValidationError as exc:
        lines = []
        for e in exc.errors():
            field = ".".join(str(p) for p in e["loc"]) or "settings"
            lines.append(f"FLEET_{field.upper()}: {e['msg']}")
        fail("invalid settings:\n  " + "\n  ".join(lines))


def load_policies(paths: Sequence[Path]) -> PolicySet:
    """Load policies or exit 2 with every ``FILE:LINE: path: message``."""
    if not paths:
        fail("no policies given: pass --policies PATH (a file or a directory)")
    policy_set = load(list(paths))  # a PolicyLoadError is shown by fleet.cli.app
    for warning in policy_set.warnings:
        err.print(f"[yellow]{warning}[/]", soft_wrap=True)
    if not policy_set.policies:
        fail("the given paths hold no policies")
    return policy_set


def write_output(text: str, out: Path | None) -> None:
    """Write the result to ``out`` (creating directories) or to stdout."""
    if out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    err.print(f"wrote {out}")


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=str)


def to_yaml(data: Any) -> str:
    from io import StringIO

    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    buf = StringIO()
    yaml.dump(json.loads(json.dumps(data, default=str)), buf)
    return buf.getvalue()
