"""The seeds' request_logs queries (MySQL's HOUR() written EXTRACT(HOUR FROM ...), nothing else
changed) and the usage queries of docs/database.md, on a PostgreSQL fed by a real `routectl serve`:
the figures they return are the figures of the requests that were sent."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from .test_db_queries import QUERIES, _doc_queries
from .usage_serve import PRICES, Answer, prepare_database, serving, traffic, usage_table, wait_rows

pytestmark = [pytest.mark.db, pytest.mark.e2e, pytest.mark.slow]


@dataclass
class Sent:
    """What was sent, request by request: the answer and the server's record of it."""

    answers: list[Answer]
    records: dict[str, dict[str, Any]]  # request id -> access-log record


def _d(value: float | Decimal, places: str) -> Decimal:
    return Decimal(value).quantize(Decimal(places), rounding=ROUND_HALF_UP)


def _num(x: float) -> Decimal:
    return Decimal(repr(x))  # the JSON text the row holds, exactly


def _usage(a: Answer) -> dict[str, int]:
    return a.usage if a.stream else a.body["usage"]


def _cost(a: Answer) -> float:
    i, o = PRICES[a.headers["x-routectl-selected-model"]]
    u = _usage(a)
    return round((u["prompt_tokens"] * i + u["completion_tokens"] * o) / 1e6, 8)


@pytest.fixture(scope="module")
def fed(
    pg_server: tuple[str, Path | None], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Sent]]:
    """A database that one `serve` run filled with the traffic of usage_serve.traffic."""
    # new_database is function-scoped: a module-scoped database of this module's own
    import uuid

    from psycopg.conninfo import make_conninfo

    admin = pg_server[0]
    name = f"routectl_usage_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    url = make_conninfo(admin, dbname=name)
    try:
        table = usage_table()
        prepare_database(url, table)
        with serving(table, tmp_path_factory.mktemp("serve"), "--log-database-url", url) as s:
            answers = traffic(s)
            assert wait_rows(url, len(answers)) == len(answers)
            records = {r["request_id"]: r for r in s.records()}
        yield url, Sent(answers, records)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def _run(url: str, sql: str | bytes) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'UTC'")  # DATE() and CURRENT_DATE in one zone
        return conn.execute(sql if isinstance(sql, bytes) else sql.encode()).fetchall()


def _query(name: str) -> bytes:
    return (QUERIES / f"{name}.sql").read_bytes()


def _ok(sent: Sent, model: str) -> list[Answer]:
    return [
        a
        for a in sent.answers
        if a.status == 200 and sent.records[a.headers["x-request-id"]]["requested_model"] == model
    ]


def _latency(sent: Sent, answers: list[Answer]) -> list[float]:
    return [sent.records[a.headers["x-request-id"]]["latency_ms"] for a in answers]


def _avg(values: list[float], places: str) -> Decimal:
    return _d(sum(_num(v) for v in values) / len(values), places)


def test_flash_request_distribution(fed: tuple[str, Sent]) -> None:
    url, sent = fed
    flash = _ok(sent, "collection/flash2.5")
    assert len(flash) == 15
    by_model: dict[str, list[Answer]] = defaultdict(list)
    for a in flash:
        by_model[a.headers["x-routectl-selected-model"]].append(a)
    rows = _run(url, _query("flash2.5_request_distribution"))
    assert sorted(rows) == sorted(
        (model, len(got), _avg(_latency(sent, got), "0.01")) for model, got in by_model.items()
    )
    assert [r[1] for r in rows] == sorted((r[1] for r in rows), reverse=True)
    assert {r[0]: r[1] for r in rows} == {"echo/fast-a": 8, "echo/fast-b": 7}  # round robin


def test_flash_collection_performance(fed: tuple[str, Sent]) -> None:
    url, sent = fed
    flash = _ok(sent, "collection/flash2.5")
    by_hour: dict[int, list[Answer]] = defaultdict(list)
    for a in flash:
        r = sent.records[a.headers["x-request-id"]]
        arrived = datetime.fromtimestamp(r["ts"] - r["latency_ms"] / 1000, UTC)
        by_hour[arrived.hour].append(a)
    rows = _run(url, _query("flash2.5_collection_performance"))
    expected = [
        (
            Decimal(hour),
            len(got),
            _avg(_latency(sent, got), "0.01"),
            sum(_usage(a)["total_tokens"] for a in got),
        )
        for hour, got in sorted(by_hour.items(), reverse=True)
    ]
    assert rows == expected
    assert sum(r[3] for r in rows) > 0


