"""The evaluator as a pure function: state machine, hysteresis, dead collectors."""

from __future__ import annotations

from typing import Any

from alerts.evaluator import EvalState, evaluate
from alerts.instance import Clock, State
from alerts.rules.config import RuleConfig
from alerts.rules.kinds import Rule
from alerts.rules.ruleset import build_rules, compile_rule
from alerts.series import JobState, SeriesView, view_of
from monitor.kernel.snapshot import gauge

CONN = gauge("pg_connections_utilization_ratio", "ratio")
PG_UP = gauge("pg_up", "up")
LAG = gauge("pg_replication_lag_bytes", "lag", "standby")
JOB = ("postgres", "primary")


def rule(**doc: Any) -> Rule:
    doc.setdefault("name", "Test")
    return compile_rule(RuleConfig.model_validate(doc))


def conn_view(value: float | None, job_state: JobState = JobState.HEALTHY) -> SeriesView:
    samples = [] if value is None else [CONN(value, target="primary")]
    return view_of({JOB: samples}, jobs={JOB: (job_state, 1.0)})


class Run:
    """Feeds views to the evaluator one second apart, collecting transitions."""

    def __init__(self, *rules: Rule) -> None:
        self.rules = rules
        self.state = EvalState()
        self.t = 0.0
        self.transitions: list[tuple[float, str | None, str | None]] = []

    def step(self, view: SeriesView, dt: float = 1.0) -> None:
        self.t += dt
        result = evaluate(self.rules, view, self.state, Clock(self.t, 1_700_000_000 + self.t))
        self.state = result.state
        for tr in result.transitions:
            self.transitions.append(
                (self.t, tr.old.value if tr.old else None, tr.new.value if tr.new else None)
            )

    def fired(self) -> int:
        return sum(1 for _, _, new in self.transitions if new == "firing")

    def resolved(self) -> int:
        return sum(1 for _, _, new in self.transitions if new == "resolved")

    def states(self) -> list[State]:
        return [i.state for i in self.state.instances.values()]


def test_oscillation_around_the_threshold_fires_once_with_a_clear_threshold() -> None:
    run = Run(rule(metric=CONN.name, op=">=", threshold=0.9, clear=0.8, **{"for": "2s"}))
    for i in range(200):
        run.step(conn_view(0.9 + (0.001 if i % 2 else -0.001)))
    assert run.fired() == 1
    assert run.resolved() == 0
    run.step(conn_view(0.79))
    assert run.resolved() == 1


def test_oscillation_without_hysteresis_would_page_many_times() -> None:
    """The control for the test above: the same input without ``clear`` flaps."""
    run = Run(rule(metric=CONN.name, op=">=", threshold=0.9, **{"for": "0s"}))
    for i in range(20):
        run.step(conn_view(0.9 + (0.001 if i % 2 else -0.001)))
    assert run.fired() == 10


def test_keep_firing_for_holds_through_short_dips() -> None:
    run = Run(rule(metric=CONN.name, op=">", threshold=0.9, keep_firing_for="10s", **{"for": "0s"}))
    for i in range(60):
        run.step(conn_view(0.95 if i % 5 else 0.5))
    assert run.fired() == 1
    assert run.resolved() == 0
    for _ in range(9):
        run.step(conn_view(0.5))
    assert run.resolved() == 0
    run.step(conn_view(0.5))
    run.step(conn_view(0.5))
    assert run.resolved() == 1


def test_blip_shorter_than_for_never_fires() -> None:
    run = Run(rule(metric=CONN.name, op=">", threshold=0.9, **{"for": "5s"}))
    run.step(conn_view(0.5))
    for _ in range(4):
        run.step(conn_view(0.99))
    run.step(conn_view(0.5))
    assert run.fired() == 0
    assert [(old, new) for _, old, new in run.transitions] == [
        (None, "pending"),
        ("pending", None),
    ]
    assert run.state.instances == {}


def test_fires_once_held_for_the_for_duration() -> None:
    run = Run(rule(metric=CONN.name, op=">", threshold=0.9, **{"for": "3s"}))
    for _ in range(3):
        run.step(conn_view(0.99))
    assert run.fired() == 0
    run.step(conn_view(0.99))
    assert run.fired() == 1
    assert run.transitions[-1][0] - run.transitions[0][0] == 3.0


