"""POST /v1/embeddings (docs/api.md): validated, admitted and relayed like a chat completion,
one ledger row with its prompt tokens and cost; through the OpenAI SDK against gunicorn."""

from __future__ import annotations

import base64
import struct
import uuid

import pytest

from tests.conftest import only_row, read_calls
from tests.helpers import bearer, openai_sdk

EMBEDDINGS = "/v1/embeddings"


def marker() -> str:
    return f"e-{uuid.uuid4().hex[:10]}"


def embed(client, auth, **body):
    """POST /v1/embeddings in-process."""
    return client.post(EMBEDDINGS, json={"model": "gpt-4o-mini", "input": "hello"} | body,
                       headers=auth)  # fmt: skip


# ---- through the SDK and gunicorn --------------------------------------------------------


def test_sdk_embeddings_through_gunicorn_get_a_row_with_tokens_and_cost(server, upstream):
    client = openai_sdk(server.base_url + "/v1", server.key)
    mark = marker()
    raw = client.embeddings.with_raw_response.create(
        model="gpt-4o-mini", input=[f"first {mark}", "second"], encoding_format="float"
    )
    reply = raw.parse()
    assert [d.index for d in reply.data] == [0, 1]
    assert reply.data[1].embedding == [0.2, 0.2, -0.3]
    assert (reply.usage.prompt_tokens, reply.usage.total_tokens) == (8, 8)
    [sent] = upstream.requests_for(mark)
    assert sent.path == "/v1/embeddings"
    assert sent.body == {"model": "echo", "input": [f"first {mark}", "second"],
                         "encoding_format": "float"}  # fmt: skip
    [row] = read_calls(server.database_url, request_id=raw.headers["x-request-id"])
    assert (row["endpoint"], row["model"], row["upstream_model"]) == (
        EMBEDDINGS, "gpt-4o-mini", "echo",
    )  # fmt: skip
    assert (row["outcome"], row["status_code"], row["stream"]) == ("ok", 200, False)
    assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (8, None, 8)
    assert row["usage_source"] == "upstream"
    assert row["cost_usd"] == pytest.approx(8 * 0.15 / 1_000_000)


def test_sdk_default_base64_embeddings_of_the_mock_provider(server):
    client = openai_sdk(server.base_url + "/v1", server.key)
    reply = client.embeddings.create(model="mock", input="the same text", dimensions=16)
    again = client.embeddings.create(model="mock", input="the same text", dimensions=16)
    vector = reply.data[0].embedding
    assert len(vector) == 16 and vector == again.data[0].embedding
    assert sum(v * v for v in vector) == pytest.approx(1.0, abs=1e-4)
    assert reply.usage.prompt_tokens > 0


# ---- in-process: rows, limits, routing ---------------------------------------------------


def test_mock_embeddings_in_base64_are_little_endian_float32(client, auth, database_url):
    resp = embed(client, auth, model="mock", input=["a", "b"], encoding_format="base64")
    assert resp.status_code == 200
    data = resp.get_json()["data"]
    assert len(data) == 2
    vector = struct.unpack("<8f", base64.b64decode(data[0]["embedding"]))
    assert sum(v * v for v in vector) == pytest.approx(1.0, abs=1e-4)
    row = only_row(database_url)
    assert (row["endpoint"], row["provider"], row["outcome"]) == (EMBEDDINGS, "mock", "ok")


def test_embeddings_under_the_openai_alias_are_recorded_without_it(client, auth, database_url):
    resp = client.post("/openai/v1/embeddings", json={"model": "mock", "input": "x"}, headers=auth)
    assert resp.status_code == 200
    assert only_row(database_url)["endpoint"] == EMBEDDINGS


def test_no_usage_is_estimated_never_zero(client, auth, database_url):
    resp = embed(client, auth, model="no-usage", input="a" * 40)
    assert resp.status_code == 200
    row = only_row(database_url)
    assert (row["usage_source"], row["prompt_tokens"]) == ("estimated", 10)


