"""Building the document from the app's url_map and `operations.OPERATIONS`, with apispec's
MarshmallowPlugin turning the request validators into component schemas."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from werkzeug.routing import Map

from .answers import REQUEST_ID, STRING, answer
from .fields import SIMPLE_TYPES, schema_name, strict_field_properties
from .operations import FAMILIES, OPERATIONS, SECURITY_SCHEMES, Operation

OPENAPI_VERSION = "3.0.3"
# Served under these prefixes too, as aliases of /v1 (documented once, under /v1).
ALIASES = ("/openai/v1/", "/anthropic/v1/")
# Not part of the API: the HTML dashboard and Flask's static files.
NOT_API = ("dashboard", "static")
DESCRIPTION = (
    "Switchboard's own API: the OpenAI-compatible relay routes, the Anthropic Messages routes, "
    "the admin API and the probes. Every /v1 route is also served under /openai/v1, and the "
    "Anthropic routes (/v1/messages...) under /anthropic/v1. Request schemas are generated from "
    "the validators; bodies the upstream defines are described by the provider's reference."
)

_RULE_ARGUMENT = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")
_PATH_ARGUMENT = re.compile(r"{([^{}]+)}")


def openapi_path(rule: str) -> str:
    """A Flask rule in OpenAPI's form: `/v1/models/<path:model>` is `/v1/models/{model}`."""
    return _RULE_ARGUMENT.sub(r"{\1}", rule)


def served(url_map: Map) -> set[tuple[str, str]]:
    """The (method, path) of every API route the app serves, aliases left out."""
    found = set()
    for rule in url_map.iter_rules():
        if rule.endpoint.split(".")[0] in NOT_API or rule.rule.startswith(ALIASES):
            continue
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            found.add((method, openapi_path(rule.rule)))
    return found


def undocumented(url_map: Map) -> list[tuple[str, str]]:
    """The served routes that `OPERATIONS` does not describe (none, when all is well)."""
    known = {(op.method, op.path) for op in OPERATIONS}
    return sorted(served(url_map) - known)


def _operation(op: Operation) -> dict[str, Any]:
    security, error = FAMILIES[op.family]
    ok = op.ok | ({"headers": REQUEST_ID} if op.family in ("openai", "anthropic") else {})
    spec: dict[str, Any] = {
        "summary": op.summary,
        "operationId": f"{op.method.lower()}{re.sub(r'[^A-Za-z0-9]+', '_', op.path)}",
        "tags": [op.family],
        "security": security,
        "responses": {str(op.status): ok, "default": answer("An error.", error)},
    }
    path_parameters = [
        {"name": name, "in": "path", "required": True, "schema": STRING}
        for name in _PATH_ARGUMENT.findall(op.path)
    ]
    if isinstance(op.parameters, type):
        path_parameters.append({"in": "query", "schema": op.parameters})
    elif op.parameters:
        path_parameters += op.parameters
    spec["parameters"] = path_parameters
    if op.body is not None:
        content = {"application/json": {"schema": op.body}}
        spec["requestBody"] = {"required": True, "content": content}
    return spec


def _operations(url_map: Map) -> Iterator[tuple[str, dict[str, Any]]]:
    present = served(url_map)
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        if (op.method, op.path) in present:
            paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    yield from paths.items()


def build_document(url_map: Map) -> dict[str, Any]:
    """The OpenAPI document of the routes in `url_map` (3.0.3, as a dict)."""
    plugin = MarshmallowPlugin(schema_name_resolver=schema_name)
    spec = APISpec(title="Switchboard", version="1", openapi_version=OPENAPI_VERSION,
                   plugins=[plugin], info={"description": DESCRIPTION})  # fmt: skip
    for field_cls, json_type in SIMPLE_TYPES.items():
        plugin.map_to_openapi_type(field_cls, json_type, None)
    assert plugin.converter is not None  # made by APISpec's plugin set-up
    plugin.converter.add_attribute_function(strict_field_properties)
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    for path, operations in _operations(url_map):
        spec.path(path=path, operations=operations)
    return spec.to_dict()
