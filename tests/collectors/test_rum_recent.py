"""The last window of beacons: exact ratios and p75 at the thresholds, expiry of old
slots, the ``min_reports`` gate, and a real daemon alerting on real users' LCP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from conftest import make_config, run_daemon
from support import wait_for
from web_fakes import ORIGIN, lcp

from alerts.service.component import AlertingComponent
from collectors.rum.aggregate import bucket_bounds
from collectors.rum.config import RumConfig
from collectors.rum.recent import RecentHistograms, RecentSummary, quantile
from collectors.rum.window_job import RumWindowJob
from collectors.web_vitals import VITAL_NAMES
from monitor.kernel.snapshot import Sample


def rum_config(**overrides: Any) -> RumConfig:
    config = make_config(targets={"rum": {"allowed_origins": [ORIGIN], **overrides}})
    assert config.targets.rum is not None
    return config.targets.rum


def recent(config: RumConfig) -> RecentHistograms:
    return RecentHistograms(config, {m: bucket_bounds(config, m) for m in VITAL_NAMES})


def only(summaries: list[RecentSummary]) -> RecentSummary:
    (summary,) = summaries
    return summary


@pytest.mark.parametrize(("good", "worse_than_good"), [(75, False), (74, True)])
def test_p75_crosses_the_good_limit_exactly_when_a_quarter_are_not_good(
    good: int, worse_than_good: bool
) -> None:
    window = recent(rum_config())
    for i in range(100):
        window.observe("lcp", "/", 2.5 if i < good else 3.0, now=10.0, client=i)  # good: <=
    s = only(window.summaries(10.0))
    assert s.reports == 100
    assert s.good_ratio == good / 100
    assert s.poor_ratio == 0
    assert (s.p75 > 2.5) is worse_than_good
    assert 2.0 < s.p75 <= 3.0


def test_poor_is_above_the_poor_limit_and_p75_interpolates() -> None:
    window = recent(rum_config())
    for i, value in enumerate((1.0, 1.0, 4.0, 4.5)):  # 4.0 needs improvement, 4.5 is poor
        window.observe("lcp", "/cart", value, now=0.0, client=i)
    s = only(window.summaries(0.0))
    assert (s.good_ratio, s.poor_ratio) == (0.5, 0.25)
    # rank 3 of 4 is the 4.0 alone in the (3.0, 4.0] bucket: its upper edge
    assert s.p75 == pytest.approx(4.0)
    assert quantile(0.75, (1.0, 2.0), [0, 0, 4]) == 2.0  # all in +Inf: the last bound


def test_old_slots_leave_the_window() -> None:
    window = recent(rum_config(window="5m"))  # ten slots of 30 s
    window.observe("lcp", "/", 3.0, now=0.0)
    window.observe("lcp", "/", 1.0, now=200.0)
    assert only(window.summaries(290.0)).reports == 2
    assert only(window.summaries(300.0)).reports == 1  # the slot of t=0 has left
    assert window.summaries(500.0) == []


async def test_window_job_exports_ratios_only_from_min_reports() -> None:
    config = rum_config(min_reports=3, min_clients=1)
    window = recent(config)
    job = RumWindowJob(config, window, 15.0, monotonic=lambda: 5.0)
    for value in (0.3, 0.3):
        window.observe("inp", "/", value, now=1.0)
    window.observe("cls", "/", 0.3, now=1.0)

    def names(samples: list[Sample] | tuple[Sample, ...]) -> set[str]:
        return {s.spec.name for s in samples}

    assert names(await job.collect()) == {"webvitals_window_reports", "webvitals_window_clients"}
    window.observe("inp", "/", 0.3, now=2.0)
    window.observe("cls", "/", 0.3, now=2.0)
    window.observe("cls", "/", 0.3, now=2.0)
    samples = list(await job.collect())
    by = {(s.spec.name, s.label_values): s.value for s in samples}
    assert by[("webvitals_window_reports", ("rum", "/", "inp", "5m"))] == 3
    assert by[("webvitals_window_good_ratio", ("rum", "/", "inp", "5m"))] == 0
    assert by[("webvitals_window_p75_seconds", ("rum", "/", "inp", "5m"))] > 0.2
    assert by[("webvitals_window_poor_ratio", ("rum", "/", "cls", "5m"))] == 1
    assert by[("webvitals_window_cls_p75", ("rum", "/", "5m"))] > 0.25


async def test_one_client_can_neither_fire_nor_clear_a_rum_rule() -> None:
    """min_clients: one host's reports alone export no p75; max_reports_per_client: its
    flood of good reports cannot outweigh the other users' poor ones."""
    config = rum_config(min_reports=5, min_clients=3, max_reports_per_client=2)
    window = recent(config)
    job = RumWindowJob(config, window, 15.0, monotonic=lambda: 5.0)
    for _ in range(100):  # one forger, 100 poor LCP reports
        window.observe("lcp", "/", 9.0, now=1.0, client=666)
    by = {(s.spec.name, s.label_values): s.value for s in await job.collect()}
    assert by[("webvitals_window_reports", ("rum", "/", "lcp", "5m"))] == 2  # its share
    assert by[("webvitals_window_clients", ("rum", "/", "lcp", "5m"))] == 1
    assert ("webvitals_window_p75_seconds", ("rum", "/", "lcp", "5m")) not in by

    # four real users see a slow page; the forger now floods good values to mask it
    for client in range(4):
        window.observe("lcp", "/", 6.0, now=2.0, client=client)
    for _ in range(100):
        assert not window.observe("lcp", "/", 0.5, now=2.0, client=667) or _ < 2
    by = {(s.spec.name, s.label_values): s.value for s in await job.collect()}
    assert by[("webvitals_window_clients", ("rum", "/", "lcp", "5m"))] == 6
    assert by[("webvitals_window_p75_seconds", ("rum", "/", "lcp", "5m"))] > 4.0


