"""The Responses API (docs/api.md, "Responses"): POST /v1/responses as JSON and typed SSE, the
routes on a stored response, and response affinity; through the official openai SDK against
gunicorn, and in-process for validation, limits and budgets. Faults: test_agent_faults.py."""

from __future__ import annotations

import uuid

import openai
import pytest
from switchboard.catalog import Provider
from switchboard.relay.providers.azure import AzureClient

from tests.conftest import only_row, read_calls
from tests.fake_formats import RESPONSES_USAGE
from tests.helpers import bearer, openai_sdk

RESPONSES = "/v1/responses"


def marker() -> str:
    return f"r-{uuid.uuid4().hex[:10]}"


def sdk(server, key: str | None = None) -> openai.OpenAI:
    return openai_sdk(server.base_url + "/v1", key or server.key)


def post(client, auth, **body):
    """POST /v1/responses in-process."""
    return client.post(RESPONSES, json={"model": "gpt-4o-mini", "input": "hi"} | body,
                       headers=auth)  # fmt: skip


def row_of(server, request_id: str) -> dict:
    [row] = read_calls(server.database_url, request_id=request_id)
    return row


# ---- through the SDK and gunicorn --------------------------------------------------------


def test_sdk_create_gets_the_answer_and_a_row_with_tokens_and_cost(server, upstream):
    mark = marker()
    raw = sdk(server).responses.with_raw_response.create(
        model="gpt-4o-mini", input=f"Say hi {mark}", instructions="Be brief.", store=False
    )
    reply = raw.parse()
    assert reply.output_text == "Hello from the fake upstream."
    assert reply.usage.input_tokens == 21
    [sent] = upstream.requests_for(mark)
    assert sent.path == "/v1/responses"
    assert sent.body == {"model": "echo", "input": f"Say hi {mark}", "instructions": "Be brief.",
                         "store": False}  # fmt: skip
    row = row_of(server, raw.headers["x-request-id"])
    assert (row["endpoint"], row["model"], row["outcome"], row["stream"]) == (
        RESPONSES, "gpt-4o-mini", "ok", False,
    )  # fmt: skip
    tokens = ("prompt_tokens", "cached_tokens", "completion_tokens", "reasoning_tokens")
    assert tuple(row[t] for t in tokens) == (21, 5, 9, 3)
    assert row["total_tokens"] == 30
    # 16 fresh and 5 cached prompt tokens at 0.15, 9 output tokens at 0.60 (USD per 1M)
    assert row["cost_usd"] == pytest.approx((21 * 0.15 + 9 * 0.60) / 1e6)


def test_sdk_stream_relays_typed_events_and_records_their_usage(server, upstream):
    mark = marker()
    raw = sdk(server).responses.with_raw_response.create(
        model="gpt-4o-mini", input=[{"role": "user", "content": f"stream {mark}"}], stream=True
    )
    events = list(raw.parse())
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Hello from the fake."
    assert events[-1].response.usage.output_tokens == RESPONSES_USAGE["output_tokens"]
    [sent] = upstream.requests_for(mark)
    assert "stream_options" not in sent.body  # nothing is added for usage
    row = row_of(server, raw.headers["x-request-id"])
    assert row["stream"] and row["ttft_ms"] is not None
    assert (row["outcome"], row["prompt_tokens"], row["completion_tokens"]) == ("ok", 21, 9)


def test_sdk_tools_come_back_as_a_function_call(server, upstream):
    mark = marker()
    tool = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}
    reply = sdk(server).responses.create(
        model="tools", input=f"weather {mark}", tools=[tool, {"type": "web_search"}],
        tool_choice="auto",
    )  # fmt: skip
    [call] = reply.output
    assert (call.type, call.name, call.arguments) == ("function_call", "get_weather",
                                                      '{"city":"Paris"}')  # fmt: skip
    [sent] = upstream.requests_for(mark)
    assert sent.body["tools"] == [tool, {"type": "web_search"}]  # passed through as sent


