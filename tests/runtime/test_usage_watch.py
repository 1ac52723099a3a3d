"""Reading a streamed OpenAI answer's usage for the limits, and taking out the usage chunk the
client did not ask for, however the bytes are cut."""

from __future__ import annotations

import orjson

from routectl.runtime.dialects.stream import Chain, ChunkTranslator
from routectl.runtime.ingress.openai_stream import ModelStamp
from routectl.runtime.ingress.openai_usage import UsageWatch

CHUNK = b'data: {"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"}}],"usage":null}\n\n'
USAGE = b'data: {"id":"x","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":400,"total_tokens":412}}\n\n'
DONE = b"data: [DONE]\n\n"
STREAM = CHUNK * 3 + USAGE + DONE


def _run(watch: ChunkTranslator, pieces: list[bytes]) -> bytes:
    return b"".join(watch.feed(p) for p in pieces) + watch.close()


def test_every_cut_of_the_stream_gives_the_usage_and_strips_only_the_usage_chunk() -> None:
    for size in (1, 7, 50, 113, len(STREAM)):
        pieces = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
        strip = UsageWatch(strip=True)
        assert _run(strip, pieces) == CHUNK * 3 + DONE, size
        assert strip.usage == {"prompt_tokens": 12, "completion_tokens": 400}
        keep = UsageWatch(strip=False)
        assert _run(keep, pieces) == STREAM, size  # passed on as it came
        assert keep.usage == {"prompt_tokens": 12, "completion_tokens": 400}


def test_a_stream_without_usage_passes_unchanged_and_reports_none() -> None:
    watch = UsageWatch(strip=True)
    assert _run(watch, [CHUNK, CHUNK + DONE]) == CHUNK * 2 + DONE
    assert watch.usage is None


def test_a_chunk_with_choices_and_usage_is_kept() -> None:
    both = orjson.loads(CHUNK[6:])
    both["usage"] = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    event = b"data: " + orjson.dumps(both) + b"\n\n"
    watch = UsageWatch(strip=True)
    assert _run(watch, [event, DONE]) == event + DONE
    assert watch.usage == {"prompt_tokens": 1, "completion_tokens": 2}


def test_whole_events_read_alike_however_they_are_grouped() -> None:
    # a read of whole events takes the quick way (only events that mention usage are looked
    # at); it must give what the byte-by-byte way gives, for any grouping of the events
    text = b'data: {"choices":[{"index":0,"delta":{"content":"the \\"usage\\": field"}}]}\n\n'
    comment = b": keep-alive\n\n"
    streams = [
        STREAM,
        USAGE + CHUNK + DONE,
        CHUNK + USAGE + USAGE + DONE,
        text + CHUNK + USAGE + comment + DONE,
        (CHUNK + USAGE + DONE).replace(b"\n\n", b"\r\n\r\n"),
        CHUNK + b"\n\n" + USAGE + DONE,  # an empty event between two
    ]
    for stream in streams:
        sep = b"\r\n\r\n" if b"\r" in stream else b"\n\n"
        events = [e + sep for e in stream.split(sep)[:-1]]
        assert b"".join(events) == stream
        for strip in (True, False):
            slow = UsageWatch(strip)
            expected = _run(slow, [stream[i : i + 1] for i in range(len(stream))])
            for group in (1, 2, 3, len(events)):
                pieces = [b"".join(events[i : i + group]) for i in range(0, len(events), group)]
                quick = UsageWatch(strip)
                assert _run(quick, pieces) == expected, (stream, strip, group)
                assert quick.usage == slow.usage


def test_the_model_stamp_with_a_watch_gives_what_the_two_translators_one_after_the_other_give() -> (
    None
):
    # the relay of a limited stream: one ModelStamp running the watch on each whole event first,
    # instead of a Chain of the stamp and the watch; same bytes out, same usage, every cut
    named = STREAM.replace(b'"object"', b'"model":"up-1","object"')  # the upstream's name
    streams = [named, named.replace(b"\n\n", b"\r\n\r\n"), named[:-2], STREAM]
    for stream in streams:
        for strip in (True, False):
            for size in (1, 7, 50, len(stream)):
                pieces = [stream[i : i + size] for i in range(0, len(stream), size)]
                chained = Chain(ModelStamp("routed/m"), UsageWatch(strip))
                fused = ModelStamp("routed/m", UsageWatch(strip))
                expected = _run(chained, pieces)
                assert _run(fused, pieces) == expected, (stream, strip, size)
                assert fused.usage == chained.usage
                assert fused.usage == {"prompt_tokens": 12, "completion_tokens": 400}
                if stream is not STREAM:
                    assert expected.count(b'"model":"routed/m"') == (4 if not strip else 3)
                    assert b"up-1" not in expected
