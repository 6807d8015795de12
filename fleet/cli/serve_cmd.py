"""``fleet serve``: the API and web console (docs/service.md; docs/contracts.md, Service).

Prints one JSON line on stdout when it accepts requests, ``{"url": "http://HOST:PORT", ...}``;
logs go to stderr; SIGINT and SIGTERM stop it (exit 0), leaving local jobs resumable.

``--dev`` trusts only the dev issuer it starts (demo users, tokens at ``POST /dev/token``) and
is refused on any address but loopback; with ``--demo`` it also serves the demo's generated
fleet from the ARM emulator, so ``fleet serve --dev --demo`` is the whole local demo in one
command.
"""

from __future__ import annotations

import json
import signal
import sys
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from fleet.cli.app import app
from fleet.cli.common import VerboseOpt, err, fail, load_policies, load_settings, setup_logging


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.")] = 0,
    policies: Annotated[
        list[Path],
        typer.Option(
            "--policies",
            "-p",
            help="Policies that sweeps and jobs started through the API use (FLEET_POLICIES).",
            show_default=False,
        ),
    ] = [],  # noqa: B006 (typer reads the default; never mutated)
    dev: Annotated[
        bool,
        typer.Option("--dev", help="Trust only a dev issuer on loopback (demo tokens)."),
    ] = False,
    demo: Annotated[
        bool,
        typer.Option("--demo", help="With --dev: serve the demo's generated fleet too."),
    ] = False,
    directory: Annotated[
        Path, typer.Option("--dir", help="With --demo: where the demo's history goes.")
    ] = Path("fleet-demo"),
    verbose: VerboseOpt = 0,
) -> None:
    """Serve the API and the web console."""
    from fleet.demo import default_policies, demo_fleet
    from fleet.service.server import ApiServer, DevNotOnLoopback
    from fleet.service.tokens import IssuerNotConfigured

    setup_logging(verbose)
    if demo and not dev:
        fail("--demo serves a generated fleet to demo users: use it with --dev")
    settings = load_settings()
    paths = list(policies) or [Path(p) for p in settings.policies or []]
    if demo and not paths:
        paths = [default_policies()]
    if paths:
        load_policies(paths)  # bad policies are a start-up error, not a 422 on every call
    with ExitStack() as stack:
        if demo:
            err.print(f"serving the demo fleet from the ARM emulator (history in {directory})")
            settings = stack.enter_context(demo_fleet(directory))
        try:
            server = ApiServer(settings, paths, host=host, port=port, dev=dev)
            url = server.start()
        except (DevNotOnLoopback, IssuerNotConfigured) as exc:
            fail(str(exc))
        stack.callback(server.stop)

        def stop(signum: int, frame: FrameType | None) -> None:
            server.request_stop()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        assert server.service is not None
        line = {
            "url": url,
            "console": f"{url}/console/",
            "engine": server.service.engine.name,
            "dev": dev,
        }
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        if dev:
            err.print(
                f"dev issuer: curl -s -X POST {url}/dev/token -H 'content-type: "
                'application/json\' -d \'{"user": "approver"}\' (users: viewer, operator, '
                "approver, approver2, admin)",
                soft_wrap=True,
                markup=False,
            )
        server.wait()
