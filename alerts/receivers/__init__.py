"""Receivers: PagerDuty, Slack, generic webhook, log.

:mod:`alerts.receivers.config` holds their config models, :mod:`alerts.receivers.registry`
makes them from the config.
"""