def test_previous_response_id_goes_to_the_same_deployment_for_the_same_key(server, upstream):
    client = sdk(server)
    first = client.responses.create(model="gpt-4o-mini", input=f"one {marker()}")
    mark = marker()
    second = client.responses.create(
        model="gpt-4o-mini", input=f"two {mark}", previous_response_id=first.id
    )
    assert second.previous_response_id == first.id
    [sent] = upstream.requests_for(mark)
    assert sent.body["previous_response_id"] == first.id
    other = sdk(server, server.create_key("--name", f"other-{marker()}"))
    stranger = marker()
    with pytest.raises(openai.NotFoundError) as refused:
        other.responses.create(
            model="gpt-4o-mini", input=f"three {stranger}", previous_response_id=first.id
        )
    assert refused.value.body["param"] == "previous_response_id"
    assert refused.value.body["code"] == "response_not_found"
    assert upstream.requests_for(stranger) == []  # never a silent fallback elsewhere


def test_retrieve_input_items_and_delete_go_where_the_response_was_made(server, upstream):
    client = sdk(server)
    made = client.responses.create(model="gpt-4o-mini", input=f"keep {marker()}")
    got = client.responses.retrieve(made.id)
    assert got.id == made.id
    items = client.responses.input_items.list(made.id)
    assert [i.type for i in items.data] == ["message"]
    paths = [r.path for r in upstream.received]
    assert f"/v1/responses/{made.id}" in paths
    assert any(p.startswith(f"/v1/responses/{made.id}/input_items") for p in paths)
    other = sdk(server, server.create_key("--name", f"nosy-{marker()}"))
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(made.id)
    client.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(made.id)  # forgotten once deleted
    rows = [r for r in read_calls(server.database_url) if r["endpoint"].startswith(RESPONSES + "/")]
    endpoints = {r["endpoint"] for r in rows}
    assert {"/v1/responses/{id}", "/v1/responses/{id}/input_items"} <= endpoints
    assert all(r["cost_usd"] in (None, 0.0) and r["prompt_tokens"] is None for r in rows)


def test_cancel_is_forwarded(server, upstream):
    client = sdk(server)
    made = client.responses.create(model="gpt-4o-mini", input=f"bg {marker()}", background=True)
    cancelled = client.responses.cancel(made.id)
    assert cancelled.status == "cancelled"
    assert any(r.path == f"/v1/responses/{made.id}/cancel" for r in upstream.received)


def test_the_mock_provider_answers_json_streams_and_retrieve(server):
    client = sdk(server)
    reply = client.responses.create(model="mock", input="echo me back")
    assert reply.output_text == "echo me back"
    assert reply.usage.output_tokens > 0
    events = list(client.responses.create(model="mock", input="two words", stream=True))
    assert events[-1].type == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == (
        "two words"
    )


def test_openai_alias_is_recorded_without_it(server):
    client = openai_sdk(server.base_url + "/openai/v1", server.key)
    raw = client.responses.with_raw_response.create(model="mock", input="alias")
    assert row_of(server, raw.headers["x-request-id"])["endpoint"] == RESPONSES


# ---- in-process: validation, limits, budgets, routing ------------------------------------


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"max_output_tokens": 15}, "max_output_tokens"),
        ({"input": [{"role": "robot", "content": "x"}]}, "input.[0].role"),
        ({"temperature": True}, "temperature"),
        ({"tools": [{"type": "function", "name": "bad name"}]}, "tools.[0].name"),
        ({"metadata": {"k": "v" * 513}}, "metadata"),
    ],
)
def test_invalid_requests_are_refused_before_the_upstream(client, auth, upstream, body, param):
    mark = marker()
    resp = post(client, auth, **({"input": f"x {mark}"} | body))
    assert resp.status_code == 400
    assert resp.get_json()["error"]["param"].startswith(param)
    assert upstream.requests_for(mark) == []


def test_unknown_fields_and_explicit_falsy_values_pass_through(client, auth, upstream):
    mark = marker()
    extra = {"store": False, "temperature": 0, "truncation": "auto", "vendor_x": None}
    assert post(client, auth, input=f"p {mark}", fallbacks=["gpt-4.1"], **extra).status_code == 200
    [sent] = upstream.requests_for(mark)
    assert sent.body == {"model": "echo", "input": f"p {mark}"} | extra  # fallbacks consumed


def test_a_model_outside_the_allowlist_is_403(client, make_key, database_url):
    resp = post(client, bearer(make_key(models=["gpt-4.1"])))
    assert resp.status_code == 403
    assert resp.get_json()["error"]["code"] == "model_not_allowed"
    assert only_row(database_url)["outcome"] == "forbidden"


def test_rpm_counts_responses_with_every_other_endpoint(client, make_key, database_url):
    auth = bearer(make_key(rpm=1))
    assert post(client, auth, model="mock").status_code == 200
    resp = post(client, auth, model="mock")
    assert resp.status_code == 429
    assert resp.get_json()["error"]["code"] == "rate_limit_exceeded"


