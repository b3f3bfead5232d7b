"""The stored-completions routes (docs/ledger.md, "Stored completions"): the calling key's
own captured calls. `call.model` stays unset, so these calls count as no model's usage."""

from __future__ import annotations

from flask import Response, g, jsonify, request

from ..capture.stored import StoredCompletions, list_query, page_query
from ..services import services
from .blueprint import v1
from .calls import authenticate


def stored_completions() -> StoredCompletions:
    """The stored-completions service on this app's database (stateless, cheap to make)."""
    return StoredCompletions(services().db)


@v1.get("/chat/completions")
def list_stored_completions() -> Response:
    key = authenticate(g.call)
    return jsonify(stored_completions().list(key.id, list_query(request.args)))


@v1.get("/chat/completions/<completion_id>")
def get_stored_completion(completion_id: str) -> Response:
    key = authenticate(g.call)
    return jsonify(stored_completions().get(key.id, completion_id))


@v1.get("/chat/completions/<completion_id>/messages")
def list_stored_messages(completion_id: str) -> Response:
    key = authenticate(g.call)
    page = page_query(request.args)
    return jsonify(stored_completions().messages(key.id, completion_id, page))


@v1.delete("/chat/completions/<completion_id>")
def delete_stored_completion(completion_id: str) -> Response:
    key = authenticate(g.call)
    return jsonify(stored_completions().delete(key.id, completion_id))