def test_a_dead_collector_is_not_mistaken_for_recovery() -> None:
    run = Run(rule(metric=CONN.name, op=">", threshold=0.9, **{"for": "0s"}))
    run.step(conn_view(0.99))
    assert run.states() == [State.FIRING]
    for _ in range(100):
        run.step(conn_view(None, JobState.FAILING))
    assert run.resolved() == 0
    assert run.states() == [State.FIRING]
    run.step(conn_view(0.5))
    assert run.resolved() == 1


def test_series_gone_while_its_collector_is_healthy_resolves() -> None:
    run = Run(rule(metric=CONN.name, op=">", threshold=0.9))
    run.step(conn_view(0.99))
    run.step(conn_view(None, JobState.HEALTHY))
    assert run.resolved() == 1


def test_a_target_removed_from_the_config_resolves() -> None:
    run = Run(rule(metric=CONN.name, op=">", threshold=0.9))
    run.step(conn_view(0.99))
    run.step(view_of({}, jobs={}))
    assert run.resolved() == 1


def test_pending_does_not_advance_on_missing_data() -> None:
    run = Run(rule(metric=CONN.name, op=">", threshold=0.9, **{"for": "3s"}))
    run.step(conn_view(0.99))
    for _ in range(10):
        run.step(conn_view(None, JobState.FAILING))
    assert run.states() == [State.PENDING]
    assert run.fired() == 0


def test_failure_samples_of_a_failed_run_are_evaluated() -> None:
    """pg_up 0 comes from a failed snapshot: PgDown must see it."""
    run = Run(rule(metric="pg_up", op="==", threshold=0, **{"for": "0s"}))
    view = view_of({JOB: [PG_UP(0, target="primary")]}, failed=frozenset({JOB}))
    run.step(view)
    assert run.fired() == 1


def test_nodata_fires_when_absent_and_when_its_collector_fails() -> None:
    nodata = rule(kind="nodata", metric=CONN.name, match={"target": "primary"}, **{"for": "3s"})
    run = Run(nodata)
    run.step(conn_view(0.5))
    for _ in range(3):
        run.step(conn_view(None, JobState.HEALTHY))
    assert run.fired() == 0
    run.step(conn_view(None, JobState.HEALTHY))
    assert run.fired() == 1
    run.step(conn_view(0.5))
    assert run.resolved() == 1
    # failure samples only (the collector failing) count as no data too
    failing = view_of({JOB: [CONN(0.5, target="primary")]}, failed=frozenset({JOB}))
    for _ in range(5):
        run.step(failing)
    assert run.fired() == 2
    labels = next(iter(run.state.instances.values())).labels
    assert labels == (("target", "primary"),)


def test_instances_are_per_label_set() -> None:
    run = Run(rule(metric=LAG.name, op=">", threshold=100))
    view = view_of({JOB: [LAG(500, "a", target="primary"), LAG(50, "b", target="primary")]})
    run.step(view)
    assert run.fired() == 1
    (instance,) = run.state.instances.values()
    assert dict(instance.labels) == {"target": "primary", "standby": "a"}


def test_label_matchers_select_series() -> None:
    run = Run(rule(metric=LAG.name, op=">", threshold=100, match_re={"standby": "b|c"}))
    run.step(view_of({JOB: [LAG(500, "a", target="primary"), LAG(50, "b", target="primary")]}))
    assert run.fired() == 0
    run.step(view_of({JOB: [LAG(500, "c", target="primary")]}))
    assert run.fired() == 1


def test_when_guard_joins_on_target() -> None:
    standbys = gauge("pg_replication_standbys", "n")
    recovery = gauge("pg_in_recovery", "r")
    guarded = rule(
        metric="pg_replication_standbys",
        op="<",
        threshold=1,
        when={"metric": "pg_in_recovery", "op": "==", "threshold": 0},
    )
    run = Run(guarded)
    view = view_of(
        {
            ("postgres", "primary"): [
                standbys(0, target="primary"),
                recovery(0, target="primary"),
            ],
            ("postgres", "replica"): [
                standbys(0, target="replica"),
                recovery(1, target="replica"),
            ],
        }
    )
    run.step(view)
    assert [dict(i.labels)["target"] for i in run.state.instances.values()] == ["primary"]


