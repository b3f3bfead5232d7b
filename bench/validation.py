"""Validation of one large chat request, by itself (issue: "a 200-message, 200 KB chat request
validated in <= 2 ms"). Run by hand: `python bench/validation.py [--rounds N]`.

The request is what a coding agent sends late in a session: 200 messages of about 1 KB each
(user and assistant turns, assistant tool calls, tool results), a few tools. It is validated
with the schema instance the chat route uses (`gateway.validation.check`), in-process, so the
figure is marshmallow's cost alone: no HTTP, no JSON parsing, no database.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from switchboard.gateway import chat_schema
from switchboard.gateway.validation import check

TEXT = "The quick brown fox jumps over the lazy dog. " * 22  # ~1 KB


def request(messages: int = 200) -> dict[str, Any]:
    turns: list[dict[str, Any]] = [{"role": "system", "content": TEXT}]
    for i in range(1, messages):
        kind = i % 4
        if kind == 1:
            turns.append({"role": "user", "content": TEXT})
        elif kind == 2:
            turns.append({"role": "assistant", "content": None, "tool_calls": [
                {"id": f"call_{i}", "type": "function",
                 "function": {"name": "read_file", "arguments": json.dumps({"path": TEXT[:900]})}}
            ]})  # fmt: skip
        elif kind == 3:
            turns.append({"role": "tool", "tool_call_id": f"call_{i - 1}", "content": TEXT})
        else:
            turns.append({"role": "assistant", "content": [{"type": "text", "text": TEXT}]})
    tools = [{"type": "function", "function": {"name": f"tool_{n}", "description": TEXT[:200],
              "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}}
             for n in range(8)]  # fmt: skip
    tools[0]["function"]["name"] = "read_file"
    return {"model": "gpt-4o-mini", "messages": turns, "tools": tools, "temperature": 0.2,
            "stream": True, "stream_options": {"include_usage": True}}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    body = request()
    size = len(json.dumps(body).encode())
    schema = chat_schema.ChatCompletionRequestSchema()
    check(schema, body)  # valid, and warm
    times = []
    for _ in range(min(args.rounds, 10_000)):
        start = time.perf_counter()
        check(schema, body)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    print(f"request: {len(body['messages'])} messages, {size / 1000:.0f} KB")
    print(
        f"validation over {len(times)} rounds: p50 {statistics.median(times):.2f} ms, "
        f"p90 {times[int(len(times) * 0.9)]:.2f} ms, min {times[0]:.2f} ms"
    )


if __name__ == "__main__":
    main()
