"""Chat chunks read without parsing (`plain_content_chars`) and read in full agree.

`ChatStream.see` skips `json.loads` for a chunk that is only text; the differential test below
holds the two readings to the same verdict, counts, usage and completeness over generated
chunks in the shapes upstreams send (compact and spaced JSON, escapes, non-ASCII text, tool
calls, usage, finishes, errors, several choices).
"""

from __future__ import annotations

import itertools
import json
import random
from typing import Any

import pytest
from switchboard.relay import stream_formats
from switchboard.relay.stream_formats import ChatStream, Verdict, plain_content_chars

TEXTS = ["", "Hello", " world", 'say "hi"', "back\\slash", "naïve ☃", "line\nbreak", "{}"]


def chunk(rng: random.Random) -> dict[str, Any]:
    choices = []
    for index in range(rng.choice([0, 1, 1, 1, 2])):
        delta: dict[str, Any] = {}
        if rng.random() < 0.2:
            delta["role"] = "assistant"
        if rng.random() < 0.9:
            delta["content"] = rng.choice([*TEXTS, None])
        if rng.random() < 0.1:
            delta["refusal"] = rng.choice([None, "no"])
        if rng.random() < 0.1:
            delta["reasoning_content"] = rng.choice([None, "hmm"])
        if rng.random() < 0.1:
            delta["tool_calls"] = [{"index": 0, "function": {"arguments": '{"a":1}'}}]
        choice: dict[str, Any] = {"index": index, "delta": delta}
        choice["finish_reason"] = rng.choice([None, None, None, "stop"])
        if rng.random() < 0.1:
            choice["logprobs"] = {"content": [{"token": "x", "logprob": -0.1}]}
        choices.append(choice)
    event: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": choices,
    }
    roll = rng.random()
    if roll < 0.3:
        event["usage"] = None
    elif roll < 0.4:
        event["usage"] = {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}
    if rng.random() < 0.03:
        event["error"] = {"message": "overloaded", "type": "server_error"}
    return event


def encodings(event: dict[str, Any]) -> list[bytes]:
    return [
        json.dumps(event, separators=(",", ":")).encode(),
        json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode(),
        json.dumps(event).encode(),
    ]


def reading(data: bytes, strip_usage: bool) -> tuple[Any, ...]:
    fmt = ChatStream(strip_usage)
    verdict = fmt.see(data)
    return verdict, fmt.content_chars, fmt.usage, fmt.complete, fmt.failure


def test_the_plain_reading_agrees_with_the_full_one(monkeypatch: pytest.MonkeyPatch):
    rng = random.Random(13)
    events = [chunk(rng) for _ in range(4000)]
    datas = [data for event in events for data in encodings(event)]
    fast = [reading(d, strip) for d, strip in itertools.product(datas, (False, True))]
    taken = sum(plain_content_chars(d) is not None for d in datas)
    monkeypatch.setattr(stream_formats, "plain_content_chars", lambda data: None)
    full = [reading(d, strip) for d, strip in itertools.product(datas, (False, True))]
    assert fast == full
    # The generated chunks are mostly not plain text (a third spaced, many with escapes or
    # more than text), but the plain reading is taken often enough to be tested.
    assert taken > 1000


@pytest.mark.parametrize(
    ("data", "chars"),
    [
        (b'{"choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}', 5),
        (b'{"choices":[{"delta":{"content":"na\xc3\xafve"}}],"usage":null}', 5),
        (b'{"choices":[{"delta":{"content":"a"}},{"delta":{"content":"bc"}}]}', 3),
    ],
)
def test_a_text_chunk_is_counted_without_parsing(data: bytes, chars: int):
    assert plain_content_chars(data) == chars


@pytest.mark.parametrize(
    "data",
    [
        b'{"choices":[{"delta":{"content":"say \\"hi\\""}}]}',  # escapes
        b'{"choices":[{"delta":{"content":"x"},"finish_reason":"stop"}]}',
        b'{"choices":[{"delta":{"content":"x"},"finish_reason": "stop"}]}',
        b'{"choices":[{"delta":{"content":"x"}}],"usage":{"prompt_tokens":1}}',
        b'{"choices":[{"delta":{"content":"x"}}],"error":{"message":"m"}}',
        b'{"choices":[{"delta":{"content":"x","tool_calls":[]}}]}',
        b'{"choices":[{"delta":{"content": "x"}}]}',  # spaced JSON: read in full
        b"[DONE]",
    ],
)
def test_anything_more_than_text_is_read_in_full(data: bytes):
    assert plain_content_chars(data) is None


def test_a_captured_stream_reads_every_chunk_in_full():
    from switchboard.capture.assembly import StreamAssembly

    assembly = StreamAssembly()
    fmt = ChatStream(assembly=assembly)
    data = b'{"id":"c","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}'
    assert fmt.see(data) is Verdict.PASS
    assert fmt.content_chars == 2
    assert assembly.choices  # the chunk reached the assembly
