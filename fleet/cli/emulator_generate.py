"""``fleet emulator generate``: write a generated fleet snapshot (docs/scenario.md).

The snapshot goes to ``--out``; a short summary (clusters by type and by defect kind, the
file size) goes to stderr so that scripts can keep stdout clean. Generation is deterministic:
the same ``--clusters``, ``--subscriptions``, ``--seed`` and ``--now`` give the same bytes.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from fleet.cli.emulator_cmds import emulator_app
from fleet.emulator import generate as gen


def _parse_now(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO 8601 date-time (e.g. 2026-11-25T12:00:00Z)",
            param_hint="'--now'",
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _size(n: int) -> str:
    """Human-readable byte count (decimal units, like ``ls --si``)."""
    if n < 1000:
        return f"{n} B"
    value, unit = n / 1000, 0
    while value >= 1000 and unit < 2:
        value, unit = value / 1000, unit + 1
    return f"{value:.1f} {('KB', 'MB', 'GB')[unit]}"


@emulator_app.command("generate")
def generate_command(
    clusters: Annotated[
        int, typer.Option("--clusters", "-n", min=1, help="Number of clusters (AKS and Arc).")
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            dir_okay=False,
            help="Snapshot file to write. Parent directories are created; an existing file is "
            "replaced.",
        ),
    ],
    subscriptions: Annotated[
        int, typer.Option("--subscriptions", "-s", min=1, help="Number of subscriptions.")
    ] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: same seed, same fleet.")] = 1,
    now: Annotated[
        str | None,
        typer.Option(
            "--now",
            help="ISO 8601 instant all timestamps are relative to (default: the current UTC "
            "minute). Pass it for byte-identical output across runs.",
        ),
    ] = None,
    pretty: Annotated[
        bool | None,
        typer.Option(
            "--pretty/--compact",
            help=f"Indent the JSON (default: indented up to {gen.PRETTY_LIMIT} clusters).",
        ),
    ] = None,
) -> None:
    """Generate a realistic fleet of AKS and Arc clusters with a known mix of defects."""
    when = _parse_now(now)
    started = time.perf_counter()
    snapshot = gen.generate(clusters=clusters, subscriptions=subscriptions, seed=seed, now=when)
    data = gen.dumps(snapshot, pretty=pretty)
    out.parent.mkdir(parents=True, exist_ok=True)
    replaced = out.exists()
    # Write beside the target and rename: a reader (a running emulator, a test) never sees a
    # half-written snapshot, and a failed write leaves the old file in place.
    partial = out.with_name(f".{out.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, out)
    elapsed = time.perf_counter() - started

    summary = gen.summary(snapshot)
    by_type = ", ".join(f"{n} {t}" for t, n in summary["clusterTypes"].items())
    children = ", ".join(f"{n} {t}" for t, n in summary["resources"].items())
    defects = ", ".join(f"{k} {n}" for k, n in summary["defects"].items())
    typer.echo(
        f"generated {clusters} clusters ({by_type}) in {subscriptions} subscriptions, "
        f"seed {seed}, now {snapshot['generator']['generatedAt']}\n"
        f"  resources: {children}\n"
        f"  defects: {defects}\n"
        f"  faults: {len(snapshot['emulator']['faults'])} (read_error clusters)\n"
        f"wrote {out} ({_size(len(data))}{', replaced the existing file' if replaced else ''}) "
        f"in {elapsed:.2f} s",
        err=True,
    )