def test_org_request_distribution_cost_and_balance(fed: tuple[str, Sent]) -> None:
    url, sent = fed
    org = _ok(sent, "collection/org-shared-models")
    assert len(org) == 6
    by_model: dict[str, list[Answer]] = defaultdict(list)
    for a in org:
        by_model[a.headers["x-routectl-selected-model"]].append(a)
    assert {m: len(v) for m, v in by_model.items()} == {
        "echo/fast-a": 2,
        "echo/fast-b": 2,
        "echo/big": 2,
    }  # least_used: 1-6 go A, B, C, A, B, C

    distribution = _run(url, _query("org-shared-models_request_distribution"))
    assert sorted(distribution) == sorted(
        (m, len(v), _avg(_latency(sent, v), "0.01"), _d(Decimal(100 * len(v)) / 6, "0.01"))
        for m, v in by_model.items()
    )

    costs = _run(url, _query("org-shared-models_cost_analysis"))
    expected = {
        m: (
            len(v),
            sum(_usage(a)["total_tokens"] for a in v),
            _d(sum(_num(_cost(a)) for a in v), "0.01"),
            _d(sum(_num(_cost(a)) for a in v) / len(v), "0.0001"),
        )
        for m, v in by_model.items()
    }
    assert {r[0]: r[1:] for r in costs} == expected
    assert [r[3] for r in costs] == sorted((r[3] for r in costs), reverse=True)
    assert costs[0][0] == "echo/fast-a"  # the dearest model: 300/600 USD per million tokens
    assert costs[0][3] > 0

    ((total, ideal, stddev, top, bottom),) = _run(
        url, _query("org-shared-models_load_balance_efficiency")
    )
    assert (total, ideal, top, bottom) == (3, Decimal("33.33"), Decimal("33.33"), Decimal("33.33"))
    assert stddev == Decimal("0.00")


def test_members_with_usage(fed: tuple[str, Sent]) -> None:
    url, sent = fed
    rows = _run(url, _query("org-shared-models_members_with_usage"))
    # the seed's query counts every request a model answered (in any collection) in 24 h
    answered = Counter(
        a.headers["x-routectl-selected-model"] for a in sent.answers if a.status == 200
    )
    assert {r[1]: r[7] for r in rows} == {
        m: answered[m] for m in ("echo/fast-a", "echo/fast-b", "echo/big")
    }
    assert [r[7] for r in rows] == sorted((r[7] for r in rows), reverse=True)


def test_usage_per_organization_and_caller(fed: tuple[str, Sent]) -> None:
    url, sent = fed
    per_caller, _ = _doc_queries("Usage queries")
    rows = _run(url, per_caller)
    figures: dict[tuple[str, str], list[Any]] = defaultdict(lambda: [0, 0, 0, Decimal(0)])
    for a in sent.answers:
        r = sent.records[a.headers["x-request-id"]]
        if r.get("caller") is None:
            continue
        f = figures[(r.get("organization") or "(none)", r["caller"])]
        f[0] += 1
        f[1] += a.status >= 400
        if a.status == 200:
            f[2] += _usage(a)["total_tokens"]
            f[3] += _num(_cost(a))
    assert {(r[0], r[1]): list(r[2:]) for r in rows} == {
        k: [n, e, t, _d(c, "0.0001")] for k, (n, e, t, c) in figures.items()
    }
    assert {(r[0], r[1]) for r in rows} == {
        ("acme-corp", "alice"),
        ("acme-corp", "bob"),
        ("(none)", "carol"),
    }


def test_usage_per_collection(fed: tuple[str, Sent]) -> None:
    url, sent = fed
    _, per_collection = _doc_queries("Usage queries")
    rows = {r[0]: r[1:] for r in _run(url, per_collection)}
    assert set(rows) == {"flash2.5", "org-shared-models", "split", "steady"}
    assert rows["steady"][:3] == ("priority", 2, 2)  # both fell back
    assert rows["split"][:3] == ("weighted", 8, 0)
    assert rows["flash2.5"][:2] == ("round_robin", 15)
    split_models = Counter(
        a.headers["x-routectl-selected-model"] for a in _ok(sent, "collection/split")
    )
    assert split_models == {"echo/fast-a": 6, "echo/fast-b": 2}  # 0.75 / 0.25, exactly
