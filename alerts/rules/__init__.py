"""Alert rules: their config, kinds, the regression detector, the built-in pack and the
set in force.

* :mod:`alerts.rules.config` - ``rules:`` entries (a new rule or an override);
* :mod:`alerts.rules.kinds` - threshold, nodata and regression rules as evaluated;
* :mod:`alerts.rules.regression` - the latency-regression detector;
* :mod:`alerts.rules.builtin` - the built-in pack;
* :mod:`alerts.rules.ruleset` - the pack overridden and extended by the config.
"""
