"""Forwarding a planned request upstream: the walk over candidates, failure policy, the answer.

Retryable vs final: a status listed in the route's `fallback_on` (as a string), `timeout` or
`connect_error` moves on to the next candidate, but only before the first byte reached the client.
Health is booked by `RoutingState.book_failure` (429: cooldown for Retry-After; `allowed_fails`
5xx or transport failures within 60 s: cooldown_s). Any other upstream error goes back to the
client as it came. How to talk to each upstream is its dialect's business (`runtime/dialects/`);
how to answer the client is its format's (`runtime/ingress/`).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Coroutine
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from multidict import CIMultiDict

from routectl.runtime.answer import Answer, EventStream
from routectl.runtime.dialects import Attempt, ChunkTranslator, Reply
from routectl.runtime.dialects.stream import Chain
from routectl.runtime.errors import RoutingError
from routectl.runtime.keys import ANSWER_HEADERS, STARTED
from routectl.runtime.plan import Candidate, RoutePlan
from routectl.runtime.refusals import exhausted
from routectl.runtime.replies import (
    AUTH_STATUSES,
    TooLarge,
    event_bound,
    read_limited,
)
from routectl.runtime.request import Call
from routectl.runtime.retry import SHOULD_RETRY, status_retries
from routectl.runtime.served import Runtime, ServedTable

__all__ = ["forward"]

_JSON = "application/json"
_SSE = "text/event-stream"


class _Failure(Exception):
    """A retryable-or-not failure of one attempt, before anything reached the client."""

    def __init__(
        self,
        kind: str,
        status: int | None = None,
        body: bytes = b"",
        content_type: str = _JSON,
        retry_after: float | None = None,
        native: bool = True,
        error: str | None = None,
    ) -> None:
        super().__init__(kind)
        self.kind = kind  # "429", "500", ... or "timeout" / "connect_error"
        self.status = status
        self.body = body
        self.content_type = content_type
        self.retry_after = retry_after
        self.native = native  # the body is in the client's format (else the format translates it)
        # a reply the gateway refuses to pass on (booked as a 502 with no status): its name
        self.error = error

    @property
    def reason(self) -> str:
        """The `_fallback_reason` text."""
        if self.error is not None:
            return self.error
        if self.kind == "429":
            return "rate_limited"
        return self.kind if self.status is None else f"upstream_{self.status}"


def _bad_reply(error: str) -> _Failure:
    """A reply that is no answer (a redirect, too large, not JSON): a bad gateway, booked and
    retried as an upstream 502 is, without its body."""
    return _Failure("502", error=error)


class _AuthFailure(_Failure):
    """The upstream refused the connection's credentials (401/403)."""


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta or HTTP date); None when unusable (the state
    caps what it gets at max_cooldown_s)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, OverflowError, IndexError):
            return None
    return seconds if math.isfinite(seconds) else None


