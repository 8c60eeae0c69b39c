"""Alerting: rules evaluated over the snapshot store, durable alert state, delivery.

Modules, in the order data flows through them:

* :mod:`alerts.series` - the view of the snapshot store the rules read (with job health);
* :mod:`alerts.rules`, :mod:`alerts.regression`, :mod:`alerts.builtin`,
  :mod:`alerts.ruleset` - rule kinds, the built-in pack, assembling the rules in force;
* :mod:`alerts.evaluator` - the pure evaluation step (pending, firing, resolved);
* :mod:`alerts.engine` - dispatch (routes, silences, repeats) and write-through state;
* :mod:`alerts.statedb` - SQLite/PostgreSQL stores and the leader lock;
* :mod:`alerts.delivery`, :mod:`alerts.receivers` - the outbox workers and receivers;
* :mod:`alerts.component` - the daemon component (``/alerts``, metrics, leadership);
* :mod:`alerts.oneshot` - ``monitor once``/``check``/``test-alert``.
"""
