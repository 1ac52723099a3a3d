"""routectl's per-request stages in process, each between callgrind's zero and dump (see
bench/profile_stages.py, which runs this under valgrind). Prints the stage names in dump order.

Usage (under valgrind only): stage_costs.py TABLE LIBCGSHIM K
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from routectl.runtime.accesslog import AccessLog
from routectl.runtime.auth import authenticate
from routectl.runtime.dialects import Attempt
from routectl.runtime.fields import routing_fields
from routectl.runtime.ingress.openai_chat import OPENAI_CHAT, parse_chat_request
from routectl.runtime.metrics import Metrics
from routectl.runtime.plan import plan_request
from routectl.runtime.resolve import route_for
from routectl.runtime.served import Runtime
from routectl.runtime.state import RoutingState
from routectl.runtime.translatable import translatable
from routectl.table import load_table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.targets import BENCH_KEY, request_body
from ladder_servers import ANSWER


async def main(table_path: str, shim_path: str, k: int) -> list[str]:
    shim = ctypes.CDLL(shim_path)
    devnull = os.open(os.devnull, os.O_WRONLY)
    rt = Runtime(
        load_table(table_path),
        state=RoutingState(),
        metrics=Metrics(),
        access_log=AccessLog(devnull),
    )
    served = rt.served
    body = request_body("fake/gpt-4o-mini", False)
    caller = authenticate(served.index, BENCH_KEY)
    assert caller is not None
    call = parse_chat_request(body)
    route = route_for(served.index, caller, call.model).route
    plan = plan_request(served.index, rt.state, caller, route, call.facts)
    cand = plan.candidates[0]
    dialect = served.dialects[cand.connection_id]

    def auth() -> None:
        authenticate(served.index, BENCH_KEY)

    def parse() -> None:
        parse_chat_request(body)

    def route_and_plan() -> None:
        r = route_for(served.index, caller, call.model, call.load_balancer, call.overrides).route
        p = plan_request(served.index, rt.state, caller, r, call.facts)
        translatable(p, call, served)

    def encode_request() -> None:
        attempt = Attempt(
            call.body,
            True,
            False,
            cand.model_id,
            cand.upstream_model,
            cand.member.info,
            "rid",
            call.facts.prompt_tokens,
            call.raw,
            call.headers,
        )
        dialect.encode(attempt)  # type: ignore[attr-defined]

    def reencode_answer() -> None:
        data = orjson.loads(ANSWER)
        fields = routing_fields(route, plan, cand, cand, None, served.sha)
        OPENAI_CHAT.stamp(data, cand.model_id, fields)
        orjson.dumps(data)

    def response_object() -> None:
        resp = web.Response(
            status=200,
            body=ANSWER,
            headers=served.chosen_headers(cand.connection_id, cand.model_id),
        )
        resp.headers["x-routectl-table"] = served.sha
        resp.headers["x-request-id"] = "0123456789abcdef01234567"

    def access_log() -> None:
        rec: dict[str, Any] = {
            "request_id": "0123456789abcdef01234567",
            "method": "POST",
            "path": "/v1/chat/completions",
            "caller": "bench-user",
            "requested_model": "fake/gpt-4o-mini",
            "selected_model": cand.model_id,
            "connection": cand.connection_id,
            "attempts": 1,
            "prompt_tokens": 9,
            "completion_tokens": 6,
            "cost": 0.0000123,
            "status": 200,
            "latency_ms": 0.512,
            "table": served.sha,
            "ts": 1764576000.123,
        }
        rt.access_log.write(rec)

    def metrics() -> None:
        rt.metrics.count_request("/v1/chat/completions", cand.model_id, 200)
        rt.metrics.observe_latency(cand.model_id, cand.connection_id, 0.0004)
        rt.state.record_latency(cand.connection_id, cand.model_id, 0.0004)

    stages: list[tuple[str, Callable[[], None]]] = [
        ("authenticate", auth),
        ("parse_the_request_body", parse),
        ("resolve_+_plan_+_translatable", route_and_plan),
        ("encode_the_upstream_request", encode_request),
        ("decode_+_stamp_+_re-encode_the_answer", reencode_answer),
        ("aiohttp_Response_+_envelope_headers", response_object),
        ("access-log_line_(batched_write)", access_log),
        ("metrics_+_latency_state", metrics),
    ]
    names = []
    for name, fn in stages:
        for _ in range(50):  # warm caches
            fn()
        shim.cg_zero()
        for _ in range(k):
            fn()
        shim.cg_dump(name.encode())
        names.append(name)
    rt.access_log.close()
    return names


if __name__ == "__main__":
    table, lib, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print(" ".join(asyncio.run(main(table, lib, count))))
