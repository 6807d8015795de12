"""An event as what a webhook takes (pure): a CloudEvent in structured mode, a Microsoft Teams
card or a Slack message.

``cloudevents`` (the default) is CloudEvents 1.0 JSON, ``Content-Type:
application/cloudevents+json``, built with the ``cloudevents`` package: the event's data as is,
for programs. ``teams`` and ``slack`` are for people: a title and a few lines (``headline``),
as an Adaptive Card (Teams Workflows and incoming webhooks both take it) or Slack blocks, with
the event's type and id at the bottom so a message can be traced back to its CloudEvent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from cloudevents.core.bindings.http import to_structured_event
from cloudevents.core.v1.event import CloudEvent

from fleet.notify import events as ev
from fleet.notify.events import Event

#: The CloudEvents ``source`` of every event fleet sends.
SOURCE = "/fleet"
#: Lines a chat message lists before it says how many more there are.
CHAT_LINES = 15

Rendered = tuple[dict[str, str], bytes]


def cloudevent(event: Event) -> CloudEvent:
    attributes: dict[str, Any] = {
        "specversion": "1.0",
        "id": event.id,
        "source": SOURCE,
        "type": event.type,
        "subject": event.subject,
        "time": datetime.fromisoformat(event.time),
        "datacontenttype": "application/json",
    }
    return CloudEvent(attributes, event.data)


def as_cloudevent(event: Event) -> Rendered:
    message = to_structured_event(cloudevent(event))
    return dict(message.headers), message.body


def _finding_lines(data: Mapping[str, Any]) -> list[str]:
    if data.get("digest"):
        lines = [
            f"{c['name']}: {c['findings']} finding(s) ({', '.join(map(str, c['codes']))})"
            for c in data.get("clusters") or ()
        ]
        shown = len(lines)
        more = data["counts"]["clusters"] - shown
        if more > 0:
            lines.append(f"... and {more} more cluster(s)")
        lines.append(f"All of them: {data['more']}")
        return lines
    lines = [f"{f['name']}: {f['code']} {f.get('path') or ''}".rstrip() for f in data["findings"]]
    if len(lines) > CHAT_LINES:
        rest = len(lines) - CHAT_LINES
        lines = [*lines[:CHAT_LINES], f"... and {rest} more"]
    return lines


def headline(event: Event) -> tuple[str, list[str]]:
    """A title and a few lines that say what happened, for people."""
    d = event.data
    if event.type in (ev.SWEEP_DRIFT, ev.SWEEP_FIXED):
        what = "new finding(s)" if event.type == ev.SWEEP_DRIFT else "finding(s) fixed"
        counts = d["counts"]
        title = f"fleet: {counts['findings']} {what} on {counts['clusters']} cluster(s)"
        return title, [f"Sweep {d['sweepId']} (since {d['previousSweepId']})", *_finding_lines(d)]
    if event.type == ev.SWEEP_COMPLIANCE_DROPPED:
        c = d["compliancePercent"]
        title = f"fleet: compliance fell from {c['from']:.1f}% to {c['to']:.1f}%"
        states = ", ".join(f"{k} {v}" for k, v in sorted(d["byState"].items()))
        return title, [f"Sweep {d['sweepId']} (since {d['previousSweepId']})", states]
    if event.type == ev.SWEEP_MISSED:
        title = f"fleet: the scheduled sweep of {d['policy']} did not run"
        return title, [
            f"Due at {d['dueAt']} ({d['schedule']}); last sweep {d['lastSweepAt']}",
            "Check the Celery beat and workers: celery -A workers inspect active",
        ]
    if event.type == ev.JOB_AWAITING_APPROVAL:
        title = f"fleet: job {d['jobId']} waits for approval of wave {d['wave']}"
        return title, [f"Policy: {d.get('policy') or '(several)'}", f"Approve: {d['approve']}"]
    if event.type == ev.JOB_BUDGET_EXCEEDED:
        title = f"fleet: job {d['jobId']} stopped by its failure budget"
        return title, [str(d.get("stopReason") or ""), _counts(d["counts"])]
    if event.type == ev.JOB_FINISHED:
        title = f"fleet: job {d['jobId']} {d['status']}"
        lines = [_counts(d["counts"])]
        if d.get("stopReason"):
            lines.append(f"Stopped: {d['stopReason']}")
        return title, lines
    return f"fleet: {event.type}", [json.dumps(d, sort_keys=True)[:500]]


def _counts(counts: Mapping[str, Any]) -> str:
    keys = ("fixed", "failed", "skipped", "retry", "notStarted")
    return ", ".join(f"{k} {counts.get(k, 0)}" for k in keys)


def as_teams(event: Event) -> Rendered:
    title, lines = headline(event)
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": True}
    ]
    body += [{"type": "TextBlock", "text": line, "wrap": True, "spacing": "None"} for line in lines]
    body.append(
        {
            "type": "TextBlock",
            "text": f"{event.type} · {event.id}",
            "isSubtle": True,
            "size": "Small",
            "wrap": True,
        }
    )
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    message = {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }
    return {"content-type": "application/json"}, json.dumps(message).encode()


def as_slack(event: Event) -> Rendered:
    title, lines = headline(event)
    message = {
        "text": title,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:3000]}},
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"{event.type} · {event.id}"}],
            },
        ],
    }
    return {"content-type": "application/json"}, json.dumps(message).encode()


#: The renderings an entry of ``FLEET_NOTIFY_URLS`` may ask for.
FORMATS: Mapping[str, Callable[[Event], Rendered]] = {
    "cloudevents": as_cloudevent,
    "teams": as_teams,
    "slack": as_slack,
}
