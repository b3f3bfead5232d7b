"""The strict fields of the request schemas, in JSON Schema: what apispec's field converter
cannot read from a field's class (patterns held by validator functions, the fields that accept
one of several shapes). Used by `document.build_document`."""

from __future__ import annotations

from typing import Any

from apispec.ext.marshmallow.common import resolve_schema_cls
from marshmallow import Schema, fields

from ..gateway import chat_schema, embeddings_schema, messages_schema, responses_schema
from ..gateway import fields as strict
from .answers import STRING

SIMPLE_TYPES = {
    strict.StrictNumber: "number",
    strict.StrictInteger: "integer",
    strict.StrictBoolean: "boolean",
    strict.StrictString: "string",
    strict.JSONObject: "object",
}
# Validators that are functions: the pattern each one holds a name to.
PATTERNS = {
    chat_schema._named: chat_schema.NAME_PATTERN,
    messages_schema._tool_name: messages_schema.TOOL_NAME,
}
# Items that tell a fixed item schema from one chosen by the item's `type` or `role`.
PROBES = ({"type": "message"}, {"type": "function"}, {"type": "text"}, {"role": "user"})


def _object_array(converter: Any, field: responses_schema.ObjectArrayField) -> dict[str, Any]:
    fixed = field.pick({})
    items: dict[str, Any] = {"type": "object", "description": "An object with a string `type`."}
    if all(field.pick(probe) is fixed for probe in PROBES):
        items = converter.resolve_nested_schema(fixed)
    array = {"type": "array", "items": items} | ({"minItems": 1} if field.empty else {})
    return {"oneOf": [STRING, array]} if field.allow_string else array


def _content_part(converter: Any, kind: str, schema: Schema) -> dict[str, Any]:
    typed = {"type": "object", "required": ["type"], "properties": {"type": {"enum": [kind]}}}
    return {"allOf": [converter.resolve_nested_schema(schema), typed]}


def strict_field_properties(self: Any, field: fields.Field, **kwargs: Any) -> dict[str, Any]:
    """The JSON Schema of what a strict field accepts where its class does not say it (an
    attribute function of apispec's field converter, `self`)."""
    found: dict[str, Any] = {}
    for validator in field.validators:
        if validator in PATTERNS:
            found["pattern"] = f"^{PATTERNS[validator].pattern}$"
    if isinstance(field, chat_schema.MessageListField):
        items = self.resolve_nested_schema(field.schema)
        found |= {"type": "array", "minItems": 1, "items": items}
    elif isinstance(field, chat_schema.ContentField):
        parts = [_content_part(self, k, s) for k, s in chat_schema.PART_SCHEMAS.items()]
        found["oneOf"] = [STRING, {"type": "array", "items": {"oneOf": parts}}]
    elif isinstance(field, responses_schema.ObjectArrayField):
        found |= _object_array(self, field)
    elif isinstance(field, strict.ChoiceField):
        words = {"type": "string", "enum": list(field.words)}
        found["oneOf"] = [words, self.resolve_nested_schema(field.object_schema)]
    elif isinstance(field, strict.StopField):
        found["oneOf"] = [STRING, {"type": "array", "maxItems": 4, "items": STRING}]
    elif isinstance(field, strict.LogitBiasField):
        bias = {"type": "number", "minimum": -100, "maximum": 100}
        found |= {"type": "object", "additionalProperties": bias}
    elif isinstance(field, strict.MetadataField):
        value = {"type": "string", "maxLength": 512}
        found |= {"type": "object", "maxProperties": 16, "additionalProperties": value,
                  "description": "At most 16 pairs; keys of at most 64 characters."}  # fmt: skip
    elif isinstance(field, embeddings_schema.EmbeddingInputField):
        tokens = {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 0}}
        most = embeddings_schema.MAX_INPUTS
        found["oneOf"] = [
            {"type": "string", "minLength": 1},
            {"type": "array", "minItems": 1, "maxItems": most,
             "items": {"type": "string", "minLength": 1}},
            tokens,
            {"type": "array", "minItems": 1, "maxItems": most, "items": tokens},
        ]  # fmt: skip
    return found


def schema_name(schema: Any) -> str:
    """A component's name: the class name without `Schema`; Anthropic's get a prefix, since
    their names (`Message`, `Metadata`) are OpenAI's too."""
    cls = resolve_schema_cls(schema)
    cls = cls[0] if isinstance(cls, list) else cls
    name = str(cls.__name__).removesuffix("Schema")
    return "Anthropic" + name if cls.__module__ == messages_schema.__name__ else name
