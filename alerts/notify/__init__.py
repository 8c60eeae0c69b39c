"""The notify pipeline: evaluation results turned into delivered notifications.

Stages, in the order one alert passes them: :mod:`~alerts.notify.decision` (pure:
whether and why to notify), :mod:`~alerts.notify.render` (the event),
:mod:`~alerts.notify.outbox` (queued until delivered, retried or failed),
:mod:`~alerts.notify.ledger` (what each receiver was told, receiver health),
:mod:`~alerts.notify.persistence` (write-through, takeover, step-down, via the
:mod:`~alerts.notify.journal`), tied together by :mod:`~alerts.notify.coordinator`
(the engine) and drained by :mod:`~alerts.notify.delivery`.
"""
