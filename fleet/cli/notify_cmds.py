"""``fleet notify``: what the notification outbox holds, and delivering it now.

    fleet notify status [-o table|json] [--limit N]   targets (by label), counts, recent events
    fleet notify send [--now] [--seconds S]           deliver what is due; exit 1 if some wait

Targets are shown by their label (``teams=env:TEAMS_HOOK``, ``cloudevents=url#1a2b3c4d5e``),
never by their URL (docs/notifications.md).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fleet.cli.app import app
from fleet.cli.common import VerboseOpt, load_settings, setup_logging
from fleet.core.errors import EXIT_FAILED
from fleet.notify.announce import deliver_pending
from fleet.notify.targets import configured
from fleet.record.history import History, open_history
from fleet.settings import Settings

notify_app = typer.Typer(
    help="Notifications: the outbox's state, and delivering what is pending now.",
    no_args_is_help=True,
)
app.add_typer(notify_app, name="notify")


def _open(verbose: int) -> tuple[Settings, History]:
    setup_logging(verbose)
    settings = load_settings()
    return settings, open_history(settings)


def _status(settings: Settings, history: History, limit: int) -> dict[str, Any]:
    counts = history.notification_counts()
    targets: list[dict[str, Any]] = [
        {"label": t.label, "format": t.format} for t in configured(settings)
    ]
    labels = {t["label"] for t in targets}
    for t in targets:
        t["counts"] = counts.get(t["label"], {})
    # Rows of targets no longer configured stay visible until they are delivered or pruned.
    gone: list[dict[str, Any]] = [
        {"label": k, "format": None, "counts": v}
        for k, v in sorted(counts.items())
        if k not in labels
    ]
    totals: dict[str, int] = {}
    for per in counts.values():
        for status, n in per.items():
            totals[status] = totals.get(status, 0) + n
    return {
        "configured": bool(targets),
        "targets": targets + gone,
        "totals": totals,
        "recent": history.notifications(limit=limit),
    }


@notify_app.command("status")
def status(
    output: Annotated[str, typer.Option("--output", "-o", help="table or json.")] = "table",
    limit: Annotated[int, typer.Option("--limit", help="Recent events to list.")] = 20,
    verbose: VerboseOpt = 0,
) -> None:
    """Show each notification target (by label), its pending, delivered and failed events,
    and the most recent events with their attempts and last error."""
    settings, history = _open(verbose)
    with history:
        data = _status(settings, history, limit)
    if output == "json":
        typer.echo(json.dumps(data, indent=2))
        return
    out = Console(highlight=False)
    if not data["configured"]:
        out.print("FLEET_NOTIFY_URLS is not set: no notifications are sent.")
    targets = Table("target", "format", "pending", "delivered", "failed", title="Targets")
    for t in data["targets"]:
        c = t["counts"]
        targets.add_row(
            t["label"],
            t["format"] or "(not configured)",
            *(str(c.get(k, 0)) for k in ("pending", "delivered", "failed")),
        )
    out.print(targets)
    recent = Table("event", "type", "subject", "target", "status", "attempts", "last error")
    for r in data["recent"]:
        recent.add_row(
            r["eventId"][:12],
            r["type"],
            r["subject"] or "",
            r["target"],
            r["status"],
            str(r["attempts"]),
            r["lastError"] or "",
        )
    out.print(recent)


@notify_app.command("send")
def send(
    now: Annotated[
        bool, typer.Option("--now", help="Also retry what waits for its backoff.")
    ] = False,
    seconds: Annotated[
        float | None,
        typer.Option("--seconds", help="Time to spend (default FLEET_NOTIFY_DELIVER_SECONDS)."),
    ] = None,
    verbose: VerboseOpt = 0,
) -> None:
    """Deliver the pending notifications that are due (with retries) for a bounded time.
    Prints one JSON line; exit 1 when some are still pending afterwards."""
    settings, history = _open(verbose)
    with history:
        done = deliver_pending(settings, history, seconds=seconds, now_too=now)
        totals = _status(settings, history, 0)["totals"]
    typer.echo(json.dumps({**done.to_json(), "pending": totals.get("pending", 0)}))
    if totals.get("pending", 0):
        raise typer.Exit(EXIT_FAILED)
