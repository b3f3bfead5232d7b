"""Which models and deployments a call may go to (docs/routing.md): the model asked for if
the key may use it, its fallbacks, the deployments that speak the call's API, the deployment
a continued response is pinned to, and the body sent there.
"""

from __future__ import annotations

from typing import Any

from ..access.keys import ClientKey
from ..catalog import Deployment, Model, Provider
from ..config import Settings
from ..errors import ApiError, model_not_allowed, model_not_found
from .affinity import Pin
from .apis import CHAT, ROUTES, Api
from .providers import SERVES


class Routes:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # (model, API) -> the deployments that speak it: the configuration never changes in a
        # process, so each is worked out once, not on every call.
        self._serving: dict[tuple[str, str], tuple[Deployment, ...]] = {}

    def resolve(self, name: str, key: ClientKey) -> Model:
        """The configured model `name` if the key may use it; raises 404 or 403."""
        model = self.settings.models.get(name)
        if model is None:
            raise model_not_found(name)
        if not key.allows(name):
            raise model_not_allowed(name)
        return model

    def serving(self, model: Model, api: Api) -> tuple[Deployment, ...]:
        """The model's deployments whose provider speaks `api`."""
        found = self._serving.get((model.name, api.name))
        if found is None:
            providers = self.settings.providers
            found = tuple(
                d for d in model.deployments if api.name in SERVES[providers[d.provider].kind]
            )
            self._serving[(model.name, api.name)] = found
        return found

    def check_serves(self, model: Model, api: Api) -> None:
        """Raise 400 (`param: model`) when no deployment of `model` speaks `api`; the message
        names the endpoints the model is served on."""
        if not model.deployments or self.serving(model, api):
            return
        kinds = {self.settings.providers[d.provider].kind for d in model.deployments}
        names = set().union(*(SERVES[k] for k in kinds))
        served = ", ".join(ROUTES[name] for name in ROUTES if name in names)
        raise ApiError(
            400,
            f"The model '{model.name}' is not served on {ROUTES[api.name]}; it is served on "
            f"{served}.",
            "invalid_request_error",
            "model_not_supported_on_endpoint",
            "model",
        )

    def candidates(
        self, model: Model, body: dict[str, Any], key: ClientKey, api: Api = CHAT
    ) -> list[Model]:
        """The model, its configured fallbacks, then the request's: known, allowed, serving
        `api`, once each."""
        names = [model.name, *model.fallbacks, *(body.get("fallbacks") or ())]
        chosen: list[Model] = [model]
        for name in dict.fromkeys(names[1:]):
            candidate = self.settings.models.get(name)
            if candidate is None or not key.allows(name) or candidate is model:
                continue
            if not candidate.deployments or self.serving(candidate, api):
                chosen.append(candidate)
        return chosen

    def pinned(self, model: Model, pin: Pin) -> Deployment:
        """The deployment of `model` a continued response must go to: the one that created
        it, or the model's deployment on the same provider; raises 400 if it has none."""
        same_provider = None
        for deployment in model.deployments:
            if deployment.id == pin.deployment.id:
                return deployment
            if same_provider is None and deployment.provider == pin.deployment.provider:
                same_provider = deployment
        if same_provider is None:
            raise ApiError(
                400,
                f"The previous response was created on provider '{pin.deployment.provider}', "
                f"where the model '{model.name}' is not deployed.",
                "invalid_request_error",
                "previous_response_not_reachable",
                "previous_response_id",
            )
        return same_provider


def upstream_payload(
    body: dict[str, Any], deployment: Deployment, provider: Provider, chat: bool = True
) -> tuple[dict[str, Any], bool]:
    """The body to send upstream, and whether the usage chunk must be hidden from the client.

    Every field the client sent is kept as sent; `model` is rewritten, `fallbacks` removed, and
    for chat streams `stream_options.include_usage` is asked for when the client did not (the
    other APIs' streams always carry their usage).
    """
    payload = dict(body)
    payload["model"] = deployment.upstream_model
    payload.pop("fallbacks", None)
    strip_usage = False
    if chat and payload.get("stream") is True and provider.stream_usage:
        options = payload.get("stream_options")
        if not (isinstance(options, dict) and options.get("include_usage") is True):
            payload["stream_options"] = dict(options or {}) | {"include_usage": True}
            strip_usage = True
    return payload, strip_usage
