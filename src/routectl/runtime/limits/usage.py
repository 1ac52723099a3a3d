"""The limits' side of a streamed OpenAI chat answer's usage: ask the upstream for it.

Token and spend limits are settled from the upstream's usage. An OpenAI-compatible upstream
reports a stream's usage only when asked (`stream_options.include_usage`): for a limited caller
the gateway asks for it, and the client format's stream reader (ingress/openai_usage.py's
`UsageWatch`, in the model stamp of a relayed stream) reads it and, when the client did not ask,
takes the usage-only chunk out again.
"""

from __future__ import annotations

from routectl.runtime.request import Call

__all__ = ["watch_usage"]


def watch_usage(call: Call) -> Call:
    """The call of an OpenAI chat stream with its usage read on the way (asked of the upstream
    when the client did not ask for it); other calls as they are."""
    if not call.stream or call.format.name != "openai.chat":
        return call
    # the call is changed in place, as its body is (dataclasses.replace of a Call costs ~5 µs;
    # the handler goes on with the watched call only)
    if call.include_usage:
        call.usage_watch = False  # read, and passed on as it came
        return call
    body = call.body
    options = body.get("stream_options")
    body["stream_options"] = {
        **(options if isinstance(options, dict) else {}),
        "include_usage": True,
    }
    call.usage_watch = True  # read, and its chunk taken out
    call.raw = None
    return call
