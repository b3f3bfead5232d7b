"""Body capture and the stored-completions endpoints, through the official openai SDK against
a real gunicorn with `[capture]` settings, the fake upstream and the built-in mock provider
(which echoes the last user message and gives every completion its own id).

Each test works with keys of its own, so it sees only its own stored completions.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from typing import Any

import openai
import pytest
import requests
from sqlalchemy import create_engine, text
from switchboard import create_app
from switchboard.capture import MAX_BODY_CHARS, BodyCapture, StreamAssembly
from switchboard.config import Capture, ConfigError, Settings, parse_settings

from tests.conftest import (
    ADMIN_KEY,
    Outage,
    Server,
    read_calls,
    start_server,
    stop_server,
    wait_for,
)
from tests.helpers import HELLO, bearer, openai_sdk, post_chat

pytestmark = pytest.mark.integration

CAPTURED_KEY = "always-captured"
CAPTURED_MODEL = "gpt-4.1"
CUSTOM_PATTERN = r"ACME-\d{6}"
PROVIDER_SECRET = "sk-proj-abcdefghijklmnopqrstuvwx"


@pytest.fixture(scope="module")
def capture_server(_fake_upstream, databases, tmp_path_factory) -> Iterator[Server]:
    """A real gunicorn (2 workers) capturing the key CAPTURED_KEY and the model CAPTURED_MODEL,
    redacting CUSTOM_PATTERN besides the built-in patterns."""
    srv = start_server(
        tmp_path_factory.mktemp("capture"),
        _fake_upstream.base_url,
        databases.fresh("capture"),
        extra_env={"SWITCHBOARD_ADMIN_KEY": ADMIN_KEY},
        sections={
            "capture": {
                "keys": [CAPTURED_KEY],
                "models": [CAPTURED_MODEL],
                "redact": [CUSTOM_PATTERN],
            }
        },
    )
    yield srv
    stop_server(srv)


def new_key(server: Server, name: str | None = None) -> str:
    """A new key's secret, made through the admin API."""
    resp = requests.post(
        server.base_url + "/admin/keys",
        json={"name": name or f"store-{uuid.uuid4().hex[:8]}"},
        headers=bearer(ADMIN_KEY),
        timeout=10,
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["key"])


def sdk(server: Server, key: str | None = None, prefix: str = "/v1") -> openai.OpenAI:
    """An SDK client with a new key (or `key`)."""
    return openai_sdk(server.base_url + prefix, key or new_key(server), timeout=20)


def user(text_: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text_}]


def stored_rows(database_url: str) -> list[dict[str, Any]]:
    """Every stored_completions row, straight from the database."""
    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM stored_completions")).mappings().all()
    engine.dispose()
    return [dict(r) for r in rows]


def retrieved(client: openai.OpenAI, completion_id: str) -> Any:
    """The stored completion, waiting (bounded) for a stream's row, written as the stream ends."""

    def attempt() -> Any:
        try:
            return client.chat.completions.retrieve(completion_id)
        except openai.NotFoundError:
            return None

    found = wait_for(attempt, timeout=5)
    assert found is not None, f"{completion_id} was not stored"
    return found


def stored_ids(client: openai.OpenAI, **query: Any) -> list[str]:
    return [c.id for c in client.chat.completions.list(**query)]


# ---- what is captured --------------------------------------------------------------------


def test_store_true_keeps_the_json_completion_as_the_client_received_it(capture_server):
    client = sdk(capture_server)
    completion = client.chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, store=True, metadata={"purpose": "eval"}
    )
    stored = client.chat.completions.retrieve(completion.id)
    assert stored.id == completion.id == "chatcmpl-fake123"
    assert stored.choices[0].message.content == completion.choices[0].message.content
    assert stored.choices[0].finish_reason == "stop"
    assert stored.usage.total_tokens == completion.usage.total_tokens == 18
    assert stored.model == completion.model and stored.created == completion.created
    assert stored.metadata == {"purpose": "eval"}
    assert [c.id for c in client.chat.completions.list()] == [completion.id]


