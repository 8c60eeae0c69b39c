"""Slack incoming webhook: one Block Kit message for the alerts due together.

::

    {"text": "[FIRING:2, RESOLVED:1] PgDown, ProbeFailed",
     "blocks": [{"type": "header",
                 "text": {"type": "plain_text", "text": "🔥 2 firing · ✅ 1 resolved"}}],
     "attachments": [
       {"color": "#D63232", "blocks": [{"type": "section", "text": {"type": "mrkdwn",
          "text": "*🔥 PgDown* · critical · primary\nPostgreSQL primary is not answering\n..."}}]},
       {"color": "#36a64f", "blocks": [...resolved alerts...]}]}

Everything taken from labels and templates is escaped (``& < >``), so ``<!channel>``
in a label value arrives as text. A section stays under 3,000 characters, a message
under 50 blocks: at most ``max_alerts`` alerts are listed, then "...and N more".
Firing alerts are listed by severity (critical, error, warning, info, then any other),
so the most severe are never the ones hidden; the header counts them per severity:
``🔥 125 firing (2 critical, 123 warning)``.
Errors are classified by body first (Slack's documented strings), then by status;
400/403/404/410 are permanent, 429 waits for ``Retry-After``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx

from alerts.notify.events import Event, iso
from alerts.receivers.base import (
    HttpReceiver,
    Outcome,
    Result,
    body_reason,
    classify_status,
    fingerprint_of,
    post,
    probe_http,
)
from alerts.receivers.config import SlackConfig as Config
from alerts.text import escape, truncate
from monitor.kernel.source import CheckResult

FIRING_COLOR = "#D63232"
RESOLVED_COLOR = "#36a64f"
SECTION_MAX = 3000
HEADER_MAX = 150
TEXT_MAX = 3000
BLOCKS_MAX = 50
LABEL_VALUE_MAX = 300
SUMMARY_MAX = 1000
DESCRIPTION_MAX = 1200

PERMANENT_BODIES = frozenset(
    {
        "invalid_payload",
        "user_not_found",
        "no_text",
        "too_many_attachments",
        "channel_not_found",
        "channel_is_archived",
        "action_prohibited",
        "invalid_token",
        "no_service",
        "no_service_id",
        "no_team",
        "team_disabled",
        "posting_to_general_channel_denied",
    }
)
RETRY_BODIES = frozenset({"rollup_error"})
HIDDEN_LABELS = frozenset({"alertname", "severity"})
SEVERITY_ORDER = ("critical", "error", "warning", "info")


def severity_rank(severity: str) -> int:
    """Sort key: the documented severities first, most severe first, then any other."""
    try:
        return SEVERITY_ORDER.index(severity)
    except ValueError:
        return len(SEVERITY_ORDER)


def by_severity(events: Sequence[Event]) -> list[Event]:
    """Most severe first; evaluation order kept within a severity."""
    return sorted(events, key=lambda e: severity_rank(e.severity))


def severity_counts(events: Sequence[Event]) -> str:
    """``2 critical, 123 warning`` for events sorted :func:`by_severity`."""
    counts: dict[str, int] = {}
    for event in events:
        counts[event.severity] = counts.get(event.severity, 0) + 1
    return ", ".join(f"{n} {severity or 'unknown'}" for severity, n in counts.items())


def _link(url: str, text: str) -> str:
    return f"<{escape(url).replace('|', '%7C')}|{text}>"


def alert_section(event: Event) -> dict[str, Any]:
    icon = "🔥" if event.firing else "✅"
    target = event.labels.get("target", "")
    head = f"*{icon} {escape(event.rule)}* · {escape(event.severity)}"
    if target:
        head += f" · {escape(truncate(target, LABEL_VALUE_MAX))}"
    if event.test:
        head += " · *TEST*"
    lines = [head]
    if event.summary:
        lines.append(escape(truncate(event.summary, SUMMARY_MAX)))
    if event.description and event.firing:
        lines.append(escape(truncate(event.description, DESCRIPTION_MAX)))
    labels = [
        f"`{escape(k)}={escape(truncate(v, LABEL_VALUE_MAX))}`"
        for k, v in sorted(event.labels.items())
        if k not in HIDDEN_LABELS and k != "target"
    ]
    if labels:
        lines.append(" ".join(labels))
    footer = []
    when = iso(event.timestamp)
    footer.append(("since " if event.firing else "resolved ") + (when or "?"))
    if event.runbook_url:
        footer.append(_link(event.runbook_url, "Runbook"))
    if event.dashboard_url:
        footer.append(_link(event.dashboard_url, "Dashboard"))
    lines.append(" · ".join(footer))
    text = truncate("\n".join(lines), SECTION_MAX)
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _more(count: int, what: str) -> dict[str, Any]:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": f"...and {count} more {what}"}],
    }


def latest_per_alert(events: Sequence[Event]) -> list[Event]:
    """One entry per alert: a trigger and its resolve in the same batch show as resolved."""
    last: dict[str, Event] = {}
    for event in events:
        last.pop(event.dedup_key, None)
        last[event.dedup_key] = event
    return list(last.values())


def build_message(events: Sequence[Event], max_alerts: int) -> dict[str, Any]:
    alerts = latest_per_alert(events)
    firing = by_severity([e for e in alerts if e.firing])
    resolved = [e for e in alerts if not e.firing]
    shown_firing = firing[:max_alerts]
    shown_resolved = resolved[: max(0, max_alerts - len(shown_firing))]
    counts = []
    if firing:
        counts.append(f"FIRING:{len(firing)}")
    if resolved:
        counts.append(f"RESOLVED:{len(resolved)}")
    rules = sorted({e.rule for e in alerts})
    test = any(e.test for e in alerts)
    fallback = f"{'[TEST] ' if test else ''}[{', '.join(counts)}] {', '.join(rules)}"
    if len(alerts) == 1 and alerts[0].summary:
        fallback += f": {alerts[0].summary}"
    title_parts = []
    if firing:
        title_parts.append(f"🔥 {len(firing)} firing ({severity_counts(firing)})")
    if resolved:
        title_parts.append(f"✅ {len(resolved)} resolved")
    title = ("TEST · " if test else "") + " · ".join(title_parts)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": truncate(title, HEADER_MAX)}}
    ]
    attachments = []
    for shown, total, color, what in (
        (shown_firing, len(firing), FIRING_COLOR, "firing"),
        (shown_resolved, len(resolved), RESOLVED_COLOR, "resolved"),
    ):
        if not total:
            continue
        section_blocks = [alert_section(e) for e in shown]
        if total > len(shown):
            section_blocks.append(_more(total - len(shown), what))
        attachments.append({"color": color, "blocks": section_blocks})
    message: dict[str, Any] = {
        "text": truncate(escape(fallback), TEXT_MAX),
        "blocks": blocks,
        "attachments": attachments,
    }
    return within_block_limit(message)


def within_block_limit(message: dict[str, Any]) -> dict[str, Any]:
    """Drop the last listed sections until the message fits Slack's block limit (with
    ``max_alerts`` <= 40 it always does; this keeps the send path free of asserts)."""
    attachments = message["attachments"]
    while block_count(message) > BLOCKS_MAX and attachments:
        last = attachments[-1]["blocks"]
        last.pop(-2 if len(last) > 1 else -1)
        if not last:
            attachments.pop()
    return message


def block_count(message: dict[str, Any]) -> int:
    return len(message["blocks"]) + sum(len(a["blocks"]) for a in message["attachments"])


def classify(response: httpx.Response) -> Result:
    reason = body_reason(response, 60)
    word = reason.split()[0] if reason else ""
    if 200 <= response.status_code < 300:
        return Result(Outcome.DELIVERED, f"HTTP {response.status_code}", response.status_code)
    if word in PERMANENT_BODIES:
        return Result(
            Outcome.PERMANENT, f"HTTP {response.status_code} {word}", response.status_code
        )
    if word in RETRY_BODIES:
        return Result(Outcome.RETRY, f"HTTP {response.status_code} {word}", response.status_code)
    return classify_status(response, word)


class SlackReceiver(HttpReceiver):
    kind = "slack"
    coalesce = True

    def __init__(self, name: str, config: Config, client: httpx.AsyncClient) -> None:
        super().__init__(name, config, client, config.webhook_url.get_secret_value())
        self.config = config
        self.max_alerts = config.max_alerts

    def fingerprint(self) -> str:
        return fingerprint_of(self.kind, self.config.webhook_url.get_secret_value())

    async def send(self, events: Sequence[Event]) -> Result:
        message = build_message(events, self.max_alerts)
        body = json.dumps(message, ensure_ascii=False).encode()
        response = await post(
            self._client, self.config.webhook_url.get_secret_value(), body, self.config.timeout
        )
        if isinstance(response, Result):
            return response
        return classify(response)

    async def probe(self) -> CheckResult:
        """POST an empty object: a live webhook answers 400 (no text) and posts nothing."""
        item = f"receiver/{self.name}"
        response = await probe_http(
            self._client,
            item,
            "POST",
            self.config.webhook_url.get_secret_value(),
            10.0,
            content=b"{}",
            headers={"Content-Type": "application/json"},
        )
        if isinstance(response, CheckResult):
            return response
        result = classify(response)
        if response.status_code in (400, 200) or result.outcome is Outcome.RETRY:
            return CheckResult(item, True, f"slack webhook reachable ({result.detail})")
        return CheckResult(item, False, f"slack webhook refused: {result.detail}")
