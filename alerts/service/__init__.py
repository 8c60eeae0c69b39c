"""The alerting component and its outside faces: leadership, the HTTP API, self-metrics,
``monitor once``/``check``/``test-alert`` and ``monitor silence``.

The plug-in factory is :func:`alerts.service.component.components`; it takes only the
alerting section (:class:`alerts.service.config.AlertingConfig`).
"""
