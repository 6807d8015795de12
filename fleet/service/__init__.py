"""``fleet serve``: the API and web console a platform team deploys once (docs/service.md).

An ASGI app (FastAPI) over the same library the CLI calls: sweeps, reports, plans and
remediation jobs run on the configured engine exactly as from the command line, and record the
same history. Every ``/api/`` call carries an Entra ID bearer token (``tokens``), roles decide
what a caller may do (``identity``), and separation of duties (``fleet.core.duties``) holds for
approvals whichever way they arrive.
"""
