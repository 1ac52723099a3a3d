"""The routed model id in every relayed OpenAI chunk (ingress/openai_stream.py)."""

from __future__ import annotations

import random
import re

from routectl.runtime.ingress.openai_stream import ModelStamp

CHUNK = b'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o-2024-08-06","choices":[]}\n\n'


def test_each_complete_event_is_stamped_and_the_rest_waits() -> None:
    stamp = ModelStamp("openai/gpt-4o")
    first = stamp.feed(CHUNK + CHUNK[:30])
    assert first == CHUNK.replace(b"gpt-4o-2024-08-06", b"openai/gpt-4o")
    assert stamp.feed(CHUNK[30:50]) == b""  # still no end of event
    rest = stamp.feed(CHUNK[50:] + b"data: [DONE]\n\n")
    assert rest == first + b"data: [DONE]\n\n"
    assert stamp.close() == b""


def test_text_that_quotes_a_model_key_is_left_alone() -> None:
    text = b'{"model" : "up","choices":[{"delta":{"content":"say \\"model\\": \\"x\\""}}]}'
    stamp = ModelStamp("a/b")
    out = stamp.feed(b"data: " + text + b"\r\n\r\n")
    assert out == b"data: " + text.replace(b'"model" : "up"', b'"model" : "a/b"') + b"\r\n\r\n"


def test_an_unterminated_last_event_is_stamped_at_the_end() -> None:
    stamp = ModelStamp("a/b")
    assert stamp.feed(b'data: {"model":"x"}') == b""
    assert stamp.close() == b'data: {"model":"a/b"}'


def test_later_chunks_take_the_shortcut_only_when_it_gives_the_same_bytes() -> None:
    stamp = ModelStamp("a/b")
    chunk = b'data: {"model":"up","choices":[{"delta":{"content":"hi"}}]}\n\n'
    assert stamp.feed(chunk) == chunk.replace(b'"up"', b'"a/b"')
    # the same sequence again (the shortcut), quoted text that names it left alone
    quoted = b'data: {"model":"up","choices":[{"delta":{"content":"\\"model\\":\\"up\\""}}]}\n\n'
    assert stamp.feed(quoted) == quoted.replace(b'"model":"up"', b'"model":"a/b"', 1)
    # another name, or two keys with different names: key by key, each one stamped
    other = b'data: {"model":"up-2","x":{"model":"up"}}\n\n'
    assert stamp.feed(other) == b'data: {"model":"a/b","x":{"model":"a/b"}}\n\n'
    assert stamp.feed(chunk) == chunk.replace(b'"up"', b'"a/b"')
    # what the walk leaves alone (an escaped quote before the key), the shortcut does too
    broken = b'data: {"model":"up","t":\\"model":"up"}\n\n'
    assert stamp.feed(broken) == ModelStamp("a/b").feed(broken)


def test_events_read_at_once_are_stamped_whatever_names_they_carry() -> None:
    same = b'data: {"model":"up","n":1}\n\ndata: {"model":"up","n":2}\n\n'
    assert ModelStamp("a/b").feed(same) == same.replace(b'"up"', b'"a/b"')
    mixed = b'data: {"model":"up"}\n\ndata: {"model":"other"}\n\ndata: {"model":"up"}\n\n'
    assert ModelStamp("a/b").feed(mixed) == (
        b'data: {"model":"a/b"}\n\ndata: {"model":"a/b"}\n\ndata: {"model":"a/b"}\n\n'
    )
    # text quoting the key after the first real one stays as it was
    quoted = b'data: {"model":"up","t":"\\"model\\":\\"up\\""}\n\ndata: {"model":"up"}\n\n'
    assert ModelStamp("a/b").feed(quoted) == quoted.replace(b'"model":"up"', b'"model":"a/b"')


_REFERENCE = re.compile(rb'(?<!\\)("model"\s*:\s*)"(?:[^"\\]|\\.)*"')


def test_any_stream_in_any_cuts_is_stamped_as_every_unescaped_model_key_replaced() -> None:
    # the reference: each `"model"` key not after a backslash gets the routed id, left to right;
    # the stamp (key by key, then one split for the known sequence) must give the same bytes
    fragments = [
        b'"model":"up"',
        b'"model": "up"',
        b'"model":"up-2"',
        b'"t":"\\"model\\":\\"up\\""',
        b'\\"model":"up"',
        b'"n":1',
        b'"x":{"model":"up"}',
    ]
    rng = random.Random(11)
    for _ in range(2_000):
        events = []
        for _ in range(rng.randint(1, 5)):
            parts = [rng.choice(fragments) for _ in range(rng.randint(1, 4))]
            events.append(b"data: {" + b",".join(parts) + b"}\n\n")
        stream = b"".join(events)
        expected = _REFERENCE.sub(lambda m: m.group(1) + b'"a/b"', stream)
        stamp = ModelStamp("a/b")
        size = rng.choice([1, 9, 40, len(stream)])
        got = b"".join(stamp.feed(stream[i : i + size]) for i in range(0, len(stream), size))
        assert got + stamp.close() == expected, stream


def test_a_stream_starts_from_the_sequence_the_last_stream_of_its_id_taught() -> None:
    first = b'data: {"model":"up","n":1}\n\n'
    assert ModelStamp("taught/id").feed(first) == b'data: {"model":"taught/id","n":1}\n\n'
    # the next stream of the id begins with that guess ...
    guessed = ModelStamp("taught/id")
    assert guessed._seen == b'"model":"up"'
    assert guessed.feed(first) == b'data: {"model":"taught/id","n":1}\n\n'
    # ... which a stream writing other sequences does not take: each key is still stamped
    other = b'data: {"model": "up","x":{"model":"up-2"}}\n\n'
    assert ModelStamp("taught/id").feed(other) == (
        b'data: {"model": "taught/id","x":{"model":"taught/id"}}\n\n'
    )
    # another routed id learns apart, and the same upstream name stamps with its own id
    assert ModelStamp("other/id").feed(first) == b'data: {"model":"other/id","n":1}\n\n'
    assert ModelStamp("taught/id").feed(first) == b'data: {"model":"taught/id","n":1}\n\n'
