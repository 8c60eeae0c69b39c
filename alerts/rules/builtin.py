"""The built-in rule pack, on by default; each rule can be overridden or disabled by name.

Thresholds come from the research notes (pg:diagnose, the postgres mixin, Core Web
Vitals "good" limits) and the users' targets. A rule whose metric is not collected
simply never matches, so the pack works with whatever collectors are configured.
"""

from __future__ import annotations

from typing import Any

from alerts.rules.config import RuleConfig

MiB = 1024 * 1024
DAY = 86400

_PACK: tuple[dict[str, Any], ...] = (
    # --- PostgreSQL availability -------------------------------------------------------
    {
        "name": "PgDown",
        "metric": "pg_up",
        "op": "==",
        "threshold": 0,
        "for": "1m",
        "severity": "critical",
        "summary": "PostgreSQL {{ target }} is not answering",
        "description": "The monitor could not query {{ target }} for a minute. "
        "Check the server, its connection limit and the network.",
    },
    # --- connections (pg:diagnose: 75% yellow, 90% red) --------------------------------
    {
        "name": "PgConnectionsHigh",
        "metric": "pg_connections_utilization_ratio",
        "op": ">=",
        "threshold": 0.75,
        "clear": 0.70,
        "for": "5m",
        "severity": "warning",
        "summary": "PostgreSQL {{ target }} connections at {{ value | percent }} of the limit",
        "description": "More than 75% of max_connections are in use. Check for connection "
        "leaks, idle sessions and pool sizes (PgBouncer).",
    },
    {
        "name": "PgConnectionsCritical",
        "metric": "pg_connections_utilization_ratio",
        "op": ">=",
        "threshold": 0.90,
        "clear": 0.85,
        "for": "2m",
        "severity": "critical",
        "summary": "PostgreSQL {{ target }} connections at {{ value | percent }} of the limit",
        "description": "More than 90% of max_connections are in use; new connections will "
        "soon be refused.",
    },
    # --- replication -------------------------------------------------------------------
    {
        "name": "PgStandbyMissing",
        "metric": "pg_replication_standbys",
        "op": "<",
        "threshold": 1,
        "for": "2m",
        "when": {"metric": "pg_in_recovery", "op": "==", "threshold": 0},
        "severity": "critical",
        "summary": "PostgreSQL primary {{ target }} has no streaming standby",
        "description": "No standby is connected to the primary: the follower is down or "
        "its WAL receiver lost the connection. Only on when more than one PostgreSQL "
        "target is configured.",
    },
    {
        "name": "PgStandbyReceiverDown",
        "metric": "pg_standby_receiver_up",
        "op": "==",
        "threshold": 0,
        "for": "2m",
        "severity": "critical",
        "summary": "PostgreSQL standby {{ target }} is not receiving WAL",
        "description": "The standby has no WAL receiver: its data is getting stale while "
        "its own replay lag reads zero.",
    },
    {
        "name": "PgReplicationLagBytes",
        "metric": "pg_replication_lag_bytes",
        "op": ">",
        "threshold": 256 * MiB,
        "clear": 64 * MiB,
        "for": "5m",
        "severity": "critical",
        "summary": "Standby {{ labels.standby }} of {{ target }} is {{ value | bytes }} behind",
        "description": "Replay on the standby is far behind the primary's WAL.",
    },
    {
        "name": "PgReplicationLagSeconds",
        "metric": "pg_replication_lag_seconds",
        "match": {"kind": "replay"},
        "op": ">",
        "threshold": 60,
        "clear": 30,
        "for": "5m",
        "severity": "warning",
        "summary": "Standby {{ labels.standby }} of {{ target }} replays "
        "{{ value | duration }} late",
    },
    {
        "name": "PgStandbyReplayLagBytes",
        "metric": "pg_standby_replay_lag_bytes",
        "op": ">",
        "threshold": 256 * MiB,
        "clear": 64 * MiB,
        "for": "5m",
        "severity": "warning",
        "summary": "Standby {{ target }} has {{ value | bytes }} of WAL received but not replayed",
    },
    # --- sessions (pg:diagnose: long queries and idle in transaction > 1 min) -----------
    {
        "name": "PgLongRunningTransaction",
        "metric": "pg_oldest_transaction_seconds",
        "op": ">",
        "threshold": 300,
        "for": "1m",
        "severity": "warning",
        "summary": "A transaction on {{ target }} has been open for {{ value | duration }}",
        "description": "Long transactions hold back vacuum and can hold locks.",
    },
    {
        "name": "PgLongRunningQuery",
        "metric": "pg_longest_query_seconds",
        "op": ">",
        "threshold": 300,
        "for": "1m",
        "severity": "warning",
        "summary": "A query on {{ target }} has been running for {{ value | duration }}",
    },
    {
        "name": "PgIdleInTransaction",
        "metric": "pg_oldest_idle_in_transaction_seconds",
        "op": ">",
        "threshold": 60,
        "for": "1m",
        "severity": "warning",
        "summary": "A session on {{ target }} is idle in transaction for {{ value | duration }}",
        "description": "An application opened a transaction and stopped talking; it holds "
        "its locks and snapshot until it ends.",
    },
    {
        "name": "PgBlockedSessions",
        "metric": "pg_blocked_sessions",
        "op": ">",
        "threshold": 0,
        "for": "2m",
        "severity": "warning",
        "summary": "{{ value | number }} session(s) on {{ target }} waiting on a lock",
    },
    # --- cache hit (postgres mixin: < 0.98 for 5 m) -----------------------------------
    {
        "name": "PgCacheHitRatioLow",
        "metric": "pg_cache_hit_ratio",
        "match": {"scope": "heap"},
        "op": "<",
        "threshold": 0.98,
        "clear": 0.985,
        "for": "10m",
        "severity": "warning",
        "summary": "PostgreSQL {{ target }} heap cache hit ratio is {{ value | percent(1) }}",
        "description": "Reads are going to disk: the working set no longer fits in memory.",
    },
    # --- statements --------------------------------------------------------------------
    {
        "name": "PgQueryRegression",
        "kind": "regression",
        "severity": "warning",
        "summary": "Query {{ labels.queryid }} on {{ labels.datname }} ({{ target }}) takes "
        "{{ value | duration }} on average, {{ factor }}x+ its usual {{ baseline | duration }}",
    },
    # --- PgBouncer ---------------------------------------------------------------------
    {
        "name": "PgBouncerClientsWaiting",
        "metric": "pgbouncer_pool_clients",
        "match": {"state": "waiting"},
        "op": ">",
        "threshold": 0,
        "for": "2m",
        "severity": "warning",
        "summary": "{{ value | number }} client(s) waiting for a server connection in "
        "{{ target }} pool {{ labels.database }}/{{ labels.user }}",
    },
    {
        "name": "PgBouncerMaxWaitHigh",
        "metric": "pgbouncer_pool_max_wait_seconds",
        "op": ">",
        "threshold": 1,
        "for": "2m",
        "severity": "warning",
        "summary": "Clients of {{ target }} pool {{ labels.database }}/{{ labels.user }} "
        "wait up to {{ value | duration }} for a connection",
    },
    # --- caches ------------------------------------------------------------------------
    {
        "name": "RedisCacheHitRatioLow",
        "metric": "redis_cache_hit_ratio",
        "op": "<",
        "threshold": 0.85,
        "clear": 0.88,
        "for": "15m",
        "severity": "warning",
        "summary": "Redis {{ target }} hit ratio is {{ value | percent }}",
    },
    {
        "name": "MemcachedCacheHitRatioLow",
        "metric": "memcached_cache_hit_ratio",
        "op": "<",
        "threshold": 0.85,
        "clear": 0.88,
        "for": "15m",
        "severity": "warning",
        "summary": "Memcached {{ target }} hit ratio is {{ value | percent }}",
    },
    # --- Core Web Vitals p75 worse than "good" (web-vitals thresholds) ------------------
    {
        "name": "WebVitalsLcpPoor",
        "metric": "crux_p75_seconds",
        "match": {"metric": "lcp"},
        "op": ">",
        "threshold": 2.5,
        "for": "30m",
        "severity": "warning",
        "summary": "LCP p75 of {{ labels.origin }} ({{ labels.form_factor }}) is "
        '{{ value | number }}s, above the 2.5s "good" limit',
    },
    {
        "name": "WebVitalsInpPoor",
        "metric": "crux_p75_seconds",
        "match": {"metric": "inp"},
        "op": ">",
        "threshold": 0.2,
        "for": "30m",
        "severity": "warning",
        "summary": "INP p75 of {{ labels.origin }} ({{ labels.form_factor }}) is "
        '{{ value | duration }}, above the 200ms "good" limit',
    },
    {
        "name": "WebVitalsClsPoor",
        "metric": "crux_cls_p75",
        "op": ">",
        "threshold": 0.1,
        "for": "30m",
        "severity": "warning",
        "summary": "CLS p75 of {{ labels.origin }} ({{ labels.form_factor }}) is "
        '{{ value | number }}, above the 0.1 "good" limit',
    },
    # --- the same limits on real users' beacons over the last rum.window (minutes, where
    # CrUX is a 28-day average); series exist only from rum.min_reports reports --------
    {
        "name": "RumLcpPoor",
        "metric": "webvitals_window_p75_seconds",
        "match": {"metric": "lcp"},
        "op": ">",
        "threshold": 2.5,
        "clear": 2.3,
        "for": "2m",
        "severity": "warning",
        "summary": "Real users' LCP p75 on {{ labels.route }} is {{ value | number }}s "
        'over the last {{ labels.window }}, above the 2.5s "good" limit',
    },
    {
        "name": "RumInpPoor",
        "metric": "webvitals_window_p75_seconds",
        "match": {"metric": "inp"},
        "op": ">",
        "threshold": 0.2,
        "clear": 0.18,
        "for": "2m",
        "severity": "warning",
        "summary": "Real users' INP p75 on {{ labels.route }} is {{ value | duration }} "
        'over the last {{ labels.window }}, above the 200ms "good" limit',
    },
    {
        "name": "RumClsPoor",
        "metric": "webvitals_window_cls_p75",
        "op": ">",
        "threshold": 0.1,
        "clear": 0.09,
        "for": "2m",
        "severity": "warning",
        "summary": "Real users' CLS p75 on {{ labels.route }} is {{ value | number }} "
        'over the last {{ labels.window }}, above the 0.1 "good" limit',
    },
    # --- HTTP probes ---------------------------------------------------------------------
    {
        "name": "ProbeFailed",
        "metric": "probe_success",
        "op": "==",
        "threshold": 0,
        "for": "2m",
        "severity": "critical",
        "summary": "{{ target }} is failing its HTTP probe",
    },
    {
        "name": "ProbeSlow",
        "metric": "probe_duration_seconds",
        "op": ">",
        "threshold": 0.5,
        "clear": 0.4,
        "for": "5m",
        "severity": "warning",
        "summary": "{{ target }} answers its probe in {{ value | duration }} (over 500ms)",
    },
    # --- probe SLOs (SRE workbook multi-window pairs), off until enabled by name: every
    # probe has a default SLO, and a hard outage would page for both ProbeFailed and the
    # fast burn; a team that pages on SLOs enables these and may disable ProbeFailed ----
    {
        "name": "ProbeErrorBudgetBurnFast",
        "enabled": False,
        "metric": "probe_slo_burning",
        "match": {"urgency": "page"},
        "op": "==",
        "threshold": 1,
        "severity": "critical",
        "summary": "{{ target }} is failing fast enough to spend its error budget in days",
        "description": "Both windows of a fast pair burn over the limit (1h and 5m over "
        "14.4x, or 6h and 30m over 6x the sustainable rate, for a 30-day SLO). "
        "probe_slo_error_budget_burn_rate shows each window.",
    },
    {
        "name": "ProbeErrorBudgetBurnSlow",
        "enabled": False,
        "metric": "probe_slo_burning",
        "match": {"urgency": "ticket"},
        "op": "==",
        "threshold": 1,
        "severity": "warning",
        "summary": "{{ target }} is spending its error budget faster than it can last",
        "description": "Both windows of a slow pair burn over the limit (1d and 2h over "
        "3x, or 3d and 6h over 1x the sustainable rate, for a 30-day SLO).",
    },
    # --- TLS certificates (Heroku ACM renews about 30 days before expiry) ---------------
    {
        "name": "ProbeCertificateExpiring",
        "metric": "probe_tls_cert_expiry_seconds",
        "op": "<",
        "threshold": 14 * DAY,
        "clear": 15 * DAY,
        "for": "10m",
        "severity": "warning",
        "summary": "The TLS certificate of {{ target }} expires in {{ value | duration }}",
        "description": "Automatic renewal has not happened two weeks before expiry.",
    },
    {
        "name": "ProbeCertificateExpiryCritical",
        "metric": "probe_tls_cert_expiry_seconds",
        "op": "<",
        "threshold": 3 * DAY,
        "clear": 4 * DAY,
        "for": "10m",
        "severity": "critical",
        "summary": "The TLS certificate of {{ target }} expires in {{ value | duration }}",
        "description": "Browsers will refuse the site when it expires.",
    },
    # --- Heroku log drain (log_drain): the app's own requests, dynos and Logplex, over the
    # last log_drain.window; ratio and p95 exist only from log_drain.min_requests ----------
    {
        "name": "HerokuRouter5xxHigh",
        "metric": "heroku_router_window_5xx_ratio",
        "op": ">",
        "threshold": 0.05,
        "clear": 0.03,
        "for": "5m",
        "severity": "critical",
        "summary": "{{ value | percent }} of {{ labels.app }}'s requests answered 5xx "
        "over the last {{ labels.window }}",
        "description": "The Heroku router saw server errors (the app's own 5xx and router "
        "H-codes). heroku_router_errors_total tells the codes apart.",
    },
    {
        "name": "HerokuRequestTimeouts",
        "metric": "heroku_router_window_errors",
        "match": {"code": "H12"},
        "op": ">=",
        "threshold": 5,
        "for": "2m",
        "severity": "warning",
        "summary": "{{ value | number }} requests to {{ labels.app }} timed out (H12) "
        "in the last {{ labels.window }}",
        "description": "The router cut requests after 30 s. Look for slow endpoints, "
        "saturated web dynos or a slow database.",
    },
    {
        "name": "HerokuLatencyHigh",
        "metric": "heroku_router_window_service_p95_seconds",
        "op": ">",
        "threshold": 0.5,
        "clear": 0.4,
        "for": "10m",
        "severity": "warning",
        "summary": "{{ labels.app }} answers in {{ value | duration }} at p95 "
        "(over 500ms) over the last {{ labels.window }}",
    },
    {
        "name": "HerokuDynoMemoryHigh",
        "metric": "heroku_dyno_window_errors",
        "match_re": {"code": "R14|R15"},
        "op": ">",
        "threshold": 0,
        "severity": "warning",
        "summary": "Dyno {{ labels.process }} of {{ labels.app }} is over its memory quota "
        "({{ labels.code }})",
        "description": "R14: the dyno swaps above its quota and slows down; R15: Heroku "
        "kills it. Compare heroku_dyno_memory_bytes with heroku_dyno_memory_quota_bytes.",
    },
    {
        "name": "HerokuDynoCrashing",
        "metric": "heroku_dyno_window_crashes",
        "op": ">=",
        "threshold": 2,
        "severity": "critical",
        "summary": "Dyno {{ labels.process }} of {{ labels.app }} crashed {{ value | number }} "
        "times in the last {{ labels.window }}",
        "description": "A crash loop: check the release just deployed, boot errors (R10) "
        "and the dyno's logs.",
    },
    {
        "name": "HerokuLogplexDropping",
        "metric": "heroku_logplex_window_dropped_messages",
        "op": ">",
        "threshold": 0,
        "severity": "warning",
        "summary": "Logplex dropped {{ value | number }} log lines of {{ labels.app }} "
        "(L10) in the last {{ labels.window }}",
        "description": "A drain of the app is too slow or refuses batches; the metrics "
        "from the log drain undercount meanwhile.",
    },
    {
        "name": "HerokuDrainSilent",
        "metric": "heroku_drain_seconds_since_last_batch",
        "op": ">",
        "threshold": 900,
        "severity": "warning",
        "summary": "No log drain batch from {{ labels.app }} for {{ value | duration }}",
        "description": "The drain was removed, its credential changed, or the app stopped "
        "logging: the Heroku* rules see nothing meanwhile.",
    },
    # --- releases (deploys): a signal that got worse with the app's newest release --------
    {
        "name": "ReleaseRegression",
        "metric": "monitor_release_regression",
        "op": ">",
        "threshold": 0,
        "severity": "critical",
        "summary": "{{ labels.app }} {{ labels.version }}: {{ labels.change }}",
        "description": "Since release {{ labels.version }} (before it: "
        "{{ labels.previous_version }}), {{ labels.signal }} got worse beyond the configured "
        "effect size, on enough traffic to rule out noise. `monitor deploy report --version "
        "{{ labels.version }}` prints the whole comparison; a newer release resolves this.",
    },
    # --- the monitor itself ----------------------------------------------------------------
    {
        "name": "MonitorCollectorFailing",
        "metric": "monitor_collector_up",
        "op": "==",
        "threshold": 0,
        "for": "5m",
        "severity": "warning",
        "summary": "The {{ labels.collector }} collector for {{ target }} has been failing",
        "description": "Rules on its metrics keep their state until it recovers.",
    },
    {
        "name": "MonitorReceiverBroken",
        "metric": "monitor_receiver_up",
        "op": "==",
        "threshold": 0,
        "severity": "warning",
        "summary": "Alert receiver {{ labels.receiver }} refuses notifications",
        "description": "It answered with a permanent error (revoked or archived webhook, "
        "invalid routing key or payload); alerts for it are not retried. Sent to every "
        "other receiver.",
    },
    {
        "name": "MonitorShardDown",
        "metric": "monitor_shard_up",
        "op": "==",
        "threshold": 0,
        "for": "1m",
        "severity": "critical",
        "summary": "Shard {{ labels.shard }} of the monitor is not running",
        "description": "Its heartbeat in Alertmanager expired: the targets it watches are "
        "unwatched until it is back (see monitor_shard_target_info).",
    },
)

RECEIVER_BROKEN = "MonitorReceiverBroken"


def builtin_rules(postgres_targets: int) -> dict[str, RuleConfig]:
    """The pack, by name, for a configuration with this many PostgreSQL targets."""
    out: dict[str, RuleConfig] = {}
    for raw in _PACK:
        doc = dict(raw)
        if doc["name"] == "PgStandbyMissing" and postgres_targets < 2:
            doc["enabled"] = False  # nothing to expect a standby from
        out[doc["name"]] = RuleConfig.model_validate(doc)
    return out
