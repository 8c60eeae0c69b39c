"""The pg_stat_statements bookkeeping and SQL building, without a server."""

from __future__ import annotations

import random
from typing import Any

import pytest

from collectors.postgres.statements import (
    EXEC,
    FORGET_AFTER,
    StatementTotals,
    info_sql,
    normalise_query,
    parse_version,
    statements_sql,
)

DB = 5


def row(
    queryid: int | None,
    calls: float,
    exec_ms: float,
    *,
    userid: int = 10,
    dbid: int = DB,
    toplevel: bool = True,
    since: float | None = None,
) -> tuple[Any, ...]:
    """A main-query row: key, then calls, exec, rows, hit, read, blk read/write, since."""
    return (userid, dbid, queryid, toplevel, calls, exec_ms, calls, 2 * calls, 0.0, 0.0, 0.0, since)


def top_calls(totals: StatementTotals) -> dict[int | None, float]:
    return {k[1]: totals.totals_of(k)[0] for k in totals.top}


def other_calls(totals: StatementTotals, dbid: int = DB) -> float:
    return totals.other[dbid][0]


def test_versions_compare_numerically() -> None:
    assert parse_version("1.10") > parse_version("1.9") > parse_version("1.8")
    assert parse_version("1.11") >= (1, 11)


@pytest.mark.parametrize(
    ("version", "present", "absent"),
    [
        ("1.7", ["total_time", "blk_read_time", "true,", "NULL::float8"], ["total_exec_time"]),
        ("1.8", ["total_exec_time", "blk_read_time", "true,"], ["toplevel", "stats_since"]),
        ("1.9", ["total_exec_time", "toplevel", "blk_write_time"], ["shared_blk_read_time"]),
        ("1.10", ["total_exec_time", "toplevel", "blk_read_time"], ["stats_since"]),
        (
            "1.11",
            ["shared_blk_read_time + local_blk_read_time", "stats_since"],
            ["total_time,", " blk_read_time"],
        ),
        ("1.12", ["shared_blk_write_time + local_blk_write_time", "stats_since"], []),
    ],
)
def test_columns_follow_the_extension_version(
    version: str, present: list[str], absent: list[str]
) -> None:
    text = statements_sql("heroku_ext", parse_version(version))
    assert 'FROM "heroku_ext".pg_stat_statements(false)' in text
    assert "query," not in text.replace("queryid,", "")  # never the query text
    for column in present:
        assert column in text
    for column in absent:
        assert column not in text


def test_info_view_only_from_1_9() -> None:
    assert info_sql("public", (1, 8)) is None
    assert "pg_stat_statements_info" in (info_sql("public", (1, 9)) or "")


def test_schema_is_quoted() -> None:
    assert '"we""ird".pg_stat_statements' in statements_sql('we"ird', (1, 10))


def test_toplevel_and_nested_rows_are_one_series() -> None:
    totals = StatementTotals()
    totals.update([row(42, 3, 30.0, toplevel=True), row(42, 4, 40.0, toplevel=False)], top_n=10)
    assert [(k[1], *totals.totals_of(k)[:2]) for k in totals.top] == [(42, 7, 70.0)]


def test_rows_of_several_users_are_summed() -> None:
    totals = StatementTotals()
    totals.update([row(42, 3, 30.0, userid=10), row(42, 5, 10.0, userid=11)], top_n=10)
    assert top_calls(totals) == {42: 8}


def test_top_n_by_execution_time_and_the_rest_in_other() -> None:
    totals = StatementTotals()
    rows = [row(q, calls=q, exec_ms=100.0 * q) for q in range(1, 11)]
    totals.update(rows, top_n=3)
    assert top_calls(totals) == {10: 10, 9: 9, 8: 8}
    assert other_calls(totals) == sum(range(1, 8))
    assert totals.other[DB][EXEC] == 100.0 * sum(range(1, 8))


def test_top_zero_puts_everything_in_other() -> None:
    totals = StatementTotals()
    totals.update([row(1, 2, 5.0), row(2, 3, 1.0)], top_n=0)
    assert totals.top == []
    assert other_calls(totals) == 5


def test_other_never_decreases_when_membership_changes() -> None:
    totals = StatementTotals()
    totals.update([row(1, 10, 1000.0), row(2, 10, 10.0), row(3, 10, 5.0)], top_n=1)
    assert top_calls(totals) == {1: 10}
    assert other_calls(totals) == 20
    # statement 2 overtakes statement 1: 2 is promoted, 1 demoted
    totals.update([row(1, 11, 1001.0), row(2, 40, 5000.0), row(3, 12, 6.0)], top_n=1)
    assert top_calls(totals) == {2: 40}
    # other gained the increases of 1 and 3 (1 + 2); what 2 had contributed stays
    assert other_calls(totals) == 23
    totals.update([row(1, 15, 1005.0), row(2, 41, 5001.0), row(3, 12, 6.0)], top_n=1)
    assert other_calls(totals) == 27