def test_a_model_outside_the_allowlist_is_403(client, make_key, database_url, upstream):
    auth = bearer(make_key(models=["gpt-4.1"]))
    resp = embed(client, auth)
    assert resp.status_code == 403
    assert resp.get_json()["error"]["code"] == "model_not_allowed"
    assert only_row(database_url)["outcome"] == "forbidden"


def test_rpm_is_shared_with_chat_completions(client, make_key, database_url):
    auth = bearer(make_key(rpm=1))
    assert embed(client, auth, model="mock").status_code == 200
    resp = embed(client, auth, model="mock")
    assert resp.status_code == 429
    assert resp.get_json()["error"]["code"] == "rate_limit_exceeded"
    assert [r["outcome"] for r in read_calls(database_url)] == ["ok", "rate_limited"]


def test_a_budget_too_small_for_the_input_is_429(client, make_key, database_url, upstream):
    mark = marker()
    auth = bearer(make_key(budget_usd=1e-9))
    resp = embed(client, auth, input=f"{mark} " + "word " * 200)
    assert resp.status_code == 429
    assert resp.get_json()["error"]["code"] == "insufficient_quota"
    assert upstream.requests_for(mark) == []


def test_an_embedding_budget_reserves_no_output_tokens(client, make_key, database_url):
    # 4096 output tokens at 0.60 USD/1M would be 0.0025 USD: far over this budget.
    auth = bearer(make_key(budget_usd=0.0001))
    assert embed(client, auth).status_code == 200


def test_a_5xx_is_retried_before_the_answer(client, auth, upstream, database_url):
    mark = marker()
    upstream.plan(mark, {"status": 500})
    resp = embed(client, auth, input=mark)
    assert resp.status_code == 200
    assert len(upstream.requests_for(mark)) == 2
    row = only_row(database_url)
    assert (row["outcome"], row["attempts"]) == ("ok", 2)


def test_a_failing_model_falls_back(client, auth, upstream, database_url):
    mark = marker()
    resp = embed(client, auth, model="broken", input=mark, fallbacks=["gpt-4o-mini"])
    assert resp.status_code == 200
    sent = upstream.requests_for(mark)
    assert [r.body["model"] for r in sent][-1] == "echo"
    assert all("fallbacks" not in r.body for r in sent)
    row = only_row(database_url)
    assert (row["model"], row["upstream_model"], row["outcome"]) == ("broken", "echo", "ok")


# ---- validation: 400 before anything goes upstream ---------------------------------------


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"model": None}, "model"),
        ({"model": ""}, "model"),
        ({"input": None}, "input"),
        ({"input": ""}, "input"),
        ({"input": []}, "input"),
        ({"input": [""]}, "input"),
        ({"input": ["a", 1]}, "input"),
        ({"input": [[1, 2], []]}, "input"),
        ({"input": ["x"] * 2049}, "input"),
        ({"input": [True]}, "input"),
        ({"dimensions": 0}, "dimensions"),
        ({"dimensions": "8"}, "dimensions"),
        ({"encoding_format": "int8"}, "encoding_format"),
        ({"user": 7}, "user"),
    ],
)
def test_invalid_embeddings_requests_are_refused_before_the_upstream(
    client, auth, upstream, database_url, changes, param
):
    body = {"model": "gpt-4o-mini", "input": "hello"} | changes
    body = {k: v for k, v in body.items() if v is not None}
    received = len(upstream.received)
    resp = client.post(EMBEDDINGS, json=body, headers=auth)
    assert resp.status_code == 400, resp.get_json()
    error = resp.get_json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    assert len(upstream.received) == received
    assert only_row(database_url)["outcome"] == "invalid_request"


@pytest.mark.parametrize("given", ["one", ["a", "b"], [1, 2, 3], [[1, 2], [3]], ["x"] * 2048])
def test_every_documented_input_form_is_forwarded_as_sent(client, auth, upstream, given):
    mark = marker()
    body = {"model": "gpt-4o-mini", "input": given, "vendor_field": {"kept": True}, "user": mark}
    assert client.post(EMBEDDINGS, json=body, headers=auth).status_code == 200
    sent = [r for r in upstream.received if r.body.get("user") == mark]
    assert [r.body for r in sent] == [body | {"model": "echo"}]
