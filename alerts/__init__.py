"""Alerting: rules evaluated over the snapshot store, durable alert state, delivery.

Packages and modules, in the order data flows through them:

* :mod:`alerts.series` - the view of the snapshot store the rules read (with job health);
* :mod:`alerts.rules` - rule config, kinds, the regression detector, the built-in pack,
  the rules in force (:mod:`alerts.rules.ruleset`);
* :mod:`alerts.evaluator` - the pure evaluation step (pending, firing, resolved);
* :mod:`alerts.routing`, :mod:`alerts.silences` - routes and silences (config beside);
* :mod:`alerts.notify` - the notify pipeline: decision, outbox, ledger, persistence,
  coordinator (the engine) and delivery workers;
* :mod:`alerts.receivers` - PagerDuty, Slack, webhook, log (config and registry);
* :mod:`alerts.statedb` - the state database (SQLite/PostgreSQL) and the leader lock;
* :mod:`alerts.service` - the daemon component, leadership, ``/alerts`` and
  ``/silences``, self-metrics, ``monitor once``/``check``/``test-alert``/``silence``.

Shared validated config types live in :mod:`alerts.types`.
"""
