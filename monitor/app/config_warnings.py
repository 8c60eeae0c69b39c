"""Configuration that validates but cannot work: said by ``monitor check`` (and
``check --config-only``) before the first real page finds out.

* a PagerDuty routing key of the wrong shape (Events API v2 integration keys are 32
  letters and digits): PagerDuty answers 400 to the first page;
* a configured rule on a metric that no enabled collector exports: it can never fire;
* no targets at all: the daemon would watch nothing.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterator

from alerts.receivers.config import PagerDutyConfig
from alerts.rules.builtin import builtin_rules
from alerts.series import COLLECTOR_UP, RECEIVER_UP
from monitor.app.config import Config
from monitor.kernel.snapshot import MetricSpec

ROUTING_KEY = re.compile(r"[A-Za-z0-9]{32}")

# each enabled part of the configuration -> the collector package exporting its samples
_PACKAGES = {
    "postgres": "collectors.postgres",
    "pgbouncer": "collectors.pgbouncer",
    "redis": "collectors.redis_cache",
    "memcached": "collectors.memcached",
    "crux": "collectors.crux",
    "psi": "collectors.psi",
    "http": "collectors.http_probe",
    "rum": "collectors.rum",
}


def config_warnings(config: Config) -> list[tuple[str, str]]:
    """(item, warning) pairs; never shows a secret."""
    out: list[tuple[str, str]] = []
    for name, receiver in config.receivers.items():
        if isinstance(receiver, PagerDutyConfig):
            key = receiver.routing_key.get_secret_value()
            if not ROUTING_KEY.fullmatch(key):
                out.append(
                    (
                        f"receiver/{name}",
                        f"routing key has {len(key)} characters; a PagerDuty Events API v2 "
                        "integration key is 32 letters and digits, so the first page would "
                        "be refused",
                    )
                )
    if not enabled_parts(config):
        out.append(("targets", "no targets configured: the daemon watches nothing"))
    exported = exported_metrics(config)
    builtin = set(builtin_rules(len(config.targets.postgres)))
    for rule in config.rules:
        if rule.enabled is False:
            continue
        for metric in _metrics_of(rule):
            if metric not in exported and not (rule.name in builtin and rule.metric is None):
                out.append(
                    (
                        f"rules/{rule.name}",
                        f"metric {metric} is exported by no enabled collector: "
                        "the rule can never fire",
                    )
                )
    return out


def enabled_parts(config: Config) -> list[str]:
    t = config.targets
    parts = [k for k in ("postgres", "pgbouncer", "redis", "memcached", "http") if getattr(t, k)]
    parts += [k for k in ("crux", "psi", "rum") if getattr(t, k) is not None]
    if config.log_drain is not None:
        parts.append("log_drain")
    if config.queries:
        parts.append("queries")
    return parts


def exported_metrics(config: Config) -> set[str]:
    """Every series name the enabled collectors can put in the snapshot store (what
    rules read), plus the daemon's own health series."""
    names = {COLLECTOR_UP.name, RECEIVER_UP.name}
    packages = [_PACKAGES[p] for p in enabled_parts(config) if p in _PACKAGES]
    if config.log_drain is not None:
        packages.append("collectors.heroku_logs")
    for package in packages:
        names.update(spec.name for spec in _specs(package))
    for query in config.queries:
        for metric in query.metrics:
            names.add(metric.name)
            names.update(f"{metric.name}{s}" for s in ("_bucket", "_count", "_sum", "_total"))
    return names


def _specs(package: str) -> Iterator[MetricSpec]:
    root = importlib.import_module(package)
    modules = [root]
    for info in pkgutil.walk_packages(getattr(root, "__path__", []), package + "."):
        modules.append(importlib.import_module(info.name))
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, MetricSpec):
                yield value


def _metrics_of(rule: object) -> list[str]:
    fields = ("metric", "calls_metric", "time_metric")
    found = [getattr(rule, f) for f in fields if getattr(rule, f, None)]
    when = getattr(rule, "when", None)
    if when is not None and getattr(when, "metric", None):
        found.append(when.metric)
    return found
