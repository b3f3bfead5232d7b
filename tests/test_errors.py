"""The OpenAI error envelope everywhere (docs/api.md), and the row of every rejected call."""

from __future__ import annotations

import dataclasses

import pytest
from switchboard import create_app

from tests.conftest import read_calls
from tests.helpers import bearer, post_chat

HELLO = [{"role": "user", "content": "Hello"}]


def assert_envelope(resp, status, type_, code=None):
    assert resp.status_code == status
    assert resp.mimetype == "application/json"
    error = resp.get_json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == type_
    if code is not None:
        assert error["code"] == code
    assert "Traceback" not in resp.get_data(as_text=True)
    return error


@pytest.mark.parametrize("header", [None, "Bearer", "Basic abc", "Bearer sb-unknown"])
def test_missing_or_unknown_key_is_401(client, database_url, upstream, header):
    headers = {"Authorization": header} if header else {}
    resp = post_chat(client, headers, messages=HELLO)
    assert_envelope(resp, 401, "authentication_error", "invalid_api_key")
    assert upstream.received == []
    [row] = read_calls(database_url)
    assert (row["outcome"], row["status_code"], row["endpoint"]) == (
        "unauthorized",
        401,
        "/v1/chat/completions",
    )


def test_revoked_key_is_401_and_row_names_the_key(app, client, make_key, database_url):
    key = make_key("gone")
    app.extensions["switchboard"].keys.revoke("gone")
    resp = client.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
    error = assert_envelope(resp, 401, "authentication_error", "invalid_api_key")
    assert "revoked" in error["message"]
    [row] = read_calls(database_url)
    assert (row["key_name"], row["outcome"]) == ("gone", "unauthorized")


def test_unknown_model_is_404_model_not_found(client, auth, upstream, database_url):
    resp = post_chat(client, auth, model="gpt-9", messages=HELLO)
    error = assert_envelope(resp, 404, "invalid_request_error", "model_not_found")
    assert error["param"] == "model"
    assert upstream.received == []
    [row] = read_calls(database_url)
    assert (row["model"], row["outcome"], row["status_code"]) == ("gpt-9", "invalid_request", 404)


def test_model_outside_allowlist_is_403(client, make_key, upstream, database_url):
    key = make_key("narrow", models=["mock"])
    resp = post_chat(client, bearer(key), messages=HELLO)
    assert_envelope(resp, 403, "permission_error", "model_not_allowed")
    assert upstream.received == []
    assert read_calls(database_url)[0]["outcome"] == "forbidden"


def test_body_over_the_limit_is_413(settings, make_key, upstream, database_url):
    small = create_app(dataclasses.replace(settings, max_body_bytes=2048))
    try:
        key = small.extensions["switchboard"].keys.create(name="big")[1]
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 5000}]}
        resp = post_chat(small, bearer(key), **body)
        assert_envelope(resp, 413, "invalid_request_error", "request_too_large")
        assert upstream.received == []
        assert read_calls(database_url)[0]["status_code"] == 413
    finally:
        small.extensions["switchboard"].close()


def test_unknown_route_under_v1_is_json_404_and_recorded(client, auth, database_url):
    resp = client.post("/v1/no-such-route", json={}, headers=auth)
    assert_envelope(resp, 404, "invalid_request_error")
    [row] = read_calls(database_url)
    assert (row["endpoint"], row["status_code"]) == ("/v1/no-such-route", 404)


def test_wrong_method_is_json_405(client, auth):
    resp = client.put("/v1/models", headers=auth)
    assert_envelope(resp, 405, "invalid_request_error")


def test_routes_outside_v1_also_answer_json(client, database_url):
    resp = client.get("/nothing-here")
    assert_envelope(resp, 404, "invalid_request_error")
    assert read_calls(database_url) == []


def test_invalid_request_id_header_is_replaced(client, auth, database_url):
    resp = client.get("/v1/models", headers=auth | {"X-Request-Id": "bad id with spaces"})
    [row] = read_calls(database_url)
    assert resp.headers["x-request-id"] == row["id"] == row["request_id"]


def test_models_listing_is_recorded(client, auth, database_url):
    assert client.get("/openai/v1/models", headers=auth).status_code == 200
    [row] = read_calls(database_url)
    assert (row["endpoint"], row["outcome"], row["key_name"]) == (
        "/v1/models",
        "ok",
        "alice-laptop",
    )
    assert row["usage_source"] == "absent" and row["total_tokens"] is None


@pytest.mark.parametrize(
    "path",
    ["/v1/chat/completions/abc%00def", "/v1/chat/completions?model=%00", "/v1/models/%00"],
)
def test_a_nul_in_the_url_is_400_and_recorded(client, database_url, path):
    resp = client.get(path)
    assert_envelope(resp, 400, "invalid_request_error")
    [row] = read_calls(database_url)
    assert (row["outcome"], row["status_code"]) == ("invalid_request", 400)
    assert "\x00" not in row["endpoint"]