def _chosen_headers(
    served: ServedTable,
    rid: str,
    cand: Candidate,
    content_type: str = _JSON,
    id_header: str | None = None,
) -> CIMultiDict[str]:
    # the cached headers read inline; chosen_headers builds them the first time
    chosen = served.answer_headers.get((cand.connection_id, cand.model_id))
    if chosen is None:
        chosen = served.chosen_headers(cand.connection_id, cand.model_id)
    headers = CIMultiDict(chosen)
    headers["x-request-id"] = rid
    if id_header is not None:  # the format's own name for it (Anthropic's request-id)
        headers[id_header] = rid
    if content_type != _JSON:
        headers["Content-Type"] = content_type
    return headers


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
        served: ServedTable,
        plan: RoutePlan,
        call: Call,
        rid: str,
        rec: dict[str, Any],
    ) -> None:
        self.request = request
        self.rt = rt
        self.served = served
        self.plan = plan
        self.route = plan.route
        self.call = call
        self.rid = rid
        self.rec = rec
        self.attempts: list[dict[str, Any]] = []

    async def run(self) -> web.StreamResponse:
        plan = self.plan
        first = plan.candidates[0]
        reason: str | None = None
        rec = self.rec
        auth_failures = 0
        for cand in plan.candidates:
            rec["selected_model"] = cand.model_id
            rec["connection"] = cand.connection_id
            rec["attempts"] = len(self.attempts) + 1
            try:
                return await self._attempt(cand, first, reason)
            except _AuthFailure as failure:
                # the connection's key, not the request: it goes unavailable and the next
                # candidate (another connection) may serve
                self._book(cand, failure)
                self.rt.state.mark_unavailable(
                    cand.connection_id,
                    f"credentials refused by the upstream (HTTP {failure.status})",
                )
                auth_failures += 1
                if reason is None:
                    reason = rec["fallback_reason"] = "upstream_auth_error"
                continue
            except _Failure as failure:
                self._book(cand, failure)
                if failure.kind not in self.route.fallback_on:
                    return self._final(cand, failure)
                if reason is None:  # `_fallback_reason` says why the first choice was dropped
                    reason = rec["fallback_reason"] = failure.reason
                self.rt.metrics.fallbacks.labels(cand.model_id, reason).inc()
        rec["selected_model"] = rec["connection"] = None
        raise exhausted(self.attempts, self.rt.state, auth_failures)

    # ---------------------------------------------------------------- health bookkeeping

    def _measured(self, cand: Candidate, seconds: float) -> None:
        """An answer's latency (to its first byte or whole body): the latency-aware strategies'
        state and the metrics' histogram."""
        self.rt.state.record_latency(cand.connection_id, cand.model_id, seconds)
        self.rt.metrics.observe_latency(cand.model_id, cand.connection_id, seconds)

    def _book(self, cand: Candidate, failure: _Failure) -> None:
        attempt: dict[str, Any] = {"model": cand.model_id, "connection": cand.connection_id}
        if failure.status is not None:
            attempt["status"] = failure.status
        else:
            attempt["error"] = failure.error or failure.kind
        if not self.attempts:  # the record lists the failed attempts (request_logs.attempts)
            self.rec["failed_attempts"] = self.attempts
        self.attempts.append(attempt)
        state = self.rt.state
        cooldown = state.book_failure(
            cand.connection_id, cand.model_id, failure.status, failure.retry_after, state.clock()
        )
        if cooldown is not None:
            self.rt.metrics.cooldowns.labels(
                cand.connection_id, cand.model_id, cooldown.reason
            ).inc()

    def _final(self, cand: Candidate, failure: _Failure) -> web.StreamResponse:
        if failure.status is None:  # a transport failure not in fallback_on
            raise RoutingError(
                "upstream_error",
                502,
                f"Upstream {failure.error or failure.kind}",
                {"attempts": self.attempts},
            )
        ctype = failure.content_type.split(";")[0] or _JSON
        body = failure.body
        if not failure.native:  # an upstream of another format: its error in the client's shape
            translated = self.call.format.foreign_error(failure.status, body)
            if translated is not body:
                body, ctype = translated, _JSON
        headers = _chosen_headers(self.served, self.rid, cand, ctype)
        headers[SHOULD_RETRY] = "true" if status_retries(failure.status) else "false"
        return web.Response(status=failure.status, body=body, headers=headers)

    # ---------------------------------------------------------------- one attempt

    async def _attempt(
        self, cand: Candidate, first: Candidate, reason: str | None
    ) -> web.StreamResponse:
        session = self.rt.session
        assert session is not None, "the app's ClientSession is opened in cleanup_ctx"
        call = self.call
        served = self.served
        dialect = served.dialects[cand.connection_id]
        native = served.native.get((cand.connection_id, cand.model_id, call.format.name))
        if native is None:  # the cache read inline; filled on a miss
            native = served.native_for(cand, call.format.name)
        attempt = Attempt(
            call.body if native else call.chat_body(),
            native,
            call.stream,
            cand.model_id,
            cand.upstream_model,
            cand.member.info,
            self.rid,
            call.facts.prompt_tokens,
            call.raw if native else None,
            call.headers if native else None,
            call.format.name,
        )
        timeout = served.timeouts.get(self.route.timeout_ms)  # cached: read inline
        if timeout is None:
            timeout = served.timeout(self.route.timeout_ms)
        started = time.perf_counter()
        try:
            reply = await dialect.send(
                session, served.endpoints[cand.connection_id], attempt, timeout
            )
        except TimeoutError:
            raise _Failure("timeout") from None
        except aiohttp.ClientError:
            raise _Failure("connect_error") from None
        limit = self.rt.max_response_bytes
        try:
            if 300 <= reply.status < 400:  # is_redirect(reply.status), without its frame
                raise _bad_reply("upstream_redirect")
            if reply.status in AUTH_STATUSES:
                raise _AuthFailure(str(reply.status), reply.status)  # its body is never read
            if reply.status >= 400:
                try:
                    raw = await read_limited(reply, limit)
                except TimeoutError:
                    raise _Failure("timeout") from None
                except TooLarge:
                    raise _bad_reply("response_too_large") from None
                except aiohttp.ClientError:
                    raw = b""
                raise _Failure(
                    str(reply.status),
                    reply.status,
                    raw,
                    reply.headers.get("Content-Type", _JSON),
                    _retry_after(reply.headers.get("Retry-After")),
                    native,
                )
            if call.stream:
                # a streamed answer must be server-sent events: a 200 of another type (a proxy's
                # HTML page, a JSON answer that ignored `stream`) is no answer to relay as one
                if reply.content_type != _SSE:  # the parsed media type: no header decoding
                    raise _bad_reply("invalid_stream")
                if native:
                    translate = call.format.relay(call, cand.model_id)
                else:
                    upstream = dialect.translator(attempt, call.include_usage)
                    translate = self._translator(cand, upstream)
                return await self._stream(cand, reply, started, translate, limit)
            try:
                raw = await read_limited(reply, limit)
            except TimeoutError:
                raise _Failure("timeout") from None
            except TooLarge:
                raise _bad_reply("response_too_large") from None
            except aiohttp.ClientError:
                raise _Failure("connect_error") from None
            self._measured(cand, time.perf_counter() - started)
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError:
                data = None
            if not isinstance(data, dict):  # a "success" that is no answer (an HTML page...)
                raise _bad_reply("invalid_json")
            fmt = call.format
            if not native:
                data = fmt.answer(dialect.decode(data, attempt))
            fmt.stamp(
                data,
                cand.model_id,
                served.routing_fields(self.route, self.plan, cand, first, reason),
            )
            _note_usage(self.rec, cand, fmt.usage(data))
            # the prebuilt headers as they are; the envelope adds x-request-id (one header copy)
            return Answer(
                reply.status,
                orjson.dumps(data),
                CIMultiDict(
                    served.answer_headers.get((cand.connection_id, cand.model_id))
                    or served.chosen_headers(cand.connection_id, cand.model_id)
                ),
            )
        finally:
            reply.release()

    def _translator(
        self, cand: Candidate, upstream: ChunkTranslator | None
    ) -> ChunkTranslator | None:
        """The stream translation when the upstream does not speak the client's format."""
        client = self.call.format.stream(self.call, cand.model_id)
        if upstream is None or client is None:
            return upstream or client
        return Chain(upstream, client)

    async def _stream(
        self,
        cand: Candidate,
        reply: Reply,
        started: float,
        translate: ChunkTranslator | None,
        limit: int,
    ) -> web.StreamResponse:
        content = reply.content
        # wait for the first bytes before answering: until then a failure can still fall back
        try:
            chunk = await content.readany()
            pending = event_bound(0, chunk, limit)  # the unfinished event's bytes
        except TimeoutError:
            raise _Failure("timeout") from None
        except TooLarge:
            raise _bad_reply("response_too_large") from None
        except aiohttp.ClientError:
            raise _Failure("connect_error") from None
        if not chunk:
            raise _Failure("connect_error")
        self._measured(cand, time.perf_counter() - started)
        # text/event-stream: what the caller checked the upstream answered (and a translation
        # writes)
        headers = _chosen_headers(self.served, self.rid, cand, _SSE, self.call.format.id_header)
        headers["Cache-Control"] = "no-cache"
        extra = self.request._state.get(ANSWER_HEADERS)
        if extra:
            headers.update(extra)
        out = EventStream(reply.status, headers)
        await out.prepare(self.request)
        # the client's time to first byte: the head leaves with the first chunk, written next
        self.rec["ttfb_ms"] = round((time.perf_counter() - self.request._state[STARTED]) * 1000, 3)
        last = b""  # what leaves with the end of the answer
        try:
            while chunk:
                if translate is not None:
                    chunk = translate.feed(chunk)  # each complete event goes on as it arrives
                if content.at_eof():
                    # the upstream's body is whole: its last bytes and the end of the chunked
                    # answer go in one write (for a short answer read at once, with the head)
                    last = chunk
                    break
                if chunk:
                    await out.write(chunk)
                chunk = await content.readany()
                pending = event_bound(pending, chunk, limit)
            if translate is not None:
                # what the translation sends when the body ended; its error and usage recorded
                last += translate.close()
                if translate.error is not None:
                    self.rec["stream_error"] = translate.error
                _note_usage(self.rec, cand, translate.usage)
        except asyncio.CancelledError:
            self.rec["status"] = 499  # the client went away: closing cancels the upstream request
            reply.close()
            raise
        except ConnectionResetError:
            # the client went away mid-stream: cancel the upstream request and end quietly (a
            # raise would have aiohttp log a traceback for every disconnecting client)
            self.rec["status"] = 499
            reply.close()
            return out
        except (TimeoutError, aiohttp.ClientError, TooLarge) as exc:
            # past the first byte there is no fallback: tell the client in-band and end the stream
            if isinstance(exc, TooLarge):
                failure = _bad_reply("response_too_large")
                reply.close()  # the rest of the stream is not wanted
            else:
                failure = _Failure("timeout" if isinstance(exc, TimeoutError) else "connect_error")
            self._book(cand, failure)
            what = failure.error or failure.kind
            error = RoutingError("upstream_error", 502, f"upstream stream {what}")
            self.rec["stream_error"] = what
            try:
                await out.write(self.call.format.stream_error(error))
            except ConnectionResetError:
                return out
        try:
            await out.write_eof(last)
        except ConnectionResetError:
            self.rec["status"] = 499
        return out


def forward(
    request: web.Request,
    rt: Runtime,
    served: ServedTable,
    plan: RoutePlan,
    call: Call,
    rid: str,
    rec: dict[str, Any],
) -> Coroutine[Any, Any, web.StreamResponse]:
    """Try the plan's candidates in order and answer the client (RoutingError when all fail).

    Returns the walk's coroutine itself rather than awaiting it: one frame less for the event
    loop to step through each time the upstream call resumes."""
    return _Forwarder(request, rt, served, plan, call, rid, rec).run()
