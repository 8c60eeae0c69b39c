"""Release comparison on replayed router drains: (a) no change, (b) p95 doubled on one
route, (c) 5xx up, (d) one query 10x slower, (e) too little traffic."""

from __future__ import annotations

from deploy_replay import APP, ROUTES, Phase, Replay, Traffic, named

from collectors.deploys.announce import Announcer
from collectors.deploys.cli import table
from collectors.deploys.config import DeploysConfig
from collectors.deploys.job import DeployJob


def regressions(replay: Replay) -> list[dict[str, str]]:
    return [r for samples in replay.samples for r in named(samples, "monitor_release_regression")]


def verdicts(replay: Replay) -> set[tuple[str, str]]:
    return {
        (r["version"], r["verdict"]) for r in named(replay.samples[-1], "monitor_release_verdict")
    }


async def replayed(before: Phase, after: Phase, **config: object) -> Replay:
    replay = Replay(dict(config))
    await replay.start()
    try:
        await replay.run(before, after)
    finally:
        await replay.stop()
    return replay


async def test_a_no_change_passes_and_never_pages() -> None:
    replay = await replayed(Phase(), Phase())
    assert ("v124", "pass") in verdicts(replay)
    assert regressions(replay) == []
    stored = await replay.store.verdicts(APP)
    assert stored[0].version == 124 and stored[0].verdict == "pass"
    judged = {(f.signal, f.subject) for f in stored[0].findings if f.judged}
    assert {("p95", r) for r in ROUTES} <= judged and ("query", "primary/shop/101") in judged


async def test_b_p95_doubled_on_one_route_regresses_naming_release_and_route() -> None:
    after = Phase()
    after.routes["/checkout"] = Traffic(median_ms=190.0)
    replay = await replayed(Phase(), after)
    assert ("v124", "regressed") in verdicts(replay)
    found = {(r["signal"], r["route"]) for r in regressions(replay)}
    assert ("p95", "/checkout") in found
    assert {route for _, route in found} == {"/checkout"}  # the other routes did not move
    p95 = next(r for r in regressions(replay) if r["signal"] == "p95")
    assert p95["version"] == "v124" and p95["previous_version"] == "v123"
    assert p95["change"].startswith("p95 /checkout ") and " -> " in p95["change"]
    before_ms, after_ms = (float(x.split()[0]) for x in p95["change"][14:].split(" -> "))
    # bucket interpolation (0.1 s .. 0.25 s) reads the true 182 ms p95 as ~230 ms
    assert 150 <= before_ms <= 260 and after_ms >= 2 * before_ms * 0.85
    # found early (first_look), long before the whole window is over
    first = next(i for i, s in enumerate(replay.samples) if named(s, "monitor_release_regression"))
    assert first - 40 <= (300 + 600) / 60 + 2


async def test_c_5xx_up_regresses() -> None:
    after = Phase()
    after.routes["/"] = Traffic(errors=0.06)
    replay = await replayed(Phase(), after)
    found = {(r["signal"], r["route"]) for r in regressions(replay)}
    assert ("5xx", "/") in found
    assert all(signal != "p95" for signal, _ in found)
    change = next(r["change"] for r in regressions(replay) if r["signal"] == "5xx")
    assert change.startswith("5xx / 0.") and change.endswith("%")


async def test_d_one_query_ten_times_slower_regresses() -> None:
    after = Phase(query_ms={"101": 20.0, "202": 5.0})
    replay = await replayed(Phase(), after)
    found = {(r["signal"], r["query"]) for r in regressions(replay)}
    assert found == {("query", "primary/shop/101")}
    change = next(r["change"] for r in regressions(replay))
    assert change == "query primary/shop/101 2 ms -> 20 ms"


async def test_e_too_little_traffic_is_insufficient_and_never_pages() -> None:
    quiet = {r: Traffic(per_minute=2) for r in ROUTES}
    noisy_after = {r: Traffic(per_minute=2, median_ms=300.0, errors=0.3) for r in ROUTES}
    replay = await replayed(
        Phase(routes=quiet, query_ms={}), Phase(routes=noisy_after, query_ms={})
    )
    assert ("v124", "insufficient") in verdicts(replay)
    assert regressions(replay) == []


async def test_noisy_hours_do_not_page() -> None:
    """Ten seeds of unchanged traffic with a small real shift (10% slower): no alert."""
    for seed in range(10):
        replay = Replay(seed=seed)
        await replay.start()
        after = Phase(routes={r: Traffic(median_ms=88.0) for r in ROUTES})
        try:
            await replay.run(Phase(), after, after_minutes=36)
        finally:
            await replay.stop()
        assert regressions(replay) == [], seed


async def test_report_table_lists_the_regression_first() -> None:
    after = Phase()
    after.routes["/checkout"] = Traffic(median_ms=190.0)
    replay = await replayed(Phase(), after)
    (stored,) = [v for v in await replay.store.verdicts(APP) if v.version == 124]
    text = table(stored)
    lines = text.splitlines()
    assert lines[0] == "shop v124: regressed"
    assert lines[2].startswith("!!") and "/checkout" in lines[2]


async def test_a_newer_release_resolves_the_regression() -> None:
    after = Phase()
    after.routes["/checkout"] = Traffic(median_ms=190.0)
    replay = Replay()
    await replay.start()
    try:
        await replay.run(Phase(), after, after_minutes=20)
        assert named(replay.samples[-1], "monitor_release_regression")
        await replay.release(125)
        await replay.minutes(1, Phase())
    finally:
        await replay.stop()
    assert named(replay.samples[-1], "monitor_release_regression") == []
    versions = {r["version"] for r in named(replay.samples[-1], "monitor_deploy_timestamp_seconds")}
    assert versions == {"v123", "v124", "v125"}


async def test_a_regression_keeps_firing_across_a_restart() -> None:
    after = Phase()
    after.routes["/checkout"] = Traffic(median_ms=190.0)
    replay = await replayed(Phase(), after)
    # a new process: empty history, the same state database
    job = DeployJob(
        DeploysConfig(), replay.store, None, None, Announcer(()), 15.0, clock=lambda: replay.now
    )
    samples = list(await job.collect())
    assert {(r["signal"], r["route"]) for r in named(samples, "monitor_release_regression")} >= {
        ("p95", "/checkout")
    }
    assert {("v124", "regressed")} <= {
        (r["version"], r["verdict"]) for r in named(samples, "monitor_release_verdict")
    }
    (stored,) = [v for v in await replay.store.verdicts(APP) if v.version == 124]
    assert stored.verdict == "regressed"
