"""A corpus of recorded-style Messages and Chat Completions traffic for the translation tests:
requests (text, system blocks, images, documents, tools and tool results, multi-turn, thinking),
answers for every stop reason, and streams as the upstreams write them."""

from __future__ import annotations

from typing import Any

from messages_fakes import chunk, message_events, sse, usage_chunk

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city"],
}
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

# ---------------------------------------------------------------- requests (Messages)

REQUESTS: dict[str, dict[str, Any]] = {
    "text": {
        "model": "claude/sonnet",
        "max_tokens": 1024,
        "system": "You are a helpful assistant.",
        "messages": [{"role": "user", "content": "Hello, Claude"}],
        "temperature": 0.7,
        "top_p": 0.9,
        "stop_sequences": ["\n\nHuman:", "END"],
        "metadata": {"user_id": "user-123"},
    },
    "system_blocks_with_cache_control": {
        "model": "claude/sonnet",
        "max_tokens": 512,
        "system": [
            {"type": "text", "text": "You are Claude Code."},
            {
                "type": "text",
                "text": "<repository conventions>",
                "cache_control": {"type": "ephemeral", "ttl": "1h"},
            },
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "<file>", "cache_control": {"type": "ephemeral"}},
                    {"type": "text", "text": "Summarize it."},
                ],
            }
        ],
        "top_k": 40,
        "service_tier": "auto",
    },
    "images": {
        "model": "claude/sonnet",
        "max_tokens": 256,
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                    {
                        "type": "image",
                        "source": {"type": "url", "url": "https://example.test/a.jpg"},
                    },
                    {"type": "text", "text": "Compare the two images."},
                ],
            }
        ],
    },
    "documents": {
        "model": "claude/sonnet",
        "max_tokens": 256,
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "title": "report.pdf",
                        "source": {
                            "type": "base64",
                            "media_type": "application/pdf",
                            "data": "JVBERi0xLjQK",
                        },
                        "citations": {"enabled": True},
                    },
                    {
                        "type": "document",
                        "source": {
                            "type": "text",
                            "media_type": "text/plain",
                            "data": "Plain notes.",
                        },
                    },
                    {
                        "type": "document",
                        "source": {
                            "type": "content",
                            "content": [{"type": "text", "text": "Chunk one."}],
                        },
                    },
                    {"type": "text", "text": "What do these say?"},
                ],
            }
        ],
    },
    "tools_multi_turn": {
        "model": "claude/sonnet",
        "max_tokens": 1024,
        "tools": [
            {
                "name": "weather",
                "description": "Weather for a city",
                "input_schema": WEATHER_SCHEMA,
            },
            {"name": "clock", "input_schema": {"type": "object", "properties": {}}},
        ],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "messages": [
            {"role": "user", "content": "Weather in Paris and Rome, and the time?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me check."},
                    {
                        "type": "tool_use",
                        "id": "toolu_01A",
                        "name": "weather",
                        "input": {"city": "Paris"},
                    },
                    {
                        "type": "tool_use",
                        "id": "toolu_01B",
                        "name": "weather",
                        "input": {"city": "Rome", "days": 2},
                    },
                    {"type": "tool_use", "id": "toolu_01C", "name": "clock", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "sunny, 24C"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_01B",
                        "content": [
                            {"type": "text", "text": "rain"},
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/png",
                                    "data": PNG,
                                },
                            },
                        ],
                    },
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_01C",
                        "content": "clock offline",
                        "is_error": True,
                    },
                    {"type": "text", "text": "Thanks. And tomorrow?"},
                ],
            },
        ],
    },
    "tool_choice_named": {
        "model": "claude/sonnet",
        "max_tokens": 100,
        "tools": [{"name": "weather", "input_schema": WEATHER_SCHEMA}],
        "tool_choice": {"type": "tool", "name": "weather"},
        "messages": [{"role": "user", "content": "Lyon"}],
    },
    "tool_choice_none": {
        "model": "claude/sonnet",
        "max_tokens": 100,
        "tools": [{"name": "weather", "input_schema": WEATHER_SCHEMA}],
        "tool_choice": {"type": "none"},
        "messages": [{"role": "user", "content": "Just talk."}],
    },
    "thinking_multi_turn": {
        "model": "claude/sonnet",
        "max_tokens": 16000,
        "thinking": {"type": "enabled", "budget_tokens": 10000},
        "messages": [
            {"role": "user", "content": "Is 1009 prime?"},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "thinking",
                        "thinking": "Check divisors up to 31.",
                        "signature": "EuYBCkQYAiJA",
                    },
                    {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
                    {"type": "text", "text": "Yes, 1009 is prime."},
                ],
            },
            {"role": "user", "content": "And 1011?"},
        ],
    },
    "stream_with_prefill": {
        "model": "claude/sonnet",
        "max_tokens": 64,
        "stream": True,
        "messages": [
            {"role": "user", "content": "Answer in JSON."},
            {"role": "assistant", "content": "{"},
        ],
    },
    "structured_output": {
        "model": "claude/sonnet",
        "max_tokens": 200,
        "output_config": {"format": {"type": "json_schema", "schema": WEATHER_SCHEMA}},
        "messages": [{"role": "user", "content": "Paris, 3 days"}],
    },
}