def test_store_true_keeps_a_stream_assembled_from_its_chunks(capture_server):
    client = sdk(capture_server)
    chunks = list(
        client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True, store=True)
    )
    received = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert received == "Hello from the fake."
    assert all(c.choices for c in chunks), "the injected usage chunk stays hidden"
    stored = retrieved(client, chunks[0].id)
    assert stored.object == "chat.completion"
    assert stored.choices[0].message.content == received
    assert stored.choices[0].message.role == "assistant"
    assert stored.choices[0].finish_reason == "stop"
    assert (stored.model, stored.created) == (chunks[0].model, chunks[0].created)
    # The usage chunk the relay asked for, though the client never saw it.
    assert stored.usage.total_tokens == 18 and stored.usage.prompt_tokens == 11


def test_streamed_tool_calls_are_merged_by_index(capture_server, upstream):
    marker = "tools-" + uuid.uuid4().hex[:8]

    def event(body: dict[str, Any]) -> bytes:
        head = {
            "id": "chatcmpl-tools1",
            "object": "chat.completion.chunk",
            "created": 1741569999,
            "model": "echo-2025-01-01",
            "system_fingerprint": "fp_tools",
        }
        return b"data: " + json.dumps(head | body).encode() + b"\n\n"

    def delta(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return event(
            {"choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        )

    def tool(index: int, arguments: str, **head: Any) -> bytes:
        call = {"index": index, "function": {"arguments": arguments}} | head
        return delta({"tool_calls": [call]})

    usage = {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42}
    upstream.plan(
        marker,
        {
            "sse": [
                delta({"role": "assistant", "content": None}),
                tool(0, "", id="call_a", type="function"),
                delta({"tool_calls": [{"index": 0, "function": {"name": "weather"}}]}),
                tool(0, '{"city": '),
                tool(1, '{"city": "Oslo"}', id="call_b", type="function"),
                tool(0, '"Paris"}', id="call_a"),  # some providers repeat the id
                delta({}, "tool_calls"),
                event({"choices": [], "usage": usage}),
                b"data: [DONE]\n\n",
            ]
        },
    )
    client = sdk(capture_server)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=user(marker), stream=True, store=True
        )
    )
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    stored = retrieved(client, "chatcmpl-tools1")
    message = stored.choices[0].message
    assert message.content is None
    assert [(t.id, t.type, t.function.name, t.function.arguments) for t in message.tool_calls] == [
        ("call_a", "function", "weather", '{"city": "Paris"}'),
        ("call_b", "function", None, '{"city": "Oslo"}'),
    ]
    assert stored.choices[0].finish_reason == "tool_calls"
    assert stored.system_fingerprint == "fp_tools"
    assert stored.usage.total_tokens == 42


def test_without_store_or_configuration_nothing_is_kept(capture_server):
    client = sdk(capture_server)
    plain = client.chat.completions.create(model="mock", messages=user("not kept"))
    refused = client.chat.completions.create(model="mock", messages=user("no"), store=False)
    streamed = list(client.chat.completions.create(model="mock", messages=HELLO, stream=True))
    assert client.chat.completions.list().data == []
    for completion_id in (plain.id, refused.id, streamed[0].id):
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.retrieve(completion_id)


def test_a_key_named_in_the_configuration_is_always_captured(capture_server):
    client = sdk(capture_server, new_key(capture_server, CAPTURED_KEY))
    completion = client.chat.completions.create(model="mock", messages=user("by key"))
    assert client.chat.completions.retrieve(completion.id).choices[0].message.content == "by key"


def test_a_model_named_in_the_configuration_is_always_captured(capture_server):
    client = sdk(capture_server)
    kept = client.chat.completions.create(model=CAPTURED_MODEL, messages=user("by model"))
    other = client.chat.completions.create(model="mock", messages=user("other model"))
    assert stored_ids(client) == [kept.id]
    assert client.chat.completions.retrieve(kept.id).model == kept.model
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.retrieve(other.id)


def test_failed_calls_are_not_kept(capture_server):
    client = sdk(capture_server)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="bad-request", messages=HELLO, store=True)
    with pytest.raises(openai.APIError):
        list(client.chat.completions.create(model="drop", messages=HELLO, stream=True, store=True))
    assert client.chat.completions.list().data == []