def test_window_config_is_bounded() -> None:
    from monitor.kernel.config.loading import ConfigError

    with pytest.raises(ConfigError, match="from 1m to 1h"):
        rum_config(window="10s")
    with pytest.raises(ConfigError, match="min_reports"):
        rum_config(min_reports=0)


async def test_slow_real_users_raise_rum_lcp_poor_within_seconds() -> None:
    """Beacons through POST /vitals, the window job, the built-in rule (its `for`
    shortened), and /alerts: a regression shows in seconds, not after CrUX's 28 days."""
    config = make_config(
        interval="1s",
        targets={
            "rum": {
                "allowed_origins": [ORIGIN],
                "routes": ["/products/:id"],
                "min_reports": 20,
                "trusted_proxy_hops": 1,  # as behind Heroku's router: users differ
            }
        },
        rules=[{"name": "RumLcpPoor", "for": "0s"}],
    )
    async with run_daemon(config) as daemon, httpx.AsyncClient(timeout=10) as client:
        (alerting,) = [c for c in daemon.daemon.components if isinstance(c, AlertingComponent)]

        users = iter(range(1000))

        async def post(values: list[int]) -> None:
            for start in range(0, len(values), 2):
                body = [lcp(v) for v in values[start : start + 2]]
                r = await client.post(
                    daemon.url + "/vitals",
                    json=body,
                    headers={
                        "origin": ORIGIN,
                        "content-type": "text/plain;charset=UTF-8",
                        "x-forwarded-for": f"10.0.0.{next(users)}",
                    },
                )
                assert r.status_code == 204, r.text

        await post([1800] * 19)  # under min_reports: no p75, nothing to judge
        seen = alerting.engine.counters.evaluations
        await wait_for(lambda: alerting.engine.counters.evaluations >= seen + 2, timeout=10)
        assert alerting.alerts_json() == []
        await post([3600] * 21)  # now 21 of 40 are slow: p75 well over 2.5 s

        def firing() -> list[dict[str, Any]]:
            return [a for a in alerting.alerts_json() if a["rule"] == "RumLcpPoor"]

        (alert,) = await wait_for(firing, timeout=15)
        assert alert["labels"]["route"] == "/products/:id"
        assert alert["labels"]["window"] == "5m"
        assert alert["summary"].startswith("Real users' LCP p75 on /products/:id is ")
