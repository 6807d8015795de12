"""``fleet emulator serve``: run the ARM emulator on loopback over HTTPS.

Prints exactly one JSON line on stdout when ready, ``{"endpoint": "https://127.0.0.1:PORT",
"caBundle": "<path to ca.pem>", "keyvaultUrl": "https://127.0.0.1:PORT/vaults/{vault}"}``, so a
script can start it with ``--port 0`` and read where it listens (``keyvaultUrl`` is the
``FLEET_KEYVAULT_URL`` of its Key Vaults); logs go to stderr. SIGINT and SIGTERM stop it
cleanly (exit 0). An invalid snapshot exits 2 with one ``FILE: where: what`` line per problem.
"""

from __future__ import annotations

import gc
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from fleet.cli.emulator_cmds import emulator_app
from fleet.emulator.options import EmulatorOptions
from fleet.emulator.server import EmulatorServer
from fleet.emulator.snapshot import SnapshotError


@emulator_app.command("serve")
def serve(
    snapshot: Annotated[Path, typer.Option("--snapshot", help="Fleet snapshot (JSON) to serve.")],
    host: Annotated[
        str, typer.Option(help="Address to bind (loopback unless --allow-remote).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind; 0 picks a free one.")] = 0,
    latency_ms: Annotated[
        float, typer.Option(help="Median injected latency (log-normal), ms.")
    ] = 0.0,
    latency_p99_ms: Annotated[
        float | None,
        typer.Option(help="99th percentile of the injected latency, ms (default 4x the median)."),
    ] = None,
    throttle: Annotated[str, typer.Option(help="'arm' (ARM token buckets) or 'off'.")] = "arm",
    throttle_scale: Annotated[
        float, typer.Option(help="Multiply throttling burst and refill rate.")
    ] = 1.0,
    page_size: Annotated[
        int | None,
        typer.Option(
            help="Items per page of every ARM list (nextLink paging); default: each list's "
            "page size as Azure returns it (docs/emulator.md, Paging)."
        ),
    ] = None,
    lro_polls: Annotated[
        int, typer.Option(help="Status polls answered 'in progress' before an operation ends.")
    ] = 1,
    lro_seconds: Annotated[
        float,
        typer.Option(help="Emulated seconds after which an operation ends even if nobody polls."),
    ] = 10.0,
    retry_after: Annotated[
        int,
        typer.Option(
            help="Retry-After (seconds) of LRO responses; 0 sends none (clients then wait "
            "their own polling interval)."
        ),
    ] = 1,
    reconcile_seconds: Annotated[
        float,
        typer.Option(help="Emulated seconds a new flux configuration stays Pending after its LRO."),
    ] = 2.0,
    error_rate: Annotated[float, typer.Option(help="Share of requests answered 500/503.")] = 0.0,
    reset_rate: Annotated[
        float, typer.Option(help="Share of connections reset without a response.")
    ] = 0.0,
    slow_rate: Annotated[
        float, typer.Option(help="Share of requests stalled --slow-seconds.")
    ] = 0.0,
    slow_seconds: Annotated[float, typer.Option(help="Stall of a slow response, seconds.")] = 5.0,
    lro_fail_rate: Annotated[
        float, typer.Option(help="Share of long-running operations that fail.")
    ] = 0.0,
    graph_quota: Annotated[
        int, typer.Option(help="Resource Graph queries per window per principal.")
    ] = 15,
    seed: Annotated[int | None, typer.Option(help="Seed of random faults and latency.")] = None,
    ca_dir: Annotated[
        Path | None, typer.Option(help="Directory for ca.pem (default: a new temporary directory).")
    ] = None,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow binding a non-loopback address.")
    ] = False,
    tls_name: Annotated[
        list[str] | None,
        typer.Option("--tls-name", help="Extra host name in the TLS certificate (repeatable)."),
    ] = None,
) -> None:
    """Serve a fleet snapshot as an offline Azure Resource Manager over HTTPS."""
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        options = EmulatorOptions(
            host=host,
            port=port,
            allow_remote=allow_remote,
            page_size=page_size,
            lro_polls=lro_polls,
            lro_seconds=lro_seconds,
            retry_after=retry_after,
            reconcile_seconds=reconcile_seconds,
            throttle=throttle,
            throttle_scale=throttle_scale,
            graph_quota=graph_quota,
            latency_ms=latency_ms,
            latency_p99_ms=latency_p99_ms,
            error_rate=error_rate,
            reset_rate=reset_rate,
            slow_rate=slow_rate,
            slow_seconds=slow_seconds,
            lro_fail_rate=lro_fail_rate,
            seed=seed,
            ca_dir=str(ca_dir) if ca_dir else None,
            tls_names=tuple(tls_name or ()),
        )
        server = EmulatorServer(snapshot, options)
    except SnapshotError as exc:
        for issue in exc.issues:
            typer.echo(issue, err=True)
        raise typer.Exit(2) from None
    except ValueError as exc:
        typer.echo(f"fleet emulator serve: {exc}", err=True)
        raise typer.Exit(2) from None

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    # The snapshot is long-lived state (millions of objects at 100,000 clusters): freezing it
    # keeps the cyclic GC from re-walking it at every full collection, which otherwise stalls
    # the event loop for seconds under load.
    gc.collect()
    gc.freeze()
    try:
        endpoint, ca_path = server.start()
    except OSError as exc:  # the port is taken, the address is not ours, ...
        typer.echo(
            f"fleet emulator serve: cannot bind {host}:{port}: {exc.strerror or exc}", err=True
        )
        raise typer.Exit(2) from None
    ready = {
        "endpoint": endpoint,
        "caBundle": str(ca_path),
        "keyvaultUrl": endpoint + "/vaults/{vault}",
    }
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        logging.getLogger("fleet.emulator").info("stopping")
        server.stop()