# ---- redaction ---------------------------------------------------------------------------


def test_secrets_are_redacted_in_what_is_kept_but_forwarded_as_sent(capture_server, upstream):
    marker = "redact-" + uuid.uuid4().hex[:8]
    said = f"{marker} my key is {PROVIDER_SECRET} and my badge ACME-123456, thanks"
    switchboard_key = new_key(capture_server)
    messages = [
        {"role": "system", "content": f"Bearer {switchboard_key}, proxy: bearer tok_12345678"},
        {"role": "user", "content": said},
    ]
    client = sdk(capture_server)
    sent = client.chat.completions.create(
        model="gpt-4o-mini", messages=messages, store=True, metadata={"ticket": "ACME-654321"}
    )
    [forwarded] = upstream.requests_for(marker)
    assert forwarded.body["messages"] == messages  # capture changes nothing upstream
    assert forwarded.body["metadata"] == {"ticket": "ACME-654321"}
    kept = [m.content for m in client.chat.completions.messages.list(sent.id)]
    assert kept == [
        "Bearer [REDACTED], proxy: [REDACTED]",
        f"{marker} my key is [REDACTED] and my badge [REDACTED], thanks",
    ]
    assert client.chat.completions.retrieve(sent.id).metadata == {"ticket": "[REDACTED]"}
    # The mock echoes the secret back: the client gets it, the stored response does not.
    echoed = client.chat.completions.create(model="mock", messages=user(said), store=True)
    assert PROVIDER_SECRET in echoed.choices[0].message.content
    stored = client.chat.completions.retrieve(echoed.id).choices[0].message.content
    assert stored == f"{marker} my key is [REDACTED] and my badge [REDACTED], thanks"
    raw = json.dumps(stored_rows(capture_server.database_url), default=str)
    for secret in (PROVIDER_SECRET, switchboard_key, "ACME-123456", "ACME-654321"):
        assert secret not in raw
        assert secret not in capture_server.log()


def test_a_secret_split_across_stream_chunks_is_still_redacted(capture_server):
    client = sdk(capture_server)
    # The mock streams the echo in pieces of words: the secret arrives across chunks.
    said = f"one two three four five six seven {PROVIDER_SECRET}-tail eight"
    chunks = list(
        client.chat.completions.create(model="mock", messages=user(said), stream=True, store=True)
    )
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1
    stored = retrieved(client, chunks[0].id).choices[0].message.content
    assert stored == "one two three four five six seven [REDACTED] eight"


# ---- listing, paging, filtering ----------------------------------------------------------


def test_list_pages_forward_and_backward(capture_server):
    client = sdk(capture_server)
    ids = [
        client.chat.completions.create(model="mock", messages=user(f"n{i}"), store=True).id
        for i in range(5)
    ]
    assert stored_ids(client) == ids  # ascending by default, as OpenAI documents
    first = client.chat.completions.with_raw_response.list(limit=2).http_response.json()
    assert [c["id"] for c in first["data"]] == ids[:2]
    assert (first["object"], first["first_id"], first["last_id"], first["has_more"]) == (
        "list",
        ids[0],
        ids[1],
        True,
    )
    last = client.chat.completions.list(limit=2, after=ids[2])
    assert [c.id for c in last.data] == ids[3:] and last.has_more is False
    assert stored_ids(client, limit=2) == ids  # the SDK follows `after` page by page
    assert stored_ids(client, order="desc", limit=2) == ids[::-1]
    newest = client.chat.completions.list(order="desc", limit=3, after=ids[3])
    assert [c.id for c in newest.data] == ids[2::-1] and newest.has_more is False
    empty = client.chat.completions.with_raw_response.list(after=ids[4]).http_response.json()
    assert empty == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }


