"""Typed, frozen configuration: see :mod:`monitor.config.model` for the shape."""

from monitor.config.loader import ConfigError, load_config, validate
from monitor.config.model import Config, HttpConfig, StateConfig, TargetsConfig

__all__ = [
    "Config",
    "ConfigError",
    "HttpConfig",
    "StateConfig",
    "TargetsConfig",
    "load_config",
    "validate",
]
