"""Phase-2 prototype of issue 16: stamping an answer by splicing its bytes vs decode + re-encode.

Times (per answer, the best of 7 rounds: a CPU-bound loop, so the best round is the least
disturbed by other load) of: today's path (orjson.loads, stamp the routed model and `_...`
fields, orjson.dumps), `runtime/splice.splice_answer` alone (bytes trusted as JSON), and a loads
(validity and usage, which the access log needs) followed by the splice. Answers of 0.3, 4, 64
and 1,024 KB. Correctness is tests/runtime/test_splice.py's (a corpus of upstream answers).
Usage: python bench/bench_splice.py
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from routectl.runtime.ingress.openai_chat import OPENAI_CHAT
from routectl.runtime.splice import splice_answer

MODEL = "fake/gpt-4o-mini"
FIELDS: dict[str, Any] = {
    "_selected_model": MODEL,
    "_routing_table": "sha256:" + "ab" * 32,
}


def answer(size: int) -> bytes:
    text = "Hello from the fake upstream. " * max(1, size // 30)
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-mini",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15},
    }
    return orjson.dumps(body)


def best_us(fn: Callable[[], object], n: int) -> float:
    best = float("inf")
    for _ in range(7):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter_ns() - t0) / n / 1000)
    return best


def main() -> None:
    print("| answer | today: loads + stamp + dumps µs | splice µs | loads + splice µs |")
    print("|--:|--:|--:|--:|")
    for kb in (0.3, 4, 64, 1024):
        raw = answer(int(kb * 1024))
        n = max(5, int(20000 / max(1, kb)))

        def today(raw: bytes = raw) -> bytes:
            data = orjson.loads(raw)
            OPENAI_CHAT.stamp(data, MODEL, dict(FIELDS))
            return orjson.dumps(data)

        def spliced(raw: bytes = raw) -> bytes | None:
            return splice_answer(raw, MODEL, dict(FIELDS))

        def checked(raw: bytes = raw) -> bytes | None:
            orjson.loads(raw)
            return splice_answer(raw, MODEL, dict(FIELDS))

        assert orjson.loads(today()) == orjson.loads(spliced() or b"null")
        print(
            f"| {len(raw) / 1024:,.1f} KB | {best_us(today, n):,.2f} | {best_us(spliced, n):,.2f} "
            f"| {best_us(checked, n):,.2f} |"
        )


if __name__ == "__main__":
    main()