def test_list_filters_by_model_and_by_every_metadata_pair(capture_server):
    client = sdk(capture_server)

    def create(model: str, **metadata: str) -> str:
        messages = user(f"m {metadata}")
        return client.chat.completions.create(
            model=model, messages=messages, store=True, metadata=metadata
        ).id

    a1 = create("mock", team="a", run="1")
    b1 = create("mock", team="b", run="1")
    a2 = create("mock", team="a", run="2")
    other = create(CAPTURED_MODEL, team="a", run="2")
    assert stored_ids(client, metadata={"team": "a"}) == [a1, a2, other]
    assert stored_ids(client, metadata={"team": "a", "run": "2"}) == [a2, other]
    assert stored_ids(client, metadata={"run": "1"}, order="desc") == [b1, a1]
    assert stored_ids(client, metadata={"team": "c"}) == []
    assert stored_ids(client, model="mock") == [a1, b1, a2]
    assert stored_ids(client, model=CAPTURED_MODEL, metadata={"run": "2"}) == [other]
    page = client.chat.completions.list(metadata={"team": "a"}, limit=1, after=a1)
    assert [c.id for c in page.data] == [a2] and page.has_more is True
    assert client.chat.completions.retrieve(a1).metadata == {"team": "a", "run": "1"}


def test_messages_of_a_stored_completion_are_listed_and_paged(capture_server):
    client = sdk(capture_server)
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi", "name": "ann"},
        {"role": "assistant", "content": "Hello."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            ],
        },
    ]
    completion = client.chat.completions.create(model="mock", messages=messages, store=True)
    listed = client.chat.completions.messages.list(completion.id)
    assert [m.id for m in listed.data] == [f"{completion.id}-{i}" for i in range(4)]
    assert [(m.role, m.content) for m in listed.data] == [
        ("system", "Be brief."),
        ("user", "Hi"),
        ("assistant", "Hello."),
        ("user", "What is this?"),
    ]
    assert listed.data[1].name == "ann" and listed.data[0].content_parts is None
    assert [p.type for p in listed.data[3].content_parts] == ["text", "image_url"]
    raw = client.chat.completions.messages.with_raw_response.list(
        completion.id, limit=2, order="desc"
    ).http_response.json()
    ids = [f"{completion.id}-{i}" for i in (3, 2)]
    assert [m["id"] for m in raw["data"]] == ids
    assert (raw["first_id"], raw["last_id"], raw["has_more"]) == (*ids, True)
    rest = client.chat.completions.messages.list(completion.id, after=f"{completion.id}-1")
    assert [m.id for m in rest.data] == [f"{completion.id}-{i}" for i in (2, 3)]
    assert rest.has_more is False


def test_the_alias_prefix_serves_stored_completions(capture_server):
    key = new_key(capture_server)
    made = sdk(capture_server, key).chat.completions.create(
        model="mock", messages=HELLO, store=True
    )
    alias = sdk(capture_server, key, prefix="/openai/v1")
    assert stored_ids(alias) == [made.id]
    assert alias.chat.completions.retrieve(made.id).id == made.id


# ---- scoping, deleting, errors -----------------------------------------------------------


def test_keys_never_see_each_others_completions(capture_server):
    owner = sdk(capture_server)
    stranger = sdk(capture_server)
    mine = owner.chat.completions.create(model="mock", messages=user("mine"), store=True)
    theirs = stranger.chat.completions.create(model="mock", messages=user("theirs"), store=True)
    assert stored_ids(owner) == [mine.id]
    assert stored_ids(stranger) == [theirs.id]
    with pytest.raises(openai.NotFoundError):
        stranger.chat.completions.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        stranger.chat.completions.messages.list(mine.id)
    with pytest.raises(openai.NotFoundError):
        stranger.chat.completions.delete(mine.id)
    with pytest.raises(openai.BadRequestError):  # another key's id is no cursor either
        stranger.chat.completions.list(after=mine.id)
    assert owner.chat.completions.retrieve(mine.id).choices[0].message.content == "mine"


