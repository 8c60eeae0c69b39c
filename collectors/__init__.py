"""Collectors, one package per source kind; each package exposes
``sources(section, interval) -> list[Source]`` and owns its config model
(``config.py``). The daemon lists them in :mod:`monitor.app.plugins`."""
