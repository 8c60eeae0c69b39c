"""Silences (one-off and weekly windows across time zones and DST) and routing."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from conftest import make_config

from alerts.routing import Router
from alerts.silences import Silences
from monitor.kernel.config.loading import ConfigError

PARIS = ZoneInfo("Europe/Paris")


def at(text: str, zone: ZoneInfo = PARIS) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


def silences(*docs: dict[str, object]) -> Silences:
    return Silences(make_config(silences=list(docs)).silences)


def test_one_off_silence_window() -> None:
    s = silences(
        {
            "match": {"alertname": "PgDown"},
            "start": "2026-03-01T10:00:00Z",
            "end": "2026-03-01T11:00:00Z",
        }
    )
    labels = {"alertname": "PgDown", "target": "primary"}
    utc = ZoneInfo("UTC")
    assert s.silencing(labels, at("2026-03-01T09:59:59", utc)) is None
    assert s.silencing(labels, at("2026-03-01T10:00:00", utc)) is not None
    assert s.silencing(labels, at("2026-03-01T11:00:00", utc)) is None
    assert s.silencing({"alertname": "Other"}, at("2026-03-01T10:30:00", utc)) is None


def test_weekly_window_in_its_own_time_zone_across_dst() -> None:
    # Sundays 02:00-04:00 Paris time; 2026-03-29 is the night clocks jump 02:00 -> 03:00
    s = silences(
        {
            "match_re": {"target": "prim.*"},
            "recurring": {
                "days": ["sun"],
                "start": "02:00",
                "end": "04:00",
                "time_zone": "Europe/Paris",
            },
        }
    )
    labels = {"target": "primary"}
    assert s.silencing(labels, at("2026-03-22T02:30:00")) is not None  # winter, UTC+1
    assert s.silencing(labels, at("2026-03-22T04:00:00")) is None
    assert s.silencing(labels, at("2026-03-23T02:30:00")) is None  # a Monday
    # DST day: 03:30 local exists (UTC+2) and is inside; the window lasts one real hour
    assert s.silencing(labels, at("2026-03-29T03:30:00")) is not None
    inside = [
        t
        for t in range(int(at("2026-03-29T00:00:00")), int(at("2026-03-29T06:00:00")), 60)
        if s.silencing(labels, t)
    ]
    assert len(inside) == 60
    assert s.silencing(labels, at("2026-07-05T02:30:00")) is not None  # summer, UTC+2
    assert s.silencing(labels, at("2026-07-05T01:30:00")) is None
    assert s.silencing({"target": "replica"}, at("2026-07-05T02:30:00")) is None


def test_window_across_midnight_belongs_to_its_start_day() -> None:
    s = silences(
        {
            "recurring": {
                "days": ["fri"],
                "start": "22:00",
                "end": "02:00",
                "time_zone": "America/New_York",
            }
        }
    )
    ny = ZoneInfo("America/New_York")
    assert s.silencing({}, at("2026-06-05T23:00:00", ny)) is not None  # Friday night
    assert s.silencing({}, at("2026-06-06T01:00:00", ny)) is not None  # Saturday early
    assert s.silencing({}, at("2026-06-06T23:00:00", ny)) is None  # Saturday night
    assert s.silencing({}, at("2026-06-05T01:00:00", ny)) is None  # Friday early


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"match": {"a": "b"}}, "needs an `end` or a `recurring`"),
        ({"end": "2026-01-01T00:00:00"}, "give the time zone"),
        ({"recurring": {"start": "25:00", "end": "02:00"}}, "expected a time of day"),
        (
            {"recurring": {"start": "01:00", "end": "02:00", "time_zone": "Mars/Base"}},
            "unknown time zone",
        ),
        ({"match_re": {"a": "("}, "end": "2026-01-01T00:00:00Z"}, "invalid regular expression"),
    ],
)
def test_bad_silences_are_refused(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        make_config(silences=[doc])
    assert message in "\n".join(err.value.problems)


def test_routes_first_match_continue_and_fallback() -> None:
    config = make_config(
        receivers={
            "oncall": {"type": "pagerduty", "routing_key": "k" * 32},
            "team": {"type": "log"},
            "audit": {"type": "log"},
        },
        routes=[
            {
                "match": {"severity": "critical"},
                "receivers": ["oncall", "team"],
                "continue": True,
                "repeat_interval": "1h",
            },
            {"match_re": {"severity": "critical|warning"}, "receivers": ["audit"]},
            {"match": {"alertname": "Never"}, "receivers": ["team"]},
        ],
    )
    router = Router(config.routes, list(config.receivers), "team")
    assert [t.receiver for t in router.route({"severity": "critical"})] == [
        "oncall",
        "team",
        "audit",
    ]
    assert router.route({"severity": "critical"})[0].repeat_interval == 3600
    assert [t.receiver for t in router.route({"severity": "warning"})] == ["audit"]
    assert [t.receiver for t in router.route({"severity": "info"})] == ["team"]  # fallback
    broken = router.route({"alertname": "MonitorReceiverBroken", "receiver": "oncall"})
    assert [t.receiver for t in broken] == ["team", "audit"]


def test_no_routes_means_every_receiver() -> None:
    config = make_config(receivers={"a": {"type": "log"}, "b": {"type": "log"}})
    router = Router(config.routes, list(config.receivers), "a")
    assert [t.receiver for t in router.route({"severity": "info"})] == ["a", "b"]