def test_delete_then_retrieve_is_not_found(capture_server):
    client = sdk(capture_server)
    kept = client.chat.completions.create(model="mock", messages=user("keep"), store=True)
    gone = client.chat.completions.create(model="mock", messages=user("drop"), store=True)
    deleted = client.chat.completions.delete(gone.id)
    assert (deleted.object, deleted.id, deleted.deleted) == (
        "chat.completion.deleted",
        gone.id,
        True,
    )
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.retrieve(gone.id)
    assert caught.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.delete(gone.id)
    assert stored_ids(client) == [kept.id]


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"extra_query": {"limit": "ten"}}, "limit"),
        ({"extra_query": {"order": "sideways"}}, "order"),
        ({"after": "chatcmpl-never-stored"}, "after"),
    ],
)
def test_bad_list_parameters_are_bad_requests(capture_server, query, param):
    client = sdk(capture_server)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.list(**query)
    assert caught.value.param == param
    assert caught.value.body["type"] == "invalid_request_error"


def test_bad_message_list_parameters_are_bad_requests(capture_server):
    client = sdk(capture_server)
    made = client.chat.completions.create(model="mock", messages=HELLO, store=True)
    for query, param in (({"limit": 0}, "limit"), ({"after": "nope"}, "after")):
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.messages.list(made.id, **query)
        assert caught.value.param == param


def test_stored_completion_calls_are_recorded_without_a_model(capture_server):
    client = sdk(capture_server)
    made = client.chat.completions.create(model="mock", messages=HELLO, store=True)
    listing, reading, missing = (f"st-{uuid.uuid4().hex[:10]}" for _ in range(3))
    client.chat.completions.list(extra_headers={"X-Request-Id": listing})
    client.chat.completions.retrieve(made.id, extra_headers={"X-Request-Id": reading})
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.retrieve("nope", extra_headers={"X-Request-Id": missing})
    expected = {
        listing: ("/v1/chat/completions", "ok", 200),
        reading: (f"/v1/chat/completions/{made.id}", "ok", 200),
        missing: ("/v1/chat/completions/nope", "invalid_request", 404),
    }
    for request_id, (endpoint, outcome, status) in expected.items():
        rows = wait_for(lambda r=request_id: read_calls(capture_server.database_url, request_id=r))
        assert [(r["endpoint"], r["outcome"], r["status_code"]) for r in rows] == [
            (endpoint, outcome, status)
        ]
        assert rows[0]["model"] is None and rows[0]["key_id"] is not None


def test_an_oversized_request_is_kept_cut_short(capture_server):
    client = sdk(capture_server)
    big = "x" * (MAX_BODY_CHARS + 200_000)
    made = client.chat.completions.create(model="gpt-4o-mini", messages=user(big), store=True)
    [message] = client.chat.completions.messages.list(made.id).data
    assert message.content.startswith("xxxx") and message.content.endswith("characters not kept]")
    assert len(message.content) < MAX_BODY_CHARS


def test_a_body_that_cannot_be_kept_does_not_fail_the_call(capture_server):
    client = sdk(capture_server)
    # Thousands of strings over the shortest cut: too large even cut, so not kept at all.
    many = [{"role": "user", "content": "y" * 600} for _ in range(4000)]
    made = client.chat.completions.create(model="gpt-4o-mini", messages=many, store=True)
    assert made.choices[0].message.content == "Hello from the fake upstream."
    assert client.chat.completions.list().data == []
    assert "not captured: its bodies are too large" in capture_server.log()


# ---- the database down -------------------------------------------------------------------


@pytest.fixture
def outage_app(settings: Settings, outage: Outage) -> Iterator[Any]:
    """The app on the database behind the outage switch."""
    app = create_app(dataclasses.replace(settings, database_url=outage.url))
    yield app
    app.extensions["switchboard"].close()


def test_capture_while_the_database_is_down_goes_through_the_spool(
    outage_app, outage, database_url
):
    app = outage_app
    _, secret = app.extensions["switchboard"].keys.create(name="spooled")
    auth = {"Authorization": f"Bearer {secret}"}
    client = app.test_client()
    body = {"model": "mock", "messages": user(f"down {PROVIDER_SECRET}"), "store": True}
    assert post_chat(client, auth, **body).status_code == 200
    outage.cut()
    resp = post_chat(client, auth, **body)
    assert resp.status_code == 200
    made = resp.get_json()["id"]
    [spooled] = app.extensions["switchboard"].ledger.spool.files()
    lines = [json.loads(line) for line in spooled.read_text().splitlines()]
    assert [r["op"] for r in lines] == ["open", "finish", "store"]
    assert PROVIDER_SECRET not in spooled.read_text() and secret not in spooled.read_text()
    outage.restore()
    app.extensions["switchboard"].ledger.replay_spool()
    assert len(stored_rows(database_url)) == 2
    stored = client.get(f"/v1/chat/completions/{made}", headers=auth)
    assert stored.status_code == 200
    assert stored.get_json()["choices"][0]["message"]["content"] == "down [REDACTED]"


