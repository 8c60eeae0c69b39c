"""structlog for the daemon and for every stdlib logger (apscheduler, psycopg, httpx,
uvicorn): JSON lines when stderr is not a terminal or ``LOG_FORMAT=json``, readable
console output otherwise. Every event passes through :func:`monitor.redact.redact`.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from monitor.kernel.redact import redact

NOISY_LOGGERS = {
    "apscheduler": logging.WARNING,
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "uvicorn.access": logging.WARNING,
    "psycopg.pool": logging.ERROR,  # our runner logs connection failures once per change
}


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, BaseException):
        return redact(str(value))
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(v) for v in value)
    return value


def redact_event(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask secrets in every field, including tracebacks."""
    event_dict.pop("color_message", None)  # uvicorn's duplicate of the message
    for key, value in list(event_dict.items()):
        if key in ("_record", "_from_structlog"):
            continue
        event_dict[key] = _redact_value(value)
    return event_dict


def choose_format(stream: TextIO, environ: MutableMapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    fmt = environ.get("LOG_FORMAT", "").strip().lower()
    if fmt in ("json", "console"):
        return fmt
    return "console" if stream.isatty() else "json"


def configure_logging(
    level: str | int | None = None, fmt: str | None = None, stream: TextIO | None = None
) -> None:
    stream = stream or sys.stderr
    fmt = fmt or choose_format(stream)
    level = level or os.environ.get("LOG_LEVEL", "INFO")
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]
    renderer: Processor
    if fmt == "json":
        final: list[Processor] = [
            structlog.processors.format_exc_info,
            redact_event,
            structlog.processors.JSONRenderer(),
        ]
    else:
        final = [
            structlog.processors.format_exc_info,
            redact_event,
            structlog.dev.ConsoleRenderer(
                colors=stream.isatty(), exception_formatter=structlog.dev.plain_traceback
            ),
        ]
    renderer = final[-1]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *final[:-1],
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else level.upper())
    for name, lvl in NOISY_LOGGERS.items():
        logging.getLogger(name).setLevel(lvl)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
