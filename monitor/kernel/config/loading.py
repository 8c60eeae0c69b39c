"""Load the configuration: YAML file or environment, ``${VAR}`` expansion, validation.

Every problem is reported on its own line, naming the key path and the offending value
with secrets masked::

    targets.postgres[1].url: expected a postgresql:// or postgres:// URL, got 'mysql://u:***@db/x'
    interval: invalid duration '15 seconds'; use a number with a unit ...
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr, ValidationError

from monitor.kernel.redact import MASK, redact, register_secrets, url_password

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


WHOLE_SECRET_KEYS = SECRET_KEYS - {"url"}
"""Keys whose whole value is a secret; a plain ``url`` is secret only in its password."""
SECRET_ENVIRONMENT = re.compile(r"(PASSWORD|TOKEN|SECRET|_KEY|DSN|WEBHOOK_URL)$")
"""Environment variables whose whole value is a secret (``SENTRY_DSN`` and the like)."""


def register_raw_secrets(value: Any, key: str = "") -> None:
    """Register every secret of a parsed, not yet validated document with the redactor.

    Runs before validation, so that no message formatted while validating (by us,
    pydantic or urllib) can show a secret, even one in a URL that does not parse.
    """
    if isinstance(value, dict):
        for k, v in value.items():
            inherited = str(k) if key != "headers" else "password"
            register_raw_secrets(v, inherited)
    elif isinstance(value, list):
        for item in value:
            register_raw_secrets(item, key)
    elif isinstance(value, str) and value:
        if key in WHOLE_SECRET_KEYS:
            register_secrets([value])
        password = url_password(value)
        if password:
            register_secrets([password])


def register_environment_secrets(environ: Mapping[str, str]) -> None:
    """Register secret-looking environment variables and URL passwords found in any."""
    for name, value in environ.items():
        if SECRET_ENVIRONMENT.search(name):
            register_secrets([value])
        elif "://" in value:
            register_secrets([url_password(value)])


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

        expanded = _VAR.sub(replace, value)
        # ``${TOKEN:-}`` that expands to nothing means "not set"; a literal "" stays ""
        # (``{team: ""}`` in a matcher means "the label is absent")
        return EXPANDED_BLANK if expanded == "" and value != "" else expanded
    if isinstance(value, dict):
        return {
            k: expand_env(v, environ, f"{path}.{k}" if path else str(k), problems)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [expand_env(v, environ, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    return value


class _ExpandedBlank(str):
    """A value that was only ``${VAR}`` references, all of them empty."""

    __slots__ = ()


EXPANDED_BLANK = _ExpandedBlank("")
LABEL_MAPS = frozenset({"match", "match_re", "labels"})
"""Maps of label name to value, where an empty value is kept: dropping a matcher would
widen a silence or route to match everything."""


def blank_to_none(value: Any, *, every_blank: bool = False) -> Any:
    """Drop the keys (and list items) whose value expanded to nothing:
    ``auth_token: ${TOKEN:-}`` with TOKEN unset means "not configured".

    A literal ``""`` in a file is kept; with ``every_blank`` (the environment-only
    configuration, where an empty variable means unset) every ``""`` is dropped.
    """

    def blank(v: Any) -> bool:
        return v is EXPANDED_BLANK or (every_blank and v == "")

    if isinstance(value, dict):
        return {
            k: (
                {name: str(v2) for name, v2 in v.items()}  # "" means "label absent" there
                if k in LABEL_MAPS and isinstance(v, dict)
                else blank_to_none(v, every_blank=every_blank)
            )
            for k, v in value.items()
            if not blank(v)
        }
    if isinstance(value, list):
        return [blank_to_none(v, every_blank=every_blank) for v in value if not blank(v)]
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