# ---- configuration -----------------------------------------------------------------------


def test_capture_configuration_defaults():
    capture = parse_settings({}, "test").capture
    assert (capture.all, capture.keys, capture.models, capture.redact) == (False, (), (), ())
    assert capture.redact_defaults is True and capture.retention_days == 30
    assert any("sk-" in p for p in capture.patterns())
    off = parse_settings({"capture": {"redact_defaults": False, "redact": ["x+"]}}, "t").capture
    assert off.patterns() == ("x+",)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"redact": ["(unclosed"]}, "'(unclosed' is not a valid regular expression"),
        ({"redact": ["a*"]}, "'a*' matches the empty string"),
        ({"keys": "alice"}, "`keys` must be a list"),
        ({"all": "yes"}, "`all` must be true or false"),
        ({"retention_days": 0}, "`retention_days` must be"),
        ({"retention": 5}, "unknown key `retention` (did you mean `retention_days`?)"),
    ],
)
def test_bad_capture_configuration_is_a_config_error(section, message):
    with pytest.raises(ConfigError) as caught:
        parse_settings({"capture": section}, "test")
    assert message in str(caught.value)


def test_a_stream_of_two_choices_assembles_each_with_its_logprobs():
    assembly = StreamAssembly()
    head = {"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 7, "model": "m"}

    def choice(index: int, delta: dict[str, Any], **rest: Any) -> dict[str, Any]:
        return {"index": index, "delta": delta, "finish_reason": None} | rest

    def token(text_: str) -> dict[str, Any]:
        return {"content": [{"token": text_, "logprob": -0.5}], "refusal": None}

    role, hi = {"role": "assistant"}, token("Hi")
    chunks = [
        {"choices": [choice(0, role | {"content": ""}), choice(1, role)]},
        {"choices": [choice(1, {"refusal": "I can't"}), choice(0, {"content": "Hi"}, logprobs=hi)]},
        {"choices": [choice(0, {"content": "!"}, logprobs=token("!"))], "service_tier": "default"},
        {"choices": [choice(1, {"refusal": " help."}, finish_reason="stop")]},
        {"choices": [choice(0, {}, finish_reason="length")]},
        {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}},
    ]  # fmt: skip
    for chunk in chunks:
        assembly.add(head | chunk)
    built = assembly.completion()
    assert built == {
        "id": "chatcmpl-2",
        "object": "chat.completion",
        "created": 7,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hi!", "refusal": None},
                "logprobs": {
                    "content": [
                        {"token": "Hi", "logprob": -0.5},
                        {"token": "!", "logprob": -0.5},
                    ],
                    "refusal": None,
                },
                "finish_reason": "length",
            },
            {
                "index": 1,
                "message": {"role": "assistant", "content": None, "refusal": "I can't help."},
                "logprobs": None,
                "finish_reason": "stop",
            },
        ],
        "service_tier": "default",
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }


def test_default_redaction_spares_words_and_covers_keys():
    capture = BodyCapture(Capture(), ledger=None)  # type: ignore[arg-type]
    secret = "sb-" + "k" * 40
    kept = capture.redact(
        {
            "note": "risk-assessment-framework and task-management-system stay",
            "key": "call with sk-abcdefghijklmnop1234 now",
            secret: "a key as a metadata key",
        }
    )
    assert kept["note"] == "risk-assessment-framework and task-management-system stay"
    assert kept["key"] == "call with [REDACTED] now"
    assert secret not in json.dumps(kept) and "[REDACTED]" in kept
