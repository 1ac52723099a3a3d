"""`routectl serve --log-database-url` on a real PostgreSQL: one row per routed request with the
right fields; the database stopped mid-run and started again loses nothing and doubles nothing;
`routectl logs load` makes the same rows from the access log, idempotently; `logs prune`."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from psycopg.rows import dict_row

from routectl.cli import main
from routectl.requestlogs.rows import COLUMNS

from .conftest import StoppablePostgres
from .usage_serve import (
    PRICES,
    Answer,
    count_rows,
    prepare_database,
    serving,
    traffic,
    usage_table,
    wait_rows,
)

pytestmark = [pytest.mark.db, pytest.mark.e2e, pytest.mark.slow]


def _rows(url: str) -> dict[str, dict[str, Any]]:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        rows = conn.execute("SELECT * FROM request_logs ORDER BY request_id").fetchall()
    return {r["request_id"]: r for r in rows}


def _cost(model: str, usage: dict[str, int]) -> Decimal:
    i, o = PRICES[model]
    value = (usage["prompt_tokens"] * i + usage["completion_tokens"] * o) / 1e6
    return Decimal(repr(round(value, 8)))


def _usage(a: Answer) -> dict[str, int]:
    return a.usage if a.stream else a.body["usage"]


def test_every_routed_request_is_one_row_with_its_fields(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    url = new_database()
    table = usage_table()
    prepare_database(url, table)
    with serving(table, tmp_path, "--log-database-url", url) as s:
        answers = traffic(s)
        for path in ("/metrics", "/healthz", "/v1/models"):  # not model calls: no rows
            s.get(path, "rk-test-carol")
        assert wait_rows(url, len(answers)) == len(answers)
        assert s.metric("routectl_request_logs_written_total") == len(answers)
        assert s.metric("routectl_request_logs_queued_total") == len(answers)
        assert s.metric("routectl_request_logs_spooled_total") == 0
        assert s.metric("routectl_request_logs_database_up") == 1
    rows = _rows(url)
    assert len(rows) == len(answers)  # and every id once: request_id is the key of `rows`
    assert sorted(rows) == sorted(a.headers["x-request-id"] for a in answers)

    for a in answers:
        row = rows[a.headers["x-request-id"]]
        assert row["status"] == a.status
        assert row["routing_table"] == table.sha256 == a.headers["x-routectl-table"]
        assert row["latency_ms"] > 0 and 0 < row["ttfb_ms"] <= row["latency_ms"]
        assert row["request_data"]["model"] == row["requested_model"]
        assert row["response_data"]["_latency_ms"] == row["latency_ms"]
        assert row["response_data"]["_selected_model"] == row["selected_model"]
        assert "content" not in json.dumps(row["request_data"])  # never the messages
        if a.status != 200:
            continue
        usage = _usage(a)
        model = a.headers["x-routectl-selected-model"]
        assert row["selected_model"] == model
        assert row["connection"] == a.headers["x-routectl-connection"]
        assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (
            usage["prompt_tokens"],
            usage["completion_tokens"],
            usage["total_tokens"],
        )
        assert row["response_data"]["total_tokens"] == usage["total_tokens"]
        assert row["cost_usd"] == _cost(model, usage)
        assert Decimal(repr(row["response_data"]["_cost"])) == row["cost_usd"]
        assert row["stream"] is a.stream
        assert row["attempts"][-1] == {
            "model": model,
            "connection": row["connection"],
            "status": 200,
        }
        if not a.stream:
            assert row["response_data"]["_selected_model"] == a.body["_selected_model"]

    by_model = Counter(r["requested_model"] for r in rows.values())
    assert by_model == {
        None: 1,  # an unknown key: refused before the body is read
        "collection/flash2.5": 15,
        "collection/org-shared-models": 6,
        "collection/split": 8,
        "collection/steady": 2,
        "echo/big": 1,
        "no/such-model": 1,
    }
    flash = [r for r in rows.values() if r["collection_name"] == "flash2.5" and r["status"] == 200]
    assert {(r["resolution"], r["routing_strategy"], r["caller"]) for r in flash} == {
        ("collection", "round_robin", "carol")
    }
    assert sum(r["stream"] for r in flash) == 3
    org = [r for r in rows.values() if r["collection_name"] == "org-shared-models"]
    assert {r["organization"] for r in org} == {"acme-corp"}
    assert Counter(r["caller"] for r in org) == {"alice": 3, "bob": 3}
    # the fallback: the first choice could not be reached, echo/big answered
    steady = [r for r in rows.values() if r["collection_name"] == "steady"]
    for r in steady:
        assert r["fallback_reason"] == "connect_error"
        assert r["attempts"] == [
            {"model": "gone/m1", "connection": "platform-gone", "error": "connect_error"},
            {"model": "echo/big", "connection": "platform-echo", "status": 200},
        ]
        assert r["response_data"]["_fallback_used"] is True
    direct = next(r for r in rows.values() if r["requested_model"] == "echo/big")
    assert (direct["resolution"], direct["collection_name"], direct["organization"]) == (
        "model",
        None,
        None,
    )
    # the refusals are rows too, with their error codes
    refused = {r["error_code"]: r for r in rows.values() if r["status"] >= 400}
    assert set(refused) == {"invalid_api_key", "model_not_found"}
    assert refused["invalid_api_key"]["caller"] is None
    assert refused["model_not_found"]["caller"] == "carol"
    assert refused["model_not_found"]["selected_model"] is None


def test_logs_load_makes_the_same_rows_from_the_access_log_and_adds_nothing_twice(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    live, loaded = new_database(), new_database()
    table = usage_table()
    prepare_database(live, table)
    prepare_database(loaded, table)
    with serving(table, tmp_path, "--log-database-url", live) as s:
        answers = traffic(s)
        assert wait_rows(live, len(answers)) == len(answers)
    log = s.log
    runner = CliRunner()
    result = runner.invoke(main, ["logs", "load", "--database-url", loaded, str(log)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{len(answers)} rows loaded, 0 already there, ")
    assert _rows(loaded) == _rows(live)  # every column of every row

    again = runner.invoke(main, ["logs", "load", "--database-url", live, str(log), str(log)])
    assert again.exit_code == 0, again.output
    assert again.output.startswith(f"0 rows loaded, {2 * len(answers)} already there, ")
    assert count_rows(live) == len(answers)


def test_the_database_stopped_mid_run_loses_nothing_and_doubles_nothing(
    stoppable_postgres: StoppablePostgres, tmp_path: Path
) -> None:
    url = stoppable_postgres.url
    table = usage_table()
    prepare_database(url, table)
    spool = tmp_path / "spool"
    args = ("--log-database-url", url, "--log-spool-dir", str(spool))
    with serving(table, tmp_path, *args) as s:
        before = traffic(s)
        assert wait_rows(url, len(before)) == len(before)

        stoppable_postgres.stop()
        during = traffic(s) + traffic(s)
        # routing did not notice: every request was answered as before
        assert [a.status for a in during] == [a.status for a in before] * 2
        deadline = time.monotonic() + 20
        while s.metric("routectl_request_logs_spooled_total") < len(during):
            assert time.monotonic() < deadline, "the rows were not spooled"
            time.sleep(0.2)
        assert s.metric("routectl_request_logs_database_up") == 0
        assert any(spool.glob("*.jsonl"))

        stoppable_postgres.start()
        after = traffic(s)
        total = len(before) + len(during) + len(after)
        assert wait_rows(url, total) == total
        assert not any(spool.glob("*.jsonl")), "the spool was loaded and emptied"
        _, text = s.get("/metrics")
        assert 'routectl_request_logs_dropped_total{reason="spool_full"} 0.0' in text.decode()
        assert s.metric("routectl_request_logs_written_total") == total
    rows = _rows(url)
    sent = [a.headers["x-request-id"] for a in before + during + after]
    assert len(set(sent)) == total
    assert sorted(rows) == sorted(sent)  # all of them, each once


def test_rows_of_a_database_that_is_down_at_start_arrive_when_it_starts(
    stoppable_postgres: StoppablePostgres, tmp_path: Path
) -> None:
    url = stoppable_postgres.url
    table = usage_table()
    prepare_database(url, table)
    stoppable_postgres.stop()
    spool = tmp_path / "spool"
    with serving(table, tmp_path, "--log-database-url", url, "--log-spool-dir", str(spool)) as s:
        answers = traffic(s)
    # the server stopped with every row spooled; the next server (any worker) loads them
    assert len(list(spool.glob("*.jsonl"))) == 1
    stoppable_postgres.start()
    with serving(table, tmp_path, "--log-database-url", url, "--log-spool-dir", str(spool)):
        assert wait_rows(url, len(answers)) == len(answers)
    assert sorted(_rows(url)) == sorted(a.headers["x-request-id"] for a in answers)
    assert not any(spool.glob("*.jsonl"))


def test_logs_prune_deletes_only_the_old_rows(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    url = new_database()
    prepare_database(url, usage_table())
    now = time.time()
    lines = [
        json.dumps(
            {
                "request_id": f"r{i}",
                "path": "/v1/chat/completions",
                "status": 200,
                "ts": now - age_days * 86400,
                "latency_ms": 5.0,
            }
        )
        for i, age_days in enumerate([0, 1, 10, 40, 400])
    ]
    log = tmp_path / "old.log"
    log.write_text("\n".join(["not json", *lines, '{"path": "/metrics"}']) + "\n")
    runner = CliRunner()
    result = runner.invoke(main, ["logs", "load", "--database-url", url, str(log)])
    assert (
        result.output
        == "5 rows loaded, 0 already there, 2 of 7 lines skipped (not a routed request's record)\n"
    )
    dry = runner.invoke(
        main, ["logs", "prune", "--database-url", url, "--older-than", "30d", "--dry-run"]
    )
    assert dry.output == "2 rows would be deleted (older than 30d)\n"
    assert count_rows(url) == 5
    result = runner.invoke(main, ["logs", "prune", "--database-url", url, "--older-than", "30d"])
    assert result.exit_code == 0 and result.output == "2 rows deleted (older than 30d)\n"
    assert sorted(_rows(url)) == ["r0", "r1", "r2"]
    bad = runner.invoke(main, ["logs", "prune", "--database-url", url, "--older-than", "soon"])
    assert bad.exit_code == 2 and "not an age like 30d" in bad.output


def test_every_column_of_the_spec_is_written() -> None:
    assert COLUMNS == (
        "id", "request_id", "created_at", "caller", "organization", "requested_model",
        "resolution", "collection_name", "routing_strategy", "selected_model", "connection",
        "attempts", "fallback_reason", "status", "error_code", "latency_ms", "ttfb_ms",
        "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd", "stream",
        "routing_table", "request_data", "response_data",
    )  # fmt: skip
