"""Typed, frozen configuration: see :mod:`monitor.config.model` for the shape.

The names below are loaded on first use (PEP 562), so that configuration models kept
beside what they configure (``collectors.heroku_logs.config``) can import
:mod:`monitor.config.types` while :mod:`monitor.config.model` imports them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.config.loader import ConfigError, load_config, validate
    from monitor.config.model import Config, HttpConfig, StateConfig, TargetsConfig

_FROM_LOADER = frozenset({"ConfigError", "load_config", "validate"})
_FROM_MODEL = frozenset({"Config", "HttpConfig", "StateConfig", "TargetsConfig"})


def __getattr__(name: str) -> Any:
    if name in _FROM_LOADER:
        from monitor.config import loader

        return getattr(loader, name)
    if name in _FROM_MODEL:
        from monitor.config import model

        return getattr(model, name)
    raise AttributeError(f"module 'monitor.config' has no attribute {name!r}")


__all__ = [
    "Config",
    "ConfigError",
    "HttpConfig",
    "StateConfig",
    "TargetsConfig",
    "load_config",
    "validate",
]
