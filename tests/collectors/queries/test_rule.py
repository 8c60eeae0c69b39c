"""A rule on a custom metric, in a real daemon: the docs' worked example, "the oldest
unprocessed job is older than 10 minutes", fires and resolves."""

from __future__ import annotations

from typing import Any

import psycopg
from conftest import make_config, run_daemon
from support import parse_exposition, wait_for

OLDEST = (
    "SELECT queue, extract(epoch FROM now() - min(created_at)) AS age_seconds"
    " FROM rule_jobs WHERE processed_at IS NULL GROUP BY queue"
)


async def firing(daemon: Any) -> list[dict[str, Any]]:
    response = await daemon.get("/alerts")
    assert response.status_code == 200
    return [a for a in response.json()["alerts"] if a["state"] == "firing"]


async def test_rule_fires_on_a_custom_metric(business_db: str) -> None:
    with psycopg.connect(business_db, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE rule_jobs (id serial PRIMARY KEY, queue text NOT NULL,"
            " created_at timestamptz NOT NULL DEFAULT now(), processed_at timestamptz)"
        )
        conn.execute("INSERT INTO rule_jobs (queue) VALUES ('mail')")
        config = make_config(
            interval="1s",
            targets={"postgres": [{"name": "primary", "url": business_db}]},
            queries=[
                {
                    "name": "oldest_job",
                    "targets": ["primary"],
                    "interval": "1s",
                    "sql": OLDEST,
                    "metrics": [
                        {
                            "name": "app_oldest_unprocessed_job_seconds",
                            "help": "Age of the oldest unprocessed job",
                            "labels": ["queue"],
                            "value": "age_seconds",
                        }
                    ],
                }
            ],
            receivers={"stdout": {"type": "log"}},
            routes=[{"match": {"severity": "warning"}, "receivers": ["stdout"]}],
            rules=[
                {
                    "name": "OldestJobTooOld",
                    "metric": "app_oldest_unprocessed_job_seconds",
                    "op": ">",
                    "threshold": 600,
                    "for": "2s",
                    "severity": "warning",
                    "summary": "{{ labels.queue }}: oldest unprocessed job is "
                    "{{ value | duration }} old",
                }
            ],
        )
        async with run_daemon(config) as daemon:

            async def exported() -> float | None:
                text = (await daemon.get("/metrics")).text
                parsed = parse_exposition(text)
                key = frozenset({("target", "primary"), ("queue", "mail")})
                return parsed.get(("app_oldest_unprocessed_job_seconds", key))

            await wait_for(exported, timeout=15)
            assert await firing(daemon) == []
            # a job waiting for 20 minutes in the reports queue
            conn.execute(
                "INSERT INTO rule_jobs (queue, created_at)"
                " VALUES ('reports', now() - interval '20 minutes')"
            )
            alerts = await wait_for(lambda: firing(daemon), timeout=20)
            (alert,) = alerts
            assert alert["rule"] == "OldestJobTooOld"
            assert alert["labels"]["queue"] == "reports"
            assert alert["labels"]["target"] == "primary"
            assert alert["summary"].startswith("reports: oldest unprocessed job is 20")
            conn.execute("UPDATE rule_jobs SET processed_at = now() WHERE queue = 'reports'")

            async def resolved() -> bool:
                return not await firing(daemon)

            await wait_for(resolved, timeout=20)
