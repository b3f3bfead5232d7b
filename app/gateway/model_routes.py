"""GET /v1/models and /v1/models/{model}: the models the calling key may use (docs/api.md)."""

from __future__ import annotations

import time
from typing import Any

from flask import Response, g, jsonify

from ..errors import model_not_found
from ..services import services
from .blueprint import v1
from .calls import authenticate

STARTED = int(time.time())


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
        raise model_not_found(model)
    return jsonify(_model_object(model))
