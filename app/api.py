"""The OpenAI-compatible routes, served under /v1 and, as an alias, /openai/v1 (SPEC 1).

Views parse, call one service, and return. Every call to these routes gets one ledger row:
calls that are answered here are recorded by `record_unforwarded` after the response is built;
forwarded calls are recorded by the relay.
"""

from __future__ import annotations

import json
import re
import select
import socket
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, g, jsonify, request

from .call import Call, Outcome
from .errors import ApiError, invalid_request, outcome_for_status, unauthorized
from .keys import ClientKey
from .limiter import rate_headers, subjects_of
from .models import utcnow
from .relay import JSONAnswer, StreamAnswer
from .schemas import ChatCompletionRequestSchema, first_error
from .services import services
from .stored import StoredCompletions, list_query, page_query

API_PREFIXES = ("/v1/", "/openai/v1/")
_POLLRDHUP = getattr(select, "POLLRDHUP", 0x2000)  # the peer closed its end (Linux)
_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,200}$")
_CHAT_SCHEMA = ChatCompletionRequestSchema()
STARTED = int(time.time())

v1 = Blueprint("v1", __name__)


def _is_api_call() -> bool:
    return request.path.startswith(API_PREFIXES) or request.path in ("/v1", "/openai/v1")


def begin_call() -> None:
    """Before every /v1 request: open the call's record (in memory) with its request id."""
    if not _is_api_call():
        return
    given = request.headers.get("X-Request-Id", "")
    endpoint = request.path.removeprefix("/openai")
    g.call = Call(
        endpoint=endpoint,
        request_id=given if _REQUEST_ID.match(given) else None,
        client_ip=request.remote_addr,
    )


def record_unforwarded(response: Response) -> Response:
    """After every /v1 request: add the id headers; write the row unless the relay owns it."""
    call: Call | None = g.get("call")
    if call is None:
        return response
    response.headers["x-request-id"] = call.request_id or call.id
    windows = g.get("rate_windows")
    if windows:
        response.headers.extend(rate_headers(windows))
    if call.answered and call.provider:
        response.headers["x-switchboard-provider"] = call.provider
    if g.get("streaming") or call.recorded:
        return response
    status = response.status_code
    error = None
    if status >= 400:
        payload = response.get_json(silent=True) if response.is_json else None
        if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            error = str(payload["error"].get("message"))[:500]
    services().ledger.finish(call, Outcome(outcome_for_status(status), status, error=error))
    return response


def authenticate(call: Call) -> ClientKey:
    """The calling key from `Authorization: Bearer`; raises 401 for anything else."""
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise unauthorized(
            "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'."
        )
    key = services().keys.authenticate(secret)
    if key is None:
        raise unauthorized("Incorrect API key provided.")
    call.key_id, call.key_name, call.user, call.team = key.id, key.name, key.user, key.team
    if key.revoked:
        raise unauthorized("This API key has been revoked.")
    if not key.usable(utcnow()):
        raise unauthorized("This API key has expired.")
    return key


def json_body() -> dict[str, Any]:
    """The request's JSON object; raises 400 for a wrong content type or malformed JSON."""
    if request.mimetype != "application/json":
        raise invalid_request("Content-Type must be application/json.")
    try:
        body = json.loads(request.get_data(cache=False), parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        raise invalid_request(
            "We could not parse the JSON body of your request. Expected a JSON object."
        ) from exc
    if not isinstance(body, dict):
        raise invalid_request("The request body must be a JSON object.")
    return body


def _no_constants(name: str) -> None:
    # NaN and Infinity are not JSON: Python's parser accepts them, the OpenAI API does not.
    raise ValueError(f"{name} is not a JSON value")


def validate_chat(body: dict[str, Any]) -> None:
    errors = _CHAT_SCHEMA.validate(body)
    if errors:
        param, message = first_error(errors)
        raise invalid_request(f"Invalid value for '{param}': {message}", param=param)


@v1.post("/chat/completions")
def create_chat_completion() -> Response:
    call: Call = g.call
    key = authenticate(call)
    body = json_body()
    if isinstance(body.get("model"), str):
        call.model = body["model"]
    validate_chat(body)
    subjects = subjects_of(key)
    g.rate_windows = services().limiter.admit(subjects)
    call.token_limits = [(s.ident, s.tpm) for s in subjects if s.tpm]
    answer = services().relay.relay_chat(call, body, key)
    return _to_response(answer)


def client_probe(environ: dict[str, Any]) -> Callable[[], bool] | None:
    """A check that the client closed its connection (gunicorn's plain sockets), or None.

    One `poll` with no wait per call (under a microsecond): nothing to read means connected;
    a hang-up, or an end of file where the next request would be, means gone.
    """
    sock = environ.get("gunicorn.socket")
    if type(sock) is not socket.socket:
        return None  # TLS or another server: rely on the write failing instead
    poller = select.poll()
    poller.register(sock, select.POLLIN | _POLLRDHUP)
    closed = select.POLLHUP | select.POLLERR | _POLLRDHUP

    def gone() -> bool:
        events = poller.poll(0)
        if not events:
            return False
        if events[0][1] & closed:
            return True
        try:
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True

    return gone


def _to_response(answer: JSONAnswer | StreamAnswer) -> Response:
    if isinstance(answer, StreamAnswer):
        g.streaming = True
        answer.events.client_gone = client_probe(request.environ)
        return Response(
            answer.events,
            status=200,
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    return Response(answer.body, status=answer.status, headers=answer.headers)


def _model_object(name: str) -> dict[str, Any]:
    """OpenAI's model object, plus `available`: false while no deployment is in rotation."""
    model = services().settings.models[name]
    return {
        "id": name,
        "object": "model",
        "created": model.created or STARTED,
        "owned_by": model.provider or "switchboard",
        "available": services().relay.available(model),
    }


@v1.get("/models")
def list_models() -> Response:
    key = authenticate(g.call)
    names = [n for n in services().settings.models if key.allows(n)]
    return jsonify({"object": "list", "data": [_model_object(n) for n in names]})


@v1.get("/models/<path:model>")
def get_model(model: str) -> Response:
    key = authenticate(g.call)
    g.call.model = model
    if model not in services().settings.models or not key.allows(model):
        raise ApiError(
            404,
            f"The model '{model}' does not exist or you do not have access to it.",
            code="model_not_found",
            param="model",
        )
    return jsonify(_model_object(model))


# Stored completions (SPEC 1): the calling key's own; `call.model` stays unset, so these calls
# count as no model's usage.


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


def init_app(app: Flask) -> None:
    app.before_request(begin_call)
    app.after_request(record_unforwarded)
    app.register_blueprint(v1, url_prefix="/v1")
    app.register_blueprint(v1, url_prefix="/openai/v1", name="openai_v1")
