"""What answers look like in the document: the error envelopes, Switchboard's own answers, and
the bodies the upstream defines, which point to the provider's reference instead of copying it;
and the query parameters that no schema reads."""

from __future__ import annotations

from typing import Any

from ..capture.stored import DEFAULT_LIMIT, MAX_LIMIT, ORDERS

OPENAI_DOCS = "https://platform.openai.com/docs/api-reference"
ANTHROPIC_DOCS = "https://docs.anthropic.com/en/api"
STRING: dict[str, Any] = {"type": "string"}

OPENAI_ERROR = {
    "type": "object",
    "description": "OpenAI's error envelope (an upstream's 4xx answer is passed back as sent).",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {
                "message": STRING,
                "type": STRING,
                "param": {"type": "string", "nullable": True},
                "code": {"type": "string", "nullable": True},
            },
        }
    },
}
ANTHROPIC_ERROR = {
    "type": "object",
    "description": "Anthropic's error envelope: invalid_request_error (400, 404, 413), "
    "authentication_error (401), permission_error (403), rate_limit_error (429), api_error "
    "(500, 502, 503), timeout_error (504); an upstream's overloaded_error (529) as sent.",
    "required": ["type", "error"],
    "properties": {
        "type": {"type": "string", "enum": ["error"]},
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {"type": STRING, "message": STRING},
        },
    },
}
REQUEST_ID = {"x-request-id": {"description": "The call's request id.", "schema": STRING}}


def upstream(what: str, docs: str, stream: bool = False) -> dict[str, Any]:
    """An answer whose body the upstream API defines: described by its reference, not here."""
    body = {
        "type": "object",
        "description": f"{what}, as the upstream answered it.",
        "externalDocs": {"description": "The provider's API reference", "url": docs},
    }
    content: dict[str, Any] = {"application/json": {"schema": body}}
    if stream:
        events = {"type": "string", "description": "Server-sent events, relayed as they come."}
        content["text/event-stream"] = {"schema": events}
    return {"description": f"{what} (the provider's reference: {docs}).", "content": content}


def answer(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON answer of Switchboard's own (any object when `schema` is not given)."""
    body = schema or {"type": "object"}
    return {"description": description, "content": {"application/json": {"schema": body}}}


def listing(of: str) -> dict[str, Any]:
    items = {"type": "array", "items": {"type": "object"}}
    schema = {
        "type": "object",
        "required": ["object", "data"],
        "properties": {"object": {"type": "string", "enum": ["list"]}, "data": items},
    }
    return answer(f"A list of {of}.", schema)


def report(what: str) -> dict[str, Any]:
    """A report answered as JSON, or as CSV or a text table (`format`)."""
    text = {"schema": STRING}
    json_body = {"schema": {"type": "object", "required": ["object", "data"]}}
    content = {"application/json": json_body, "text/csv": text, "text/plain": text}
    return {"description": what, "content": content}


MODEL = {
    "type": "object",
    "required": ["id", "object", "created", "owned_by"],
    "properties": {
        "id": STRING,
        "object": {"type": "string", "enum": ["model"]},
        "created": {"type": "integer"},
        "owned_by": STRING,
        "available": {"type": "boolean"},
    },
}
NULLABLE_ID = {"type": "string", "nullable": True}
STORED_LIST = {
    "type": "object",
    "required": ["object", "data", "first_id", "last_id", "has_more"],
    "properties": {"object": {"type": "string", "enum": ["list"]},
                   "data": {"type": "array", "items": {"type": "object"}},
                   "first_id": NULLABLE_ID, "last_id": NULLABLE_ID,
                   "has_more": {"type": "boolean"}},
}  # fmt: skip
DELETED = {
    "type": "object",
    "required": ["object", "id", "deleted"],
    "properties": {"object": {"type": "string", "enum": ["chat.completion.deleted"]},
                   "id": STRING, "deleted": {"type": "boolean"}},
}  # fmt: skip
PROMETHEUS = {
    "description": "Prometheus text exposition.",
    "content": {"text/plain": {"schema": STRING}},
}

# ---- query parameters that no schema reads ----------------------------------------------


def query(name: str, schema: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema} | more


PAGE = [
    query("after", STRING),
    query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                    "default": DEFAULT_LIMIT}),
    query("order", {"type": "string", "enum": list(ORDERS)}),
]  # fmt: skip
STORED_FILTERS = [
    query("model", STRING),
    query("metadata", {"type": "object", "additionalProperties": STRING},
          style="deepObject", explode=True, description="`metadata[key]=value` filters."),
    *PAGE,
]  # fmt: skip
EVENTS_QUERY = [query("limit", {"type": "integer", "default": 100}), query("key", STRING)]
