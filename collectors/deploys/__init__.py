"""Deploys: markers from every source, the release comparison, and what it exports.

Kept import-light (the configuration model in :mod:`.config` is imported by
``monitor.app.config``). The pieces:

* :mod:`.markers`: a validated marker (CLI, ``POST /deploys``, dyno metadata); stored
  with the drain's releases (:mod:`.store`, ``heroku_releases`` + ``deploy_verdicts``);
* :mod:`.history`: a coarse history of the signals; :mod:`.stats`: the tests;
  :mod:`.compare`: one release's findings; :mod:`.watch`: when, and the verdict;
* :mod:`.job`: the periodic run and the exported series; :mod:`.announce`: PagerDuty
  change events and Slack; :mod:`.endpoint`: ``POST /deploys``;
  :mod:`.component`: wiring; :mod:`.cli`: ``monitor deploy mark|report``.
"""