def test_the_budget_reserves_the_requests_own_output_bound(client, make_key, upstream):
    # 4096 output tokens (the model's cap) at 0.60 USD/1M would not fit; 100 do.
    auth = bearer(make_key(budget_usd=0.0002))
    assert post(client, auth, max_output_tokens=100).status_code == 200
    resp = post(client, auth)
    assert resp.status_code == 429
    assert resp.get_json()["error"]["code"] == "insufficient_quota"


def test_a_model_on_an_anthropic_provider_is_400_naming_its_endpoints(client, auth, database_url):
    resp = post(client, auth, model="claude-sonnet")
    assert resp.status_code == 400
    error = resp.get_json()["error"]
    assert error["param"] == "model"
    assert "/v1/messages" in error["message"] and "/v1/messages/count_tokens" in error["message"]
    assert only_row(database_url)["outcome"] == "invalid_request"


def test_an_unknown_previous_response_is_404(client, auth, upstream, database_url):
    mark = marker()
    resp = post(client, auth, input=f"x {mark}", previous_response_id="resp_never_made")
    assert resp.status_code == 404
    assert resp.get_json()["error"]["param"] == "previous_response_id"
    assert upstream.requests_for(mark) == []
    assert only_row(database_url)["outcome"] == "invalid_request"


def test_the_mock_keeps_its_responses_for_the_stored_routes(client, auth):
    # In-process: the mock keeps what it made in the worker's memory (docs/routing.md).
    made = post(client, auth, model="mock", input="keep me").get_json()
    got = client.get(f"{RESPONSES}/{made['id']}", headers=auth)
    assert got.get_json()["output"][0]["content"][0]["text"] == "keep me"
    items = client.get(f"{RESPONSES}/{made['id']}/input_items", headers=auth).get_json()
    assert items["data"][0]["content"][0]["text"] == "keep me"
    assert client.delete(f"{RESPONSES}/{made['id']}", headers=auth).get_json()["deleted"] is True
    assert client.get(f"{RESPONSES}/{made['id']}", headers=auth).status_code == 404


def test_an_unknown_response_id_route_is_404_without_the_upstream(client, auth, upstream):
    before = len(upstream.received)
    assert client.get(RESPONSES + "/resp_nope", headers=auth).status_code == 404
    assert client.delete(RESPONSES + "/resp_nope", headers=auth).status_code == 404
    assert client.post(RESPONSES + "/resp_nope/cancel", headers=auth).status_code == 404
    assert len(upstream.received) == before


def test_azure_responses_are_not_per_deployment():
    client = AzureClient(Provider("az", "azure", "https://x.openai.azure.com", "k"))
    assert client.url_for("dep", "/responses") == (
        "https://x.openai.azure.com/openai/responses?api-version=2024-10-21"
    )
    assert client.url_for("dep", "/chat/completions", "a=1").endswith(
        "/openai/deployments/dep/chat/completions?api-version=2024-10-21&a=1"
    )


def test_a_response_not_stored_is_not_remembered(client, auth, database_url):
    made = post(client, auth, model="mock", store=False).get_json()
    resp = post(client, auth, model="mock", previous_response_id=made["id"])
    assert resp.status_code == 404
    assert resp.get_json()["error"]["code"] == "response_not_found"


def test_the_stored_response_routes_count_against_rpm(client, make_key, database_url):
    auth = bearer(make_key(rpm=2))
    made = post(client, auth, model="mock").get_json()
    assert client.get(f"{RESPONSES}/{made['id']}", headers=auth).status_code == 200
    refused = client.get(f"{RESPONSES}/{made['id']}", headers=auth)
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "rate_limit_exceeded"
    outcomes = [r["outcome"] for r in read_calls(database_url)]
    assert outcomes == ["ok", "ok", "rate_limited"]


def test_a_key_no_longer_allowed_the_model_cannot_reach_its_response(client, app, database_url):
    keys = app.extensions["switchboard"].keys
    _, secret = keys.create(name="narrowed")
    auth = bearer(secret)
    made = post(client, auth, model="mock").get_json()
    keys.update("narrowed", {"models": ["gpt-4.1"]})
    resp = client.get(f"{RESPONSES}/{made['id']}", headers=auth)
    assert resp.status_code == 403
    assert resp.get_json()["error"]["code"] == "model_not_allowed"
