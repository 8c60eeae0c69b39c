"""Heroku log drains: ``POST /logs`` and ``POST /logs/{app}`` turn Logplex batches into
metrics.

Kept import-light on purpose (the configuration model in :mod:`.config` is imported by
``monitor.app.config``). The pieces, in the order a batch meets them:

* :mod:`.framing`: octet-counted ``application/logplex-1`` frames;
* :mod:`.syslog`: the RFC 5424 header Logplex writes, and classification of a line by
  APP-NAME and PROCID (never by PRI);
* :mod:`.kv`, :mod:`.router`, :mod:`.dyno`, :mod:`.addons`, :mod:`.releases`,
  :mod:`.l2met`: the per-kind parsers;
* :mod:`.aggregate`: counters, histograms and gauges by app (bounded labels only);
* :mod:`.ingest`: one body through all of the above; :mod:`.endpoint`: the HTTP side;
* :mod:`.metrics` (custom collector), :mod:`.window_job` (what the rules see),
  :mod:`.release_log` (durable deploy events), :mod:`.component` (wiring).
"""
