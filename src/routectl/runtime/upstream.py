"""Forwarding a planned request upstream: attempts with fallback, streaming, failure classification.

Retryable vs final: a status listed in the route's `fallback_on` (as a string), `timeout` or
`connect_error` moves on to the next candidate, but only before the first byte reached the client.
A 429 cools the deployment down for Retry-After seconds (or cooldown_s); `allowed_fails` other
failures (5xx, timeouts, connection errors) within 60 s cool it for cooldown_s. Any other
upstream error goes back to the client as it came.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from multidict import CIMultiDict

from routectl.runtime.anthropic import StreamTranslator, from_anthropic, to_anthropic
from routectl.runtime.echo import echo_completion, echo_events
from routectl.runtime.plan import Candidate, RoutePlan
from routectl.runtime.request import ChatRequest
from routectl.runtime.resolve import Route, RoutingError
from routectl.runtime.service import Loaded, Runtime

__all__ = ["forward", "routing_fields"]

_JSON = "application/json"


class _EventStream(web.StreamResponse):
    """A streamed answer whose headers leave with its first chunk: one write, one TCP segment
    less before the client sees the first token (aiohttp's own Response buffers them the same
    way; a plain StreamResponse sends them alone at prepare())."""

    _send_headers_immediately = False


class _Failure(Exception):
    """A retryable-or-not failure of one attempt, before anything reached the client."""

    def __init__(
        self,
        kind: str,
        status: int | None = None,
        body: bytes = b"",
        content_type: str = _JSON,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(kind)
        self.kind = kind  # "429", "500", ... or "timeout" / "connect_error"
        self.status = status
        self.body = body
        self.content_type = content_type
        self.retry_after = retry_after

    @property
    def reason(self) -> str:
        """The `_fallback_reason` text."""
        if self.kind == "429":
            return "rate_limited"
        return self.kind if self.status is None else f"upstream_{self.status}"


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError):
        return None


def routing_fields(
    route: Route, plan: RoutePlan, used: Candidate, first: Candidate, reason: str | None, sha: str
) -> dict[str, Any]:
    """The `_...` metadata fields of a routed response (SPEC's Responses table)."""
    fields: dict[str, Any] = {}
    if route.kind == "collection":
        fields["_collection_routed"] = True
        fields["_collection_name"] = route.collection.name if route.collection else ""
        fields["_routing_strategy"] = route.strategy
    fields["_selected_model"] = used.model_id
    if plan.info:
        fields.update(plan.info)
        if used is not first and "_model_alternatives" in plan.info:
            fields.update(_usage_of_used(plan.info, first.model_id, used.model_id))
    if used is not first:
        fields["_fallback_used"] = True
        fields["_fallback_reason"] = reason
        fields["_original_selection"] = first.model_id
    fields["_routing_table"] = sha
    return fields


def _usage_of_used(info: dict[str, Any], first: str, used: str) -> dict[str, Any]:
    """least_used's fields re-centred on the member that answered after a fallback: its usage at
    selection, and every other member (the original selection included) as an alternative."""
    everyone = [
        {"model": first, "usage": info["_usage_at_selection"]},
        *info["_model_alternatives"],
    ]
    at = next((i for i, alt in enumerate(everyone) if alt["model"] == used), None)
    if at is None:  # a member outside the strategy's pool (it lacked a wanted capability)
        return {}
    chosen = everyone.pop(at)
    return {"_usage_at_selection": chosen["usage"], "_model_alternatives": everyone}


def _chosen_headers(
    loaded: Loaded, rid: str, cand: Candidate, content_type: str = _JSON
) -> CIMultiDict[str]:
    headers = CIMultiDict(loaded.chosen_headers(cand.connection_id, cand.model_id))
    headers["x-request-id"] = rid
    if content_type != _JSON:
        headers["Content-Type"] = content_type
    return headers


# one ClientTimeout per distinct timeout, not one per request
_TIMEOUTS: dict[int, aiohttp.ClientTimeout] = {}


def _timeout(ms: int) -> aiohttp.ClientTimeout:
    found = _TIMEOUTS.get(ms)
    if found is None:
        seconds = ms / 1000
        found = aiohttp.ClientTimeout(total=None, sock_connect=seconds, sock_read=seconds)
        if len(_TIMEOUTS) < 1024:  # request-level timeouts come from clients: stay bounded
            _TIMEOUTS[ms] = found
    return found


def _note_usage(rec: dict[str, Any], cand: Candidate, usage: Any) -> None:
    if not isinstance(usage, dict):
        return
    p = usage.get("prompt_tokens")
    c = usage.get("completion_tokens")
    if isinstance(p, int) and isinstance(c, int):
        rec["prompt_tokens"] = p
        rec["completion_tokens"] = c
        info = cand.member.info
        if info is not None:
            rec["cost"] = round((p * info.input_per_mtok + c * info.output_per_mtok) / 1e6, 8)


class _Forwarder:
    """One request's walk down its candidates."""

    def __init__(
        self,
        request: web.Request,
        rt: Runtime,
        loaded: Loaded,
        plan: RoutePlan,
        chat: ChatRequest,
        rid: str,
        rec: dict[str, Any],
    ) -> None:
        self.request = request
        self.rt = rt
        self.loaded = loaded
        self.plan = plan
        self.route = plan.route
        self.chat = chat
        self.rid = rid
        self.rec = rec
        self.attempts: list[dict[str, Any]] = []

    async def run(self) -> web.StreamResponse:
        plan = self.plan
        first = plan.candidates[0]
        reason: str | None = None
        rec = self.rec
        for cand in plan.candidates:
            rec["selected_model"] = cand.model_id
            rec["connection"] = cand.connection_id
            rec["attempts"] = len(self.attempts) + 1
            try:
                if cand.connection.api == "echo":
                    return await self._echo(cand, first, reason)
                return await self._openai(cand, first, reason)
            except _Failure as failure:
                self._record(cand, failure)
                if failure.kind not in self.route.fallback_on:
                    return self._final(cand, failure)
                if reason is None:  # `_fallback_reason` says why the first choice was dropped
                    reason = failure.reason
                self.rt.metrics.fallbacks.labels(cand.model_id, reason).inc()
        rec["selected_model"] = rec["connection"] = None
        raise RoutingError(
            "upstream_error",
            502,
            f"Every candidate failed ({len(self.attempts)} attempts)",
            {"attempts": self.attempts},
        )

    # ---------------------------------------------------------------- health bookkeeping

    def _record(self, cand: Candidate, failure: _Failure) -> None:
        attempt: dict[str, Any] = {"model": cand.model_id, "connection": cand.connection_id}
        if failure.status is not None:
            attempt["status"] = failure.status
        else:
            attempt["error"] = failure.kind
        self.attempts.append(attempt)
        state = self.rt.state
        now = state.clock()
        if failure.kind == "429":
            state.record_rate_limit(cand.connection_id, cand.model_id, failure.retry_after, now)
            self.rt.metrics.cooldowns.labels(
                cand.connection_id, cand.model_id, "rate_limited"
            ).inc()
        elif (failure.status is None or failure.status >= 500) and state.record_failure(
            cand.connection_id, cand.model_id, now
        ) is not None:
            self.rt.metrics.cooldowns.labels(cand.connection_id, cand.model_id, "failures").inc()

    def _final(self, cand: Candidate, failure: _Failure) -> web.StreamResponse:
        if failure.status is None:  # a transport failure not in fallback_on
            raise RoutingError(
                "upstream_error",
                502,
                f"Upstream {failure.kind}",
                {"attempts": self.attempts},
            )
        ctype = failure.content_type.split(";")[0] or _JSON
        return web.Response(
            status=failure.status,
            body=failure.body,
            headers=_chosen_headers(self.loaded, self.rid, cand, ctype),
        )

    # ---------------------------------------------------------------- dialects

    async def _echo(
        self, cand: Candidate, first: Candidate, reason: str | None
    ) -> web.StreamResponse:
        chat = self.chat
        created = int(time.time())
        cid = "chatcmpl-" + self.rid
        tokens = chat.facts.prompt_tokens
        headers = _chosen_headers(self.loaded, self.rid, cand)
        if chat.stream:
            events, usage = echo_events(chat.body, cand.model_id, tokens, cid, created)
            out = _EventStream(headers=headers)
            out.content_type = "text/event-stream"
            out.headers["Cache-Control"] = "no-cache"
            await out.prepare(self.request)
            try:
                for event in events:
                    await out.write(event)
                await out.write_eof()
            except ConnectionResetError:
                self.rec["status"] = 499  # the client went away: end quietly
                return out
            _note_usage(self.rec, cand, usage)
            return out
        data = echo_completion(chat.body, cand.model_id, tokens, cid, created)
        data.update(routing_fields(self.route, self.plan, cand, first, reason, self.loaded.sha))
        _note_usage(self.rec, cand, data["usage"])
        return web.Response(body=orjson.dumps(data), headers=headers)

    async def _openai(
        self, cand: Candidate, first: Candidate, reason: str | None
    ) -> web.StreamResponse:
        session = self.rt.session
        assert session is not None, "the app's ClientSession is opened in cleanup_ctx"
        body = self.chat.body
        anthropic = cand.connection.api == "anthropic"
        if anthropic:
            info = cand.member.info
            limit = info.max_output_tokens if info is not None else None
            payload = orjson.dumps(to_anthropic(body, cand.upstream_model, limit))
        else:
            body["model"] = cand.upstream_model
            payload = orjson.dumps(body)
        started = time.perf_counter()
        try:
            resp = await session.post(
                self.loaded.urls[cand.connection_id],
                data=payload,
                headers=self.loaded.headers[cand.connection_id],
                timeout=_timeout(self.route.timeout_ms),
            )
        except TimeoutError:
            raise _Failure("timeout") from None
        except aiohttp.ClientError:
            raise _Failure("connect_error") from None
        try:
            if resp.status >= 400:
                try:
                    raw = await resp.read()
                except TimeoutError:
                    raise _Failure("timeout") from None
                except aiohttp.ClientError:
                    raw = b""
                raise _Failure(
                    str(resp.status),
                    resp.status,
                    raw,
                    resp.headers.get("Content-Type", _JSON),
                    _retry_after(resp.headers.get("Retry-After")),
                )
            if self.chat.stream:
                return await self._stream(cand, resp, started, anthropic)
            try:
                raw = await resp.read()
            except TimeoutError:
                raise _Failure("timeout") from None
            except aiohttp.ClientError:
                raise _Failure("connect_error") from None
            self._measured(cand, time.perf_counter() - started)
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError:
                data = None
            if not isinstance(data, dict):  # not JSON: pass it on untouched
                ctype = resp.headers.get("Content-Type", _JSON).split(";")[0] or _JSON
                return web.Response(
                    status=resp.status,
                    body=raw,
                    headers=_chosen_headers(self.loaded, self.rid, cand, ctype),
                )
            if anthropic:
                data = from_anthropic(data, cand.model_id, int(time.time()))
            data["model"] = cand.model_id
            data.update(routing_fields(self.route, self.plan, cand, first, reason, self.loaded.sha))
            _note_usage(self.rec, cand, data.get("usage"))
            # the prebuilt headers as they are; the envelope adds x-request-id (one header copy)
            return web.Response(
                status=resp.status,
                body=orjson.dumps(data),
                headers=self.loaded.chosen_headers(cand.connection_id, cand.model_id),
            )
        finally:
            resp.release()

    def _measured(self, cand: Candidate, seconds: float) -> None:
        self.rt.state.record_latency(cand.connection_id, cand.model_id, seconds)
        self.rt.metrics.observe_latency(cand.model_id, cand.connection_id, seconds)

    def _translator(self, cand: Candidate) -> StreamTranslator:
        options = self.chat.body.get("stream_options")
        usage = isinstance(options, dict) and options.get("include_usage") is True
        return StreamTranslator(cand.model_id, int(time.time()), usage)

    async def _translated_end(
        self, cand: Candidate, out: web.StreamResponse, translate: StreamTranslator
    ) -> None:
        tail = translate.close()
        if tail:
            await out.write(tail)
        if translate.error is not None:
            self.rec["stream_error"] = translate.error
        _note_usage(self.rec, cand, translate.usage)

    async def _stream(
        self, cand: Candidate, resp: aiohttp.ClientResponse, started: float, anthropic: bool
    ) -> web.StreamResponse:
        content = resp.content
        # wait for the first bytes before answering: until then a failure can still fall back
        try:
            chunk = await content.readany()
        except TimeoutError:
            raise _Failure("timeout") from None
        except aiohttp.ClientError:
            raise _Failure("connect_error") from None
        if not chunk:
            raise _Failure("connect_error")
        self._measured(cand, time.perf_counter() - started)
        translate = self._translator(cand) if anthropic else None
        ctype = (
            "text/event-stream"
            if translate is not None
            else resp.headers.get("Content-Type", "text/event-stream").split(";")[0]
        )
        headers = _chosen_headers(self.loaded, self.rid, cand, ctype or "text/event-stream")
        headers["Cache-Control"] = "no-cache"
        out = _EventStream(status=resp.status, headers=headers)
        await out.prepare(self.request)
        try:
            while chunk:
                if translate is not None:
                    chunk = translate.feed(chunk)  # each complete event goes on as it arrives
                if chunk:
                    await out.write(chunk)
                chunk = await content.readany()
            if translate is not None:
                await self._translated_end(cand, out, translate)
        except asyncio.CancelledError:
            self.rec["status"] = 499  # the client went away: closing cancels the upstream request
            resp.close()
            raise
        except ConnectionResetError:
            # the client went away mid-stream: cancel the upstream request and end quietly (a
            # raise would have aiohttp log a traceback for every disconnecting client)
            self.rec["status"] = 499
            resp.close()
            return out
        except (TimeoutError, aiohttp.ClientError) as exc:
            # past the first byte there is no fallback: tell the client in-band and end the stream
            failure = _Failure("timeout" if isinstance(exc, TimeoutError) else "connect_error")
            self._record(cand, failure)
            error = {
                "error": {"code": "upstream_error", "message": f"upstream stream {failure.kind}"}
            }
            self.rec["stream_error"] = failure.kind
            try:
                await out.write(b"data: " + orjson.dumps(error) + b"\n\n")
            except ConnectionResetError:
                return out
        try:
            await out.write_eof()
        except ConnectionResetError:
            self.rec["status"] = 499
        return out


def forward(
    request: web.Request,
    rt: Runtime,
    loaded: Loaded,
    plan: RoutePlan,
    chat: ChatRequest,
    rid: str,
    rec: dict[str, Any],
) -> Coroutine[Any, Any, web.StreamResponse]:
    """Try the plan's candidates in order and answer the client (RoutingError when all fail).

    Returns the walk's coroutine itself rather than awaiting it: one frame less for the event
    loop to step through each time the upstream call resumes."""
    return _Forwarder(request, rt, loaded, plan, chat, rid, rec).run()
