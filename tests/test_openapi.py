"""`GET /openapi.json` (docs/api.md, "OpenAPI"): generated from the request validators, every
route documented, and a schemathesis run against a live gunicorn: no 5xx of Switchboard's own,
and answers that match the document."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from switchboard.gateway import chat_schema
from switchboard.openapi import build_document, undocumented
from switchboard.openapi.operations import OPERATIONS

from tests.conftest import ADMIN_KEY, UPSTREAM_SECRET, Server, start_server, stop_server

# ---- the document, in-process ---------------------------------------------------------------


@pytest.fixture
def document(client: Any) -> dict[str, Any]:
    resp = client.get("/openapi.json")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    return resp.get_json()


def test_every_served_route_is_documented_and_every_documented_one_served(app, document):
    assert undocumented(app.url_map) == []
    documented = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    assert documented == {(op.method, op.path) for op in OPERATIONS}
    # The aliases (/openai/v1, /anthropic/v1) are said once, in the description.
    assert not [p for p in document["paths"] if p.startswith(("/openai/", "/anthropic/"))]
    assert {"/v1/chat/completions", "/v1/responses", "/v1/messages", "/v1/embeddings",
            "/admin/keys", "/metrics", "/healthz"} <= set(document["paths"])  # fmt: skip


def test_a_route_the_table_does_not_know_is_named(app):
    app.add_url_rule("/v1/brand-new", "brand_new", lambda: "")
    assert undocumented(app.url_map) == [("GET", "/v1/brand-new")]


def test_the_request_schemas_come_from_the_validators(document):
    schemas = document["components"]["schemas"]
    chat = schemas["ChatCompletionRequest"]
    validator = chat_schema.ChatCompletionRequestSchema()
    assert set(chat["properties"]) == {f.data_key or n for n, f in validator.fields.items()}
    assert {"model", "messages"} <= set(chat["required"])
    assert chat["properties"]["temperature"]["minimum"] == 0
    assert chat["properties"]["temperature"]["maximum"] == 2
    assert chat["properties"]["messages"]["minItems"] == 1
    body = document["paths"]["/v1/chat/completions"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ChatCompletionRequest"
    }
    assert "KeyCreateRequest" in schemas and "AnthropicMessageRequest" in schemas
    # Bodies the upstream defines point to the provider's reference.
    ok = document["paths"]["/v1/chat/completions"]["post"]["responses"]["200"]
    assert "platform.openai.com" in json.dumps(ok)
    assert set(ok["content"]) == {"application/json", "text/event-stream"}


def test_errors_have_their_apis_envelope(document):
    chat = document["paths"]["/v1/chat/completions"]["post"]["responses"]["default"]
    message = document["paths"]["/v1/messages"]["post"]["responses"]["default"]
    chat_schema_ = chat["content"]["application/json"]["schema"]
    assert chat_schema_["required"] == ["error"]
    assert message["content"]["application/json"]["schema"]["required"] == ["type", "error"]


def test_the_document_is_built_once_and_holds_no_secret(app, client):
    first, second = client.get("/openapi.json").data, client.get("/openapi.json").data
    assert first == second and app.extensions["openapi"] is not None
    assert build_document(app.url_map)["openapi"] == "3.0.3"
    assert UPSTREAM_SECRET.encode() not in first and ADMIN_KEY.encode() not in first


# ---- schemathesis against a live server -----------------------------------------------------


@pytest.fixture(scope="module")
def live(
    _fake_upstream: Any, databases: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    srv = start_server(
        tmp_path_factory.mktemp("openapi"), _fake_upstream.base_url, databases.fresh("openapi"),
        extra_env={"SWITCHBOARD_ADMIN_KEY": ADMIN_KEY},
    )  # fmt: skip
    srv.key = srv.create_key("--name", "fuzzed")
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module")
def live_session() -> Iterator[requests.Session]:
    """One HTTP session for the live checks, closed with the module: its connections are kept
    alive between cases."""
    with requests.Session() as session:
        yield session


@pytest.fixture(scope="module")
def live_schema(live: Server) -> Any:
    return schemathesis.openapi.from_url(live.base_url + "/openapi.json", timeout=10)


schema = schemathesis.pytest.from_fixture("live_schema")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.mark.integration
@schema.parametrize()
@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_the_live_api_matches_its_document(
    case: Any, live: Server, live_session: requests.Session
) -> None:
    admin = case.operation.path.startswith("/admin")
    secret = ADMIN_KEY if admin else live.key
    headers = {"Authorization": f"Bearer {secret}"}
    if case.operation.path.startswith("/v1/messages"):
        headers["x-api-key"] = live.key
    # An upstream failure is answered 502/503/504 in the documented envelope: the checks see
    # the relay's own answers; the fake upstream answers every model it is sent.
    case.call_and_validate(
        base_url=live.base_url, headers=headers, checks=CHECKS, timeout=20,
        session=live_session,
    )  # fmt: skip