# what an OpenAI-compatible upstream cannot be given faithfully: refused, with the reason
REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "server_tool": (
        {
            "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
            "messages": [{"role": "user", "content": "news"}],
        },
        "the 'web_search_20250305' tool",
    ),
    "anthropic_client_tool": (
        {
            "tools": [{"type": "bash_20250124", "name": "bash"}],
            "messages": [{"role": "user", "content": "ls"}],
        },
        "the 'bash_20250124' tool",
    ),
    "image_by_file_id": (
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image", "source": {"type": "file", "file_id": "file_01"}}
                    ],
                }
            ]
        },
        "an image with a 'file' source",
    ),
    "document_by_url": (
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "document",
                            "source": {"type": "url", "url": "https://example.test/a.pdf"},
                        }
                    ],
                }
            ]
        },
        "a document with a 'url' source",
    ),
    "server_tool_history": (
        {
            "messages": [
                {"role": "user", "content": "news"},
                {
                    "role": "assistant",
                    "content": [
                        {
                            "type": "server_tool_use",
                            "id": "srvtoolu_1",
                            "name": "web_search",
                            "input": {"query": "x"},
                        }
                    ],
                },
                {"role": "user", "content": "more"},
            ]
        },
        "a 'server_tool_use' content block",
    ),
    "search_result_block": (
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "search_result",
                            "source": "https://example.test",
                            "title": "t",
                            "content": [{"type": "text", "text": "x"}],
                        }
                    ],
                }
            ]
        },
        "a 'search_result' content block",
    ),
    "mcp_servers": (
        {
            "mcp_servers": [{"type": "url", "url": "https://mcp.example.test", "name": "x"}],
            "messages": [{"role": "user", "content": "x"}],
        },
        "'mcp_servers' (remote MCP tools run by Anthropic)",
    ),
}

# ---------------------------------------------------------------- answers (chat.completion)


def _chat(message: dict[str, Any], finish: str, **choice: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-AbC123",
        "object": "chat.completion",
        "created": 1733000000,
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {"index": 0, "message": message, "finish_reason": finish, "logprobs": None, **choice}
        ],
        "usage": {
            "prompt_tokens": 120,
            "completion_tokens": 30,
            "total_tokens": 150,
            "prompt_tokens_details": {"cached_tokens": 100},
        },
        "system_fingerprint": "fp_1",
    }


_CALL = {
    "id": "call_abc",
    "type": "function",
    "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
}

