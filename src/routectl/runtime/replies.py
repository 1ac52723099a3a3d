"""What an upstream reply may be before the gateway trusts it (issue 13): never a redirect, never
larger than `--max-response-bytes` (a whole body, or one event of a stream), and a refusal of the
connection's credentials is the connection's problem, not the caller's. Pure helpers the upstream
walk calls where it reads a reply."""

from __future__ import annotations

from routectl.runtime.dialects.base import Reply

__all__ = [
    "AUTH_STATUSES",
    "TooLarge",
    "event_bound",
    "is_redirect",
    "read_limited",
]

# An upstream that answers these refused the connection's key (OpenAI: 401 invalid key, 403 a
# key without access to the project or model; Anthropic: 401 authentication_error, 403
# permission_error). Its body may echo part of the key: it never reaches the client.
AUTH_STATUSES = frozenset((401, 403))


class TooLarge(Exception):
    """A reply (or one event of a stream) past the response limit."""


def is_redirect(status: int) -> bool:
    """A 3xx: the gateway never follows one (it would re-send the key and the prompt to another
    origin) and never passes one on as the model's answer."""
    return 300 <= status < 400


async def read_limited(reply: Reply, limit: int) -> bytes:
    """The whole body, or TooLarge as soon as it passes `limit` bytes (a declared
    Content-Length over it is refused before anything is read)."""
    # as parsed (the lean client's headers are not decoded into a multidict for this)
    length = reply.content_length
    if length is not None and length > limit:
        raise TooLarge
    content = reply.content
    parts: list[bytes] = []
    size = 0
    while True:
        chunk = await content.readany()
        if not chunk:
            return b"".join(parts)
        size += len(chunk)
        if size > limit:
            raise TooLarge
        parts.append(chunk)


def event_bound(pending: int, chunk: bytes, limit: int) -> int:
    """Bounds each server-sent event of a relayed stream: the bytes since the last event end
    (a blank line) may not pass `limit`. Given the bytes of the unfinished event before `chunk`,
    those after it; TooLarge when an event grows past the limit. One rfind per chunk; events are
    never split or copied. (A function over the count, not an object: no constructor frame per
    stream.)"""
    lf = chunk.rfind(b"\n\n")
    # a CRLF end later than the last LF end lies after it: only that tail is searched (an
    # rfind of four bytes that are not there scans the whole chunk slowly)
    end = max(lf, chunk.rfind(b"\r\n\r\n", lf + 1))
    if end < 0:
        pending += len(chunk)
    else:
        # the event before `end` closed inside this chunk: it may still have been too big
        if pending + end > limit:
            raise TooLarge
        pending = len(chunk) - end - 2
    if pending > limit:
        raise TooLarge
    return pending
