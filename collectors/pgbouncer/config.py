"""The ``targets.pgbouncer`` section: PgBouncer admin-console targets."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import AfterValidator, SecretStr

from monitor.kernel.config.types import Duration, Model, Name, PostgresUrl
from monitor.kernel.redact import redact

ADMIN_DATABASE = "pgbouncer"


def _admin_database(value: SecretStr) -> SecretStr:
    parts = urlsplit(value.get_secret_value())
    query = dict(parse_qsl(parts.query))
    dbname = query.get("dbname") or unquote(parts.path.lstrip("/"))
    if dbname != ADMIN_DATABASE:
        raise ValueError(
            f"a PgBouncer target must name the admin console database "
            f"'{ADMIN_DATABASE}' (e.g. postgresql://user@host:6432/pgbouncer), "
            f"got {redact(value.get_secret_value())!r}"
        )
    return value


class PgBouncerTarget(Model):
    """A PgBouncer admin console, e.g. ``postgresql://user:pw@host:6432/pgbouncer``.

    The user must be listed in PgBouncer's ``admin_users`` or ``stats_users``.
    """

    name: Name
    url: Annotated[PostgresUrl, AfterValidator(_admin_database)]
    interval: Duration | None = None
    timeout: Duration | None = None
    """Deadline of one collection, enforced by the monitor (PgBouncer accepts no
    ``statement_timeout``); defaults to 80% of the interval, at most 10s."""
    connect_timeout: Duration = 5.0

    def dsn(self) -> str:
        return self.url.get_secret_value()