CHAT_ANSWERS: dict[str, dict[str, Any]] = {
    "end_turn": _chat({"role": "assistant", "content": "Hello!", "refusal": None}, "stop"),
    "max_tokens": _chat({"role": "assistant", "content": "The answer is lo"}, "length"),
    "tool_use": _chat(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                _CALL,
                {
                    "id": "call_def",
                    "type": "function",
                    "function": {"name": "clock", "arguments": ""},
                },
            ],
        },
        "tool_calls",
    ),
    "tool_use_with_text_and_stop": _chat(
        {"role": "assistant", "content": "Checking.", "tool_calls": [_CALL]}, "stop"
    ),
    "refusal": _chat({"role": "assistant", "content": ""}, "content_filter"),
    "stop_sequence_named_by_vllm": _chat(
        {"role": "assistant", "content": "1, 2, 3"}, "stop", stop_reason="END"
    ),
    "content_parts": _chat(
        {"role": "assistant", "content": [{"type": "text", "text": "In parts."}]}, "stop"
    ),
}

# ---------------------------------------------------------------- answers (Messages), for the reverse

MESSAGE_ANSWERS: dict[str, dict[str, Any]] = {
    reason: {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-upstream",
        "content": content,
        "stop_reason": reason,
        "stop_sequence": "END" if reason == "stop_sequence" else None,
        "usage": {"input_tokens": 12, "cache_read_input_tokens": 40, "output_tokens": 6},
    }
    for reason, content in (
        ("end_turn", [{"type": "text", "text": "Hi!"}]),
        ("max_tokens", [{"type": "text", "text": "Cut"}]),
        ("stop_sequence", [{"type": "text", "text": "1, 2, 3"}]),
        (
            "tool_use",
            [
                {"type": "thinking", "thinking": "Need weather.", "signature": "sig"},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "weather",
                    "input": {"city": "Paris"},
                },
            ],
        ),
        ("refusal", []),
        ("pause_turn", [{"type": "text", "text": "Searching"}]),
    )
}

# ---------------------------------------------------------------- streams (OpenAI chunks)

_DONE = b"data: [DONE]\n\n"

CHUNK_STREAMS: dict[str, list[bytes]] = {
    "text_with_usage": [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hello"}),
        chunk({"content": " there"}),
        chunk({}, "stop"),
        usage_chunk(25, 2),
        _DONE,
    ],
    "parallel_tool_calls": [
        chunk({"role": "assistant", "content": None}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": ""},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "clock", "arguments": "{}"},
                    }
                ]
            }
        ),
        chunk({}, "tool_calls"),
        usage_chunk(50, 20),
        _DONE,
    ],
    "text_then_tool": [
        chunk({"role": "assistant", "content": "Let me look."}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Rome"}'},
                    }
                ]
            }
        ),
        chunk({}, "tool_calls"),
        _DONE,
    ],
    "max_tokens": [chunk({"role": "assistant", "content": "Trunc"}), chunk({}, "length"), _DONE],
    "content_filter": [
        chunk({"role": "assistant", "content": ""}),
        chunk({}, "content_filter"),
        _DONE,
    ],
    "no_done_after_finish": [chunk({"content": "Bye"}), chunk({}, "stop")],
    "cut_before_finish": [chunk({"content": "Hal"})],
    "error_chunk": [
        chunk({"content": "Par"}),
        b'data: {"error":{"message":"model overloaded","type":"server_error","status":503}}\n\n',
    ],
    "interleaved_tool_arguments": [
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "a",
                        "type": "function",
                        "function": {"name": "x", "arguments": "{"},
                    }
                ]
            }
        ),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "b",
                        "type": "function",
                        "function": {"name": "y", "arguments": "{"},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}),
    ],
    "cached_prompt_usage": [
        chunk({"content": "ok"}),
        chunk({}, "stop"),
        b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],'
        b'"usage":{"prompt_tokens":900,"completion_tokens":3,"total_tokens":903,'
        b'"prompt_tokens_details":{"cached_tokens":800}}}\n\n',
        _DONE,
    ],
}

# ---------------------------------------------------------------- streams (Messages events)

EVENT_STREAMS: dict[str, list[bytes]] = {
    "thinking_text_tool": message_events(),
    "text_only": message_events(thinking=False, tool=False),
    "error_mid_stream": [
        *message_events(thinking=False, tool=False)[:4],
        sse(
            "error",
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        ),
    ],
}
