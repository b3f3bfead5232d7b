"""The documented operations: one row per (method, path) Switchboard serves, with who may call
it, the schema that validates its body or query, and its success answer. A served route
missing here is named by `document.undocumented` (tests/test_openapi.py fails on it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from marshmallow import Schema

from ..admin import schemas as admin_schemas
from ..gateway import chat_schema, embeddings_schema, messages_schema, responses_schema
from .answers import (
    ANTHROPIC_DOCS,
    ANTHROPIC_ERROR,
    DELETED,
    EVENTS_QUERY,
    MODEL,
    OPENAI_DOCS,
    OPENAI_ERROR,
    PAGE,
    PROMETHEUS,
    STORED_FILTERS,
    STORED_LIST,
    answer,
    listing,
    report,
    upstream,
)

SECURITY_SCHEMES = {
    "clientKey": {"type": "http", "scheme": "bearer", "description": "A Switchboard key."},
    "anthropicKey": {"type": "apiKey", "in": "header", "name": "x-api-key",
                     "description": "A Switchboard key, as Anthropic clients send it."},
    "adminKey": {"type": "http", "scheme": "bearer", "description": "SWITCHBOARD_ADMIN_KEY."},
    "metricsToken": {"type": "http", "scheme": "bearer",
                     "description": "The [metrics] token, when one is set."},
}  # fmt: skip
# family -> (who may call, the error envelope)
FAMILIES: dict[str, tuple[list[dict[str, list[str]]], dict[str, Any]]] = {
    "openai": ([{"clientKey": []}], OPENAI_ERROR),
    "anthropic": ([{"anthropicKey": []}, {"clientKey": []}], ANTHROPIC_ERROR),
    "admin": ([{"adminKey": []}], OPENAI_ERROR),
    "probe": ([], OPENAI_ERROR),
    "metrics": ([{}, {"metricsToken": []}], OPENAI_ERROR),
}


@dataclass(frozen=True)
class Operation:
    """One documented route: `path` in OpenAPI's form, `body` the schema that validates it,
    `parameters` its query (a schema's fields or a list), `ok` its success answer."""

    method: str
    path: str
    summary: str
    family: str
    ok: dict[str, Any]
    body: type[Schema] | None = None
    parameters: type[Schema] | list[dict[str, Any]] | None = None
    status: int = 200


def _op(method: str, path: str, summary: str, family: str, ok: dict[str, Any], **more: Any):
    return Operation(method, path, summary, family, ok, **more)


CHAT_DOCS, RESPONSES_DOCS = f"{OPENAI_DOCS}/chat", f"{OPENAI_DOCS}/responses"
OPERATIONS = (
    _op("POST", "/v1/chat/completions", "Create a chat completion", "openai",
        upstream("A chat completion", f"{CHAT_DOCS}/create", stream=True),
        body=chat_schema.ChatCompletionRequestSchema),
    _op("GET", "/v1/chat/completions", "List the calling key's stored completions", "openai",
        answer("Stored completions, a page of them.", STORED_LIST), parameters=STORED_FILTERS),
    _op("GET", "/v1/chat/completions/{completion_id}", "Get a stored completion", "openai",
        upstream("A stored chat completion", f"{CHAT_DOCS}/get")),
    _op("DELETE", "/v1/chat/completions/{completion_id}", "Delete a stored completion",
        "openai", answer("The completion is deleted.", DELETED)),
    _op("GET", "/v1/chat/completions/{completion_id}/messages",
        "List a stored completion's request messages", "openai",
        answer("Its messages, a page of them.", STORED_LIST), parameters=PAGE),
    _op("POST", "/v1/embeddings", "Create embeddings", "openai",
        upstream("An embeddings list", f"{OPENAI_DOCS}/embeddings/create"),
        body=embeddings_schema.EmbeddingRequestSchema),
    _op("POST", "/v1/responses", "Create a response (OpenAI Responses API)", "openai",
        upstream("A response object", f"{RESPONSES_DOCS}/create", stream=True),
        body=responses_schema.ResponseRequestSchema),
    _op("GET", "/v1/responses/{response_id}", "Get a response the calling key created",
        "openai", upstream("A response object", f"{RESPONSES_DOCS}/get", stream=True)),
    _op("DELETE", "/v1/responses/{response_id}", "Delete a response", "openai",
        upstream("The deletion", f"{RESPONSES_DOCS}/delete")),
    _op("GET", "/v1/responses/{response_id}/input_items", "List a response's input items",
        "openai", upstream("A list of input items", f"{RESPONSES_DOCS}/input-items")),
    _op("POST", "/v1/responses/{response_id}/cancel", "Cancel a background response",
        "openai", upstream("A response object", f"{RESPONSES_DOCS}/cancel")),
    _op("POST", "/v1/messages", "Create a message (Anthropic Messages API)", "anthropic",
        upstream("A message", f"{ANTHROPIC_DOCS}/messages", stream=True),
        body=messages_schema.MessageRequestSchema),
    _op("POST", "/v1/messages/count_tokens", "Count a message's tokens", "anthropic",
        upstream("A token count", f"{ANTHROPIC_DOCS}/messages-count-tokens"),
        body=messages_schema.TokenCountRequestSchema),
    _op("GET", "/v1/models", "List the models the calling key may use", "openai",
        answer("The models.", {"type": "object", "required": ["object", "data"],
               "properties": {"object": {"type": "string", "enum": ["list"]},
                              "data": {"type": "array", "items": MODEL}}})),
    _op("GET", "/v1/models/{model}", "Get a model", "openai", answer("The model.", MODEL)),
    _op("GET", "/admin/keys", "List the keys", "admin", listing("keys")),
    _op("POST", "/admin/keys", "Create a key", "admin",
        answer("The key, with its secret `key`, shown this once."), status=201,
        body=admin_schemas.KeyCreateRequestSchema),
    _op("GET", "/admin/keys/{key_id}", "Get a key", "admin", answer("The key.")),
    _op("PATCH", "/admin/keys/{key_id}", "Change a key", "admin", answer("The key."),
        body=admin_schemas.KeyUpdateRequestSchema),
    _op("DELETE", "/admin/keys/{key_id}", "Revoke a key", "admin", answer("The revoked key.")),
    _op("GET", "/admin/teams", "List the teams", "admin", listing("teams")),
    _op("POST", "/admin/teams", "Create a team", "admin", answer("The team."), status=201,
        body=admin_schemas.TeamCreateRequestSchema),
    _op("GET", "/admin/teams/{name}", "Get a team", "admin", answer("The team.")),
    _op("PATCH", "/admin/teams/{name}", "Change a team's limits and budget", "admin",
        answer("The team."), body=admin_schemas.TeamUpdateRequestSchema),
    _op("GET", "/admin/events", "The admin event log, newest first", "admin",
        listing("admin events"), parameters=EVENTS_QUERY),
    _op("GET", "/admin/usage", "Usage aggregates", "admin",
        report("Usage aggregates."), parameters=admin_schemas.UsageQuerySchema),
    _op("GET", "/admin/calls", "Ledger rows, newest first", "admin",
        report("Ledger rows, a page of them."), parameters=admin_schemas.CallsQuerySchema),
    _op("GET", "/healthz", "The process is alive", "probe", answer("Alive.")),
    _op("GET", "/readyz", "The database answers (503 otherwise)", "probe", answer("Ready.")),
    _op("GET", "/metrics", "Prometheus metrics", "metrics", PROMETHEUS),
    _op("GET", "/openapi.json", "This document", "probe", answer("The OpenAPI document.")),
)  # fmt: skip
