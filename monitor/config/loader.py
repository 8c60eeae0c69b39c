"""Load the configuration: YAML file or environment, ``${VAR}`` expansion, validation.

Every problem is reported on its own line, naming the key path and the offending value
with secrets masked::

    targets.postgres[1].url: expected a postgresql:// or postgres:// URL, got 'mysql://u:***@db/x'
    interval: invalid duration '15 seconds'; use a number with a unit ...
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr, ValidationError

from monitor.config.env import config_from_environment
from monitor.config.model import Config
from monitor.redact import MASK, redact, register_secrets

_VAR = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")

SECRET_KEYS = frozenset(
    {
        "password",
        "auth_token",
        "bearer_token",
        "api_key",
        "routing_key",
        "webhook_url",
        "url",
        "dsn",
    }
)


class ConfigError(Exception):
    """The configuration is invalid; ``problems`` has one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


_VERBATIM = re.compile(r"queries\[\d+\]\.sql")
"""Custom SQL is never expanded: environment values reach it only as bind parameters."""


def expand_env(value: Any, environ: Mapping[str, str], path: str, problems: list[str]) -> Any:
    """Expand ``${VAR}`` and ``${VAR:-default}`` in every string of a parsed YAML tree
    (except ``queries[].sql``)."""
    if isinstance(value, str) and not _VERBATIM.fullmatch(path):

        def replace(m: re.Match[str]) -> str:
            if m[0] == "$$":
                return "$"
            name, default = m["name"], m["default"]
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            problems.append(f"{path or '<root>'}: environment variable {name} is not set")
            return ""

        return _VAR.sub(replace, value)
    if isinstance(value, dict):
        return {
            k: expand_env(v, environ, f"{path}.{k}" if path else str(k), problems)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [expand_env(v, environ, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    return value


def _blank_to_none(value: Any) -> Any:
    """``auth_token: ${TOKEN:-}`` with TOKEN unset means "not configured"."""
    if isinstance(value, dict):
        return {k: _blank_to_none(v) for k, v in value.items() if v != ""}
    if isinstance(value, list):
        return [_blank_to_none(v) for v in value]
    return value


def _format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "function-before", "function-plain") or "[" in str(part):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"


def _is_secret_path(loc: tuple[int | str, ...]) -> bool:
    return any(isinstance(p, str) and p in SECRET_KEYS for p in loc)


def format_validation_error(exc: ValidationError) -> list[str]:
    lines = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"])
        msg = redact(str(err["msg"]).removeprefix("Value error, "))
        where = _format_loc(loc)
        value = err.get("input")
        if err["type"] == "missing":
            lines.append(f"{where}: required key is missing")
            continue
        if err["type"] == "extra_forbidden":
            lines.append(f"{where}: unknown key")
            continue
        if _is_secret_path(loc) or isinstance(value, SecretStr):
            shown = MASK
        elif isinstance(value, dict | list):
            shown = ""
        else:
            shown = redact(repr(value))
            if len(shown) > 80:
                shown = shown[:77] + "..."
        lines.append(f"{where}: {msg}" + (f" (got {shown})" if shown and shown not in msg else ""))
    return lines


def validate(
    raw: Any, environ: Mapping[str, str] | None = None, source: str = "", *, expand: bool = True
) -> Config:
    """Expand ``${VAR}`` (unless ``expand`` is false) and validate a parsed document."""
    environ = os.environ if environ is None else environ
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([f"{source or '<config>'}: expected a mapping at the top level"])
    problems: list[str] = []
    if expand:
        raw = expand_env(raw, environ, "", problems)
    expanded = _blank_to_none(raw)
    if problems:
        raise ConfigError(problems)
    try:
        config = Config.model_validate(expanded)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None
    register_secrets(config.secrets())
    return config


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """The configuration from ``path``, ``$MONITOR_CONFIG``, or the environment alone."""
    environ = os.environ if environ is None else environ
    if path is None:
        path = environ.get("MONITOR_CONFIG") or None
    if path is None:
        return validate(config_from_environment(environ), expand=False)
    file = Path(path)
    try:
        text = file.read_text()
    except OSError as exc:
        raise ConfigError([f"{file}: cannot read configuration file: {exc.strerror}"]) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else str(file)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{where}: invalid YAML: {redact(str(problem))}"]) from None
    return validate(raw, environ, source=str(file))