def test_rules_that_disappear_resolve_their_alerts() -> None:
    first = rule(metric=CONN.name, op=">", threshold=0.9)
    run = Run(first)
    run.step(conn_view(0.99))
    run.rules = ()
    run.step(conn_view(0.99))
    assert run.resolved() == 1


def test_for_allows_for_the_collectors_jitter() -> None:
    """Collections 0.95 s apart (jitter) still fire at the evaluation ~2 s in."""
    run = Run(rule(metric=CONN.name, op=">", threshold=0.9, **{"for": "2s"}))
    run.step(conn_view(0.99))
    run.step(conn_view(0.99), dt=0.95)
    run.step(conn_view(0.99), dt=0.95)
    assert run.fired() == 1


def test_builtin_pack_evaluates_whatever_subset_exists() -> None:
    ruleset = build_rules((), postgres_targets=0)
    run = Run(*ruleset.rules)
    run.step(view_of({JOB: [PG_UP(1, target="primary"), CONN(0.95, target="primary")]}))
    assert [i.rule for i in run.state.instances.values()] == [
        "PgConnectionsHigh",
        "PgConnectionsCritical",
    ]
    assert run.states() == [State.PENDING, State.PENDING]


CALLS = gauge("pg_stat_statements_calls_total", "calls", "datname", "queryid")
EXEC = gauge("pg_stat_statements_exec_seconds_total", "seconds", "datname", "queryid")


class Query:
    """Cumulative pg_stat_statements counters of one query (and the 'other' bucket)."""

    def __init__(self) -> None:
        self.calls = 0.0
        self.seconds = 0.0

    def run(self, calls: int, mean: float) -> SeriesView:
        self.calls += calls
        self.seconds += calls * mean
        samples = [
            CALLS(self.calls, "app", "42", target="primary"),
            EXEC(self.seconds, "app", "42", target="primary"),
            CALLS(self.calls * 10, "app", "other", target="primary"),
            EXEC(self.seconds * 100, "app", "other", target="primary"),
        ]
        return view_of({("postgres_statements", "primary"): samples})


def regression_run() -> tuple[Run, Query]:
    regression = rule(
        name="Slower",
        kind="regression",
        window="60s",
        baseline="300s",
        min_calls=20,
        min_increase="5ms",
    )
    return Run(regression), Query()


def test_regression_fires_on_a_slower_query_and_resolves() -> None:
    run, query = regression_run()
    for _ in range(36):  # 6 minutes at 10 ms, 10 calls every 10 s
        run.step(query.run(10, 0.010), dt=10)
    assert run.fired() == 0
    for _ in range(7):  # the last minute at 50 ms
        run.step(query.run(10, 0.050), dt=10)
    assert run.fired() == 1
    (instance,) = run.state.instances.values()
    assert dict(instance.labels) == {"target": "primary", "datname": "app", "queryid": "42"}
    assert instance.value is not None and 0.04 < instance.value <= 0.05
    assert instance.threshold is not None and 0.019 < instance.threshold < 0.03
    for _ in range(8):
        run.step(query.run(10, 0.010), dt=10)
    assert run.resolved() == 1


def test_regression_needs_calls_and_an_absolute_increase() -> None:
    run, query = regression_run()
    for _ in range(36):
        run.step(query.run(10, 0.0001), dt=10)
    for _ in range(7):  # 0.1 ms -> 0.4 ms: 4x, but only 0.3 ms slower
        run.step(query.run(10, 0.0004), dt=10)
    assert run.fired() == 0
    run, query = regression_run()
    for _ in range(36):  # one call per 10 s: 30 calls in the baseline ...
        run.step(query.run(1, 0.010), dt=10)
    for _ in range(12):  # ... but only 6 in a recent window: under min_calls
        run.step(query.run(1, 0.500), dt=10)
    assert run.fired() == 0


def test_regression_history_restarts_after_a_counter_reset() -> None:
    run, query = regression_run()
    for _ in range(36):
        run.step(query.run(10, 0.010), dt=10)
    query.calls = query.seconds = 0.0  # pg_stat_statements_reset()
    for _ in range(7):
        run.step(query.run(10, 0.050), dt=10)
    assert run.fired() == 0  # no baseline since the reset: no verdict
    history = run.state.history["Slower"]
    (points,) = history.values()
    assert points[0].calls == 10.0
