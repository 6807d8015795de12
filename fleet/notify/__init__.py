"""Notifications: CloudEvents webhooks (and Teams and Slack renderings) for what sweeps and jobs
find, from both engines (docs/notifications.md; docs/contracts.md, Notifications).

- ``events``: the events as pure functions over what a sweep or a job produced, and over the
  schedules of sweeps that did not run;
- ``render``: an event as a CloudEvent, a Teams card or a Slack message (pure);
- ``targets``: ``FLEET_NOTIFY_URLS`` parsed and its secret references resolved;
- ``delivery``: the outbox drained with retries, backoff and a bounded time;
- ``announce``: the one function per occurrence both engines call at their end.
"""
