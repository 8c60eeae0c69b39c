"""An alert instance as receivers see it: its labels, its rendered text, its event."""

from __future__ import annotations

from collections.abc import Sequence

from alerts import templates
from alerts.instance import AlertInstance
from alerts.labels import dedup_key
from alerts.notify.events import Action, Event
from alerts.rules.kinds import Rule


class Renderer:
    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules_by_name: dict[str, Rule] = {r.name: r for r in rules}

    def labels(self, instance: AlertInstance) -> dict[str, str]:
        """The series' labels, the rule's static labels, ``alertname`` and ``severity``."""
        rule = self.rules_by_name.get(instance.rule)
        labels = dict(instance.labels)
        if rule is not None:
            labels.update(rule.static_labels)
        labels["alertname"] = instance.rule
        labels["severity"] = instance.severity
        return labels

    def render(self, instance: AlertInstance) -> tuple[str, str]:
        """(summary, description) of an instance, templates applied."""
        rule = self.rules_by_name.get(instance.rule)
        if rule is None:
            return f"{instance.rule} (rule no longer configured)", ""
        ctx = rule.context(instance, self.labels(instance))
        return templates.render(rule.summary, ctx), templates.render(rule.description, ctx)

    def links(self, instance: AlertInstance) -> tuple[str | None, str | None]:
        """(runbook_url, dashboard_url), templated with the instance's labels."""
        rule = self.rules_by_name.get(instance.rule)
        if rule is None or not (rule.runbook_url or rule.dashboard_url):
            return None, None
        ctx = rule.context(instance, self.labels(instance))
        return (
            templates.render_link(rule.runbook_url, ctx),
            templates.render_link(rule.dashboard_url, ctx),
        )

    def event(
        self,
        instance: AlertInstance,
        action: Action,
        labels: dict[str, str],
        routing_key: str | None,
        *,
        repeat: bool = False,
    ) -> Event:
        summary, description = self.render(instance)
        runbook, dashboard = self.links(instance)
        return Event(
            action=action,
            rule=instance.rule,
            severity=instance.severity,
            labels=labels,
            summary=summary,
            description=description,
            value=instance.value,
            threshold=instance.threshold,
            active_at=instance.active_at,
            fired_at=instance.fired_at,
            resolved_at=instance.resolved_at,
            dedup_key=dedup_key(instance.rule, instance.labels),
            runbook_url=runbook,
            dashboard_url=dashboard,
            component=instance.job[0] if instance.job else None,
            repeat=repeat,
            routing_key=routing_key,
        )
