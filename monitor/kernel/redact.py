"""Keep secrets out of logs, errors, Sentry events and command output.

Two mechanisms, applied together by :func:`redact`:

* credentials embedded in URLs (``postgres://user:pass@host``) are masked wherever
  they appear, whether or not the URL came from the configuration;
* every secret value the configuration holds (passwords, tokens, webhook URLs, routing
  keys, API keys) is registered with :func:`register_secret` at load time and replaced
  by ``***`` wherever it appears verbatim.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from urllib.parse import quote, unquote

MASK = "***"

# scheme://user:password@  ->  scheme://user:***@. The password runs to the LAST @ of
# the token: a password holding / # ? or @ (not percent-encoded) does not parse as a URL,
# and must still be masked whole, not cut at its first special character.
_URL_CREDENTIALS = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@\s'\"]*):(?P<pw>[^\s'\"]+)@"
    r"(?=[^@\s'\"]*(?:[\s'\"]|$))"
)
# key=value secrets inside libpq conninfo strings or query strings
_KV_SECRET = re.compile(
    r"(?P<key>\b(?:password|passwd|pwd|api_key|apikey|key|token|access_token|routing_key|secret)=)"
    r"(?P<value>[^&\s'\"]+)",
    re.IGNORECASE,
)
# HTTP authorisation headers that end up in exception text
_AUTH_HEADER = re.compile(r"(?P<key>\b(?:Bearer|Basic)\s+)(?P<value>[A-Za-z0-9._~+/=\-]{6,})")

_MIN_SECRET_LEN = 4
_lock = threading.Lock()
_secrets: frozenset[str] = frozenset()
_pattern: re.Pattern[str] | None = None


def register_secret(value: str | None) -> None:
    """Remember a secret so that :func:`redact` masks it wherever it appears."""
    register_secrets([value])


def register_secrets(values: Iterable[str | None]) -> None:
    global _secrets, _pattern
    new = {v for v in values if v and len(v) >= _MIN_SECRET_LEN}
    # also the percent-encoded and decoded forms, as they appear in URLs
    new |= {quote(v, safe="") for v in new} | {unquote(v) for v in new}
    new = {v for v in new if len(v) >= _MIN_SECRET_LEN}
    with _lock:
        merged = _secrets | new
        if merged == _secrets:
            return
        _secrets = frozenset(merged)
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def clear_secrets() -> None:
    """Forget every registered secret (tests)."""
    global _secrets, _pattern
    with _lock:
        _secrets = frozenset()
        _pattern = None


def redact(text: str) -> str:
    """Return ``text`` with URL credentials and registered secrets masked."""
    if not text:
        return text
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    text = _KV_SECRET.sub(lambda m: f"{m['key']}{MASK}", text)
    return _AUTH_HEADER.sub(lambda m: f"{m['key']}{MASK}", text)


def url_password(url: str) -> str | None:
    """The password in ``scheme://user:password@host``, read up to the last ``@`` so that
    unencoded ``/ # ? @`` in it are kept (``urlsplit`` would cut it short)."""
    m = _URL_CREDENTIALS.search(url)
    return m["pw"] if m else None


def redact_url(url: str) -> str:
    """Mask the password of one URL, keeping the rest readable."""
    return redact(url)


def describe_error(exc: BaseException) -> str:
    """A one-line, secret-free description of a failure."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    return redact(f"{name}: {text}" if text else name)