def test_calls_zero_rows_are_harmless() -> None:
    totals = StatementTotals()
    totals.update([row(1, 0, 0.0), row(2, 5, 10.0)], top_n=5)
    assert top_calls(totals) == {2: 5, 1: 0}


def test_a_decrease_is_a_reset_and_totals_keep_growing() -> None:
    totals = StatementTotals()
    totals.update([row(1, 10, 100.0)], top_n=5)
    totals.update([row(1, 3, 30.0)], top_n=5)  # pg_stat_statements_reset(), then 3 calls
    assert top_calls(totals) == {1: 13}


def test_a_full_reset_counts_every_value_again() -> None:
    totals = StatementTotals()
    totals.update([row(1, 10, 100.0), row(2, 4, 1.0)], top_n=1)
    # after the reset statement 1 ran 12 times: more than before, caught by stats_reset
    totals.update([row(1, 12, 120.0), row(2, 4, 1.0)], top_n=1, full_reset=True)
    assert top_calls(totals) == {1: 22}
    assert other_calls(totals) == 8


def test_stats_since_marks_a_recreated_entry() -> None:
    totals = StatementTotals()
    totals.update([row(1, 10, 100.0, since=1000.0)], top_n=5)
    # evicted and re-created between two reads, and already past its old count
    totals.update([row(1, 15, 150.0, since=2000.0)], top_n=5)
    assert top_calls(totals) == {1: 25}


def test_an_evicted_entry_that_comes_back_continues_its_series() -> None:
    clock = [0.0]
    totals = StatementTotals(clock=lambda: clock[0])
    totals.update([row(1, 10, 100.0), row(2, 1, 1.0)], top_n=5)
    totals.update([row(2, 2, 2.0)], top_n=5)  # 1 evicted (dealloc)
    assert top_calls(totals) == {2: 2}
    totals.update([row(1, 4, 40.0), row(2, 2, 2.0)], top_n=5)  # 1 is back, from 0
    assert top_calls(totals)[1] == 14
    clock[0] = FORGET_AFTER + 1
    totals.update([row(2, 3, 3.0)], top_n=5)
    clock[0] = 2 * FORGET_AFTER + 2
    totals.update([row(2, 3, 3.0)], top_n=5)
    assert totals.tracked == 1  # 1's totals were forgotten after FORGET_AFTER


def test_hidden_queryids_go_to_other() -> None:
    totals = StatementTotals()
    totals.update([row(None, 3, 1.0, userid=11), row(None, 4, 1.0, userid=11), row(7, 1, 1.0)], 5)
    assert totals.hidden_rows == 1
    assert top_calls(totals) == {7: 1}
    assert other_calls(totals) == 7
    totals.update([row(None, 5, 1.0, userid=11), row(None, 4, 1.0, userid=11), row(7, 1, 1.0)], 5)
    assert other_calls(totals) == 9


def test_random_histories_never_go_backwards_and_keep_totals_right() -> None:
    rng = random.Random(7)
    totals = StatementTotals()
    raw = {q: [0.0, 0.0, 0.0] for q in range(30)}
    true_calls = 0.0
    previous: dict[str, float] = {}
    for step in range(300):
        if step % 37 == 36:  # a single entry reset (pg_stat_statements_reset(0, 0, q))
            raw[rng.randrange(30)] = [0.0, 0.0, float(step)]
        for q in rng.sample(range(30), 5):
            n = rng.randint(1, 5)
            raw[q][0] += n
            raw[q][1] += n * rng.uniform(0.1, 10)
            true_calls += n
        rows = [row(q, c, e, since=t) for q, (c, e, t) in raw.items() if c > 0]
        before = true_calls
        totals.update(rows, top_n=4)
        # the kept-or-recomputed top N is the true top N by execution time
        present = {(DB, q) for q, (c, _, _) in raw.items() if c > 0}
        best = sorted((totals.totals_of(k)[EXEC] for k in present), reverse=True)[:4]
        assert sorted((totals.totals_of(k)[EXEC] for k in totals.top), reverse=True) == best
        exported = {str(k[1]): totals.totals_of(k)[0] for k in totals.top}
        exported["other"] = other_calls(totals)
        for key, val in exported.items():
            assert val >= previous.get(key, 0.0), f"{key} went backwards at step {step}"
        previous.update(exported)
        # every call is counted once: in a top series' history or in other
        assert sum(exported.values()) <= before + 1e-6
    held = [*totals._totals.values(), *(t for t, _ in totals._gone.values())]
    all_totals = sum(t[0] for t in held)
    assert all_totals == pytest.approx(true_calls)


def test_query_text_is_normalised_and_truncated() -> None:
    text = "ALTER ROLE app\n   PASSWORD   'hunter2'  -- x"
    assert normalise_query(text, 100) == "ALTER ROLE app PASSWORD '?' -- x"
    long = normalise_query("SELECT " + ", ".join(f"c{i}" for i in range(100)), 30)
    assert len(long) == 30 and long.endswith("…")
