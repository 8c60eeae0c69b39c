"""Fault injection: real daemons (subprocesses), real SQLite and PostgreSQL state stores,
the local PagerDuty and Slack stand-ins, and what each receiver got counted.

Each scenario holds the promise "one page per problem and a resolve when it recovers":
at PagerDuty exactly one incident (dedup key) per problem with one trigger and one
resolve (a second trigger with the *same* key only in the documented at-least-once case,
a request in flight at SIGKILL). The suite runs with a 3 s lease renewed every second;
the time to a new leader is printed (``-s``) and bounded by lease + retry + start-up.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from alert_fakes import Answer, FakeReceiverServer
from fault_support import (
    LEASE,
    RETRY,
    DaemonProcess,
    TcpProxy,
    triggers_and_resolves,
    write_config,
)
from support import require_binary, run_monitor, wait_for

from monitor.app.demo import testservers
from monitor.app.demo.testbed import TestBed

TAKEOVER_BOUND = LEASE + RETRY + 5.0
"""Lease, one retry, and slack for connecting, loading and a loaded 2-core machine."""
OUTAGE = 10.0
"""How long a fault lasts where the issue says so (a follower cut off for 10 s)."""


@pytest.fixture
def daemons() -> Iterator[list[DaemonProcess]]:
    made: list[DaemonProcess] = []
    yield made
    for d in made:
        d.stop()


async def launch(
    made: list[DaemonProcess], tmp_path: Path, name: str, **config: object
) -> DaemonProcess:
    path = tmp_path / f"{name}.yaml"
    port = write_config(path, **config)  # type: ignore[arg-type]
    daemon = DaemonProcess(path, port, tmp_path / f"{name}.log")
    made.append(daemon)
    daemon.start()
    await daemon.ready()
    return daemon


@pytest.fixture
async def proxy(pg_state_url: str) -> AsyncIterator[TcpProxy]:
    parts = urlsplit(pg_state_url)
    assert parts.hostname is not None and parts.port is not None
    server = TcpProxy(parts.hostname, parts.port)
    await server.start()
    yield server
    await server.stop()


def via(url: str, proxy: TcpProxy) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[0] + f"@127.0.0.1:{proxy.port}"
    return parts._replace(netloc=netloc).geturl()


async def outbox_rows(url: str) -> int:
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return int(conn.execute("SELECT count(*) FROM monitor_alert_outbox").fetchone()[0])
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute("SELECT count(*) FROM monitor_alert_outbox")
        row = await cur.fetchone()
        return int(row[0]) if row else 0


def one_incident(pagerduty: FakeReceiverServer, *, triggers: int = 1) -> None:
    incidents = triggers_and_resolves(pagerduty)
    assert len(incidents) == 1, incidents
    (events,) = incidents.values()
    assert events == ["trigger"] * triggers + ["resolve"], events


def slack_delivered(slack: FakeReceiverServer) -> list[str]:
    """The header of every message Slack accepted."""
    return [r.json()["blocks"][0]["text"]["text"] for r in slack.requests if 200 <= r.status < 300]


async def test_follower_cut_off_from_the_store_for_10s_sends_nothing(
    tmp_path: Path,
    site: FakeReceiverServer,
    pagerduty: FakeReceiverServer,
    slack: FakeReceiverServer,
    pg_state_url: str,
    proxy: TcpProxy,
    daemons: list[DaemonProcess],
) -> None:
    receivers = {"site": site, "pagerduty": pagerduty, "slack": slack}
    leader = await launch(daemons, tmp_path, "leader", state_url=pg_state_url, **receivers)
    await leader.wait_role("leader")
    follower = await launch(
        daemons, tmp_path, "follower", state_url=via(pg_state_url, proxy), **receivers
    )
    await follower.wait_role("follower")
    site.site_status = 503
    await wait_for(lambda: pagerduty.actions() == ["trigger"], timeout=20)
    await wait_for(lambda: len(slack_delivered(slack)) == 1, timeout=20)
    proxy.cut()
    # past its last-seen lease the follower delivers degraded, but only what it sees
    # start firing: the alert already paged is not triggered again from empty memory
    await follower.wait_role("degraded", timeout=OUTAGE)
    await asyncio.sleep(OUTAGE - LEASE)  # the rest of the outage: several evaluations
    assert pagerduty.actions() == ["trigger"]
    proxy.restore()
    await follower.wait_role("follower", timeout=20)
    site.site_status = 200
    await wait_for(lambda: pagerduty.actions() == ["trigger", "resolve"], timeout=20)
    await wait_for(lambda: len(slack_delivered(slack)) == 2, timeout=20)
    one_incident(pagerduty)
    assert "resolved" in slack_delivered(slack)[1]
    assert len(slack.requests) == 2
    assert "standing by" in follower.text()


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_leader_frozen_past_its_lease_is_replaced_and_fenced_on_resume(
    request: pytest.FixtureRequest,
    store: str,
    tmp_path: Path,
    site: FakeReceiverServer,
    pagerduty: FakeReceiverServer,
    daemons: list[DaemonProcess],
) -> None:
    """SIGSTOP the leader with a trigger queued (in its group_wait); the follower takes
    over after the lease and sends it; the old leader, resumed, sends nothing."""
    url = (
        f"sqlite:///{tmp_path / 'state.db'}"
        if store == "sqlite"
        else request.getfixturevalue("pg_state_url")
    )
    common = {"state_url": url, "site": site, "pagerduty": pagerduty}
    route = {"group_wait": "2s"}
    old = await launch(daemons, tmp_path, "old", route=route, **common)
    await old.wait_role("leader")
    new = await launch(daemons, tmp_path, "new", route=route, **common)
    await new.wait_role("follower")
    site.site_status = 503

    async def queued() -> bool:
        return await outbox_rows(url) == 1

    await wait_for(queued, timeout=20)
    old.signal(signal.SIGSTOP)
    took = await new.wait_role("leader", timeout=TAKEOVER_BOUND)
    print(f"\n{store}: leader frozen -> new leader in {took:.1f} s (lease {LEASE} s)")
    await wait_for(lambda: pagerduty.actions() == ["trigger"], timeout=20)
    old.signal(signal.SIGCONT)
    await old.wait_role("follower", timeout=20)
    site.site_status = 200
    await wait_for(lambda: pagerduty.actions() == ["trigger", "resolve"], timeout=20)
    await wait_for(lambda: "lost" in old.text() or "stepping down" in old.text(), timeout=5)
    one_incident(pagerduty)  # the resumed old leader did not send its queued trigger


async def test_leader_killed_mid_send_is_replaced_within_the_lease(
    tmp_path: Path,
    site: FakeReceiverServer,
    pagerduty: FakeReceiverServer,
    pg_state_url: str,
    daemons: list[DaemonProcess],
) -> None:
    common = {"state_url": pg_state_url, "site": site, "pagerduty": pagerduty}
    first = await launch(daemons, tmp_path, "first", **common)
    await first.wait_role("leader")
    second = await launch(daemons, tmp_path, "second", **common)
    await second.wait_role("follower")
    pagerduty.then(Answer(hold=True))
    site.site_status = 503
    await wait_for(lambda: pagerduty.holding == 1, timeout=20)
    first.kill()
    took = await second.wait_role("leader", timeout=TAKEOVER_BOUND)
    print(f"\nleader SIGKILLed -> new leader in {took:.1f} s (lease {LEASE} s)")
    # at-least-once: the trigger in flight is sent again, with the same dedup key
    await wait_for(lambda: pagerduty.actions() == ["trigger", "trigger"], timeout=20)
    site.site_status = 200
    await wait_for(lambda: len(pagerduty.requests) == 3, timeout=20)
    one_incident(pagerduty, triggers=2)


async def test_store_down_during_an_incident_and_back(
    tmp_path: Path,
    site: FakeReceiverServer,
    pagerduty: FakeReceiverServer,
    pg_state_url: str,
    proxy: TcpProxy,
    daemons: list[DaemonProcess],
) -> None:
    url = via(pg_state_url, proxy)
    daemon = await launch(daemons, tmp_path, "only", state_url=url, site=site, pagerduty=pagerduty)
    await daemon.wait_role("leader")
    site.site_status = 503
    await wait_for(lambda: pagerduty.actions() == ["trigger"], timeout=20)
    proxy.cut()
    await daemon.wait_role("degraded", timeout=20)
    site.site_status = 200  # recovers while the store is down: resolved from memory
    await wait_for(lambda: pagerduty.actions() == ["trigger", "resolve"], timeout=20)
    proxy.restore()
    await daemon.wait_role("leader", timeout=20)

    async def written() -> bool:
        return await outbox_rows(pg_state_url) == 0

    await wait_for(written, timeout=20)
    site.site_status = 503  # a second incident after the store is back: a new page
    await wait_for(lambda: len(pagerduty.requests) == 3, timeout=20)
    site.site_status = 200
    await wait_for(lambda: len(pagerduty.requests) == 4, timeout=20)
    assert pagerduty.actions() == ["trigger", "resolve", "trigger", "resolve"]


async def test_repeat_refused_then_the_alert_resolves(
    tmp_path: Path,
    site: FakeReceiverServer,
    pagerduty: FakeReceiverServer,
    daemons: list[DaemonProcess],
) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    daemon = await launch(
        daemons,
        tmp_path,
        "only",
        state_url=url,
        site=site,
        pagerduty=pagerduty,
        route={"repeat_interval": "2s"},
    )
    await daemon.wait_role("leader")
    site.site_status = 503
    await wait_for(lambda: pagerduty.actions() == ["trigger"], timeout=20)
    pagerduty.then(Answer(400, '{"status":"invalid event","message":"Event object is invalid"}'))
    await wait_for(lambda: pagerduty.actions() == ["trigger", "trigger"], timeout=20)
    site.site_status = 200
    await wait_for(lambda: pagerduty.actions()[-1:] == ["resolve"], timeout=20)
    keys = {b["dedup_key"] for b in pagerduty.bodies()}
    assert len(keys) == 1
    assert pagerduty.requests[1].status == 400


async def test_one_poison_alert_in_a_slack_batch_of_40(
    tmp_path: Path,
    site: FakeReceiverServer,
    slack: FakeReceiverServer,
    daemons: list[DaemonProcess],
) -> None:
    """Slack refuses any message naming site13: the other 39 alerts are delivered alone,
    triggers and resolves, and the receiver is not called broken."""
    slack.poison = b"site13"
    url = f"sqlite:///{tmp_path / 'state.db'}"
    daemon = await launch(
        daemons,
        tmp_path,
        "only",
        state_url=url,
        site=site,
        slack=slack,
        targets=40,
        route={"group_wait": "4s"},
    )
    await daemon.wait_role("leader")
    site.site_status = 503

    def accepted(word: str) -> set[str]:
        names = set()
        for r in slack.requests:
            if 200 <= r.status < 300 and word in r.json()["blocks"][0]["text"]["text"]:
                names |= {f"site{i}" for i in range(40) if f"· site{i}\\n" in r.body.decode()}
        return names

    others = {f"site{i}" for i in range(40)} - {"site13"}
    await wait_for(lambda: accepted("firing") == others, timeout=60)
    refused = [r for r in slack.requests if r.status == 400]
    assert len(refused[0].json()["attachments"][0]["blocks"]) > 1  # a batch, then one by one
    site.site_status = 200
    await wait_for(lambda: accepted("resolved") == others, timeout=60)
    firing_alerts = [a["rule"] for a in (await daemon.get("/alerts")).json()["alerts"]]
    assert "MonitorReceiverBroken" not in firing_alerts


async def test_state_url_through_transaction_mode_pgbouncer(
    tmp_path: Path,
    pg_bed: TestBed,
    pg_state_url: str,
    site: FakeReceiverServer,
    pagerduty: FakeReceiverServer,
    daemons: list[DaemonProcess],
) -> None:
    """``monitor check`` refuses it; daemons through it still elect one leader (the
    lease is transactional) and page once."""
    binary = require_binary("pgbouncer", "/usr/sbin/pgbouncer")
    primary = pg_bed.primary
    database = urlsplit(pg_state_url).path.lstrip("/")
    with testservers.pgbouncer_server(
        binary, primary.host, primary.port, pool_size=2, pool_mode="transaction"
    ) as bouncer:
        url = bouncer.database_url(database)
        config = tmp_path / "check.yaml"
        write_config(config, state_url=url, site=site, pagerduty=pagerduty)
        code, out, err = await run_monitor("check", "-c", str(config))
        assert code != 0
        assert "transaction-mode connection pooler" in out + err
        write_config(config, state_url=pg_state_url, site=site, pagerduty=pagerduty)
        _, out, err = await run_monitor("check", "-c", str(config))
        assert "pooler" not in out + err
        common = {"state_url": url, "site": site, "pagerduty": pagerduty}
        a = await launch(daemons, tmp_path, "a", **common)
        b = await launch(daemons, tmp_path, "b", **common)

        async def one_leader() -> bool:
            return sorted([await a.role(), await b.role()]) == ["follower", "leader"]

        await wait_for(one_leader, timeout=20)
        site.site_status = 503
        await wait_for(lambda: pagerduty.actions() == ["trigger"], timeout=20)
        site.site_status = 200
        await wait_for(lambda: pagerduty.actions() == ["trigger", "resolve"], timeout=20)
        one_incident(pagerduty)
        assert "connection pooler" in a.text() + b.text()


async def test_monitored_primary_is_the_state_store_and_goes_down(
    tmp_path: Path,
    own_bed: TestBed,
    site: FakeReceiverServer,
    pagerduty: FakeReceiverServer,
    daemons: list[DaemonProcess],
) -> None:
    """Heroku's default: ``DATABASE_URL`` is both monitored and the state store."""
    url = own_bed.primary.dsn()
    daemon = await launch(
        daemons, tmp_path, "only", state_url=url, site=site, pagerduty=pagerduty, postgres=url
    )
    await daemon.wait_role("leader")
    own_bed.primary.stop("immediate")
    await wait_for(lambda: "trigger" in pagerduty.actions(), timeout=40)
    own_bed.primary.start()
    await wait_for(lambda: "resolve" in pagerduty.actions(), timeout=60)
    await daemon.wait_role("leader", timeout=30)

    async def settled() -> bool:
        return await outbox_rows(url) == 0

    await wait_for(settled, timeout=30)
    incidents = triggers_and_resolves(pagerduty)
    pg_down = {k: v for k, v in incidents.items() if "/PgDown/" in k}
    assert list(pg_down.values()) == [["trigger", "resolve"]], incidents
    for key, events in incidents.items():  # no duplicate of any other alert either
        assert events.count("trigger") <= 1 and events.count("resolve") <= 1, (key, events)
