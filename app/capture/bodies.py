"""Body capture (docs/ledger.md): which calls keep their request and response, and how.

A call is captured when its request has `store: true`, or `[capture]` turns capture on for
every call, for its key or for its model; `BodyCapture.wants()` decides once, before the call is
forwarded, and an uncaptured call does no capture work at all. Only successful (200) chat
completions are kept: the request as the client sent it (less Switchboard's own `fallbacks`)
and the completion as the client received it; for a stream, the `chat.completion` its chunks
amount to (`StreamAssembly`, fed by the stream relay as each chunk passes and built once at
the end). Every string of both goes through the redaction patterns before it is kept, and
strings are cut so that each body stays under `MAX_BODY_CHARS`.

The row (`stored_completions`) is written through the ledger, after the call's own row and
through the same local spool when the database is down. Capture never fails a call: a failure
is logged, without the bodies, and the call goes on.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from ..access.keys import ClientKey
from ..config import Capture
from ..ledger.call import Call
from ..ledger.ledger import Ledger
from .assembly import StreamAssembly

log = logging.getLogger("switchboard.capture")

REDACTED = "[REDACTED]"
# Each stored body (request, response) is kept under this many characters of JSON.
MAX_BODY_CHARS = 1_000_000
# Strings are cut to this length at the most before a body is given up as too large.
MIN_STRING_CUT = 256
# The widths of the stored_completions columns that are not Text.
ID_WIDTH = 200
MODEL_WIDTH = 200


class BodyTooLarge(Exception):
    """A body stays over `MAX_BODY_CHARS` even with every string cut short."""


class BodyCapture:
    """Decides which calls are captured and writes their redacted bodies.

    Built once at start-up from the `[capture]` settings; the redaction patterns are compiled
    here, once.
    """

    def __init__(self, config: Capture, ledger: Ledger) -> None:
        self.ledger = ledger
        self.all = config.all
        self.keys = frozenset(config.keys)
        self.models = frozenset(config.models)
        self.patterns = tuple(re.compile(p) for p in config.patterns())

    def wants(self, body: dict[str, Any], key: ClientKey) -> bool:
        """Whether the call's bodies are kept: `store: true`, or the configuration says so for
        every call, the key's name or the model as requested."""
        return (
            body.get("store") is True
            or self.all
            or key.name in self.keys
            or body.get("model") in self.models
        )

    def store(self, call: Call, body: dict[str, Any], completion: Any) -> None:
        """Keep the call's request `body` and the `completion` the client received (a parsed
        chat.completion object). Never raises: a failure is logged without the bodies."""
        try:
            if not isinstance(completion, dict):
                log.warning("call %s not captured: the completion is not a JSON object", call.id)
                return
            self.ledger.store(self._row(call, body, completion))
        except BodyTooLarge:
            log.warning("call %s not captured: its bodies are too large even when cut", call.id)
        except Exception as exc:  # noqa: BLE001 - capture must never fail the call
            # The type only: a message could quote the bodies or the statement's parameters.
            log.warning("call %s not captured: %s", call.id, type(exc).__name__)

    def store_stream(self, call: Call, body: dict[str, Any], assembly: StreamAssembly) -> None:
        """Keep a streamed call: its request and the completion its chunks amount to."""
        try:
            completion = assembly.completion()
        except Exception as exc:  # noqa: BLE001 - capture must never fail the call
            log.warning("call %s not captured: %s", call.id, type(exc).__name__)
            return
        self.store(call, body, completion)

    def _row(self, call: Call, body: dict[str, Any], completion: dict[str, Any]) -> dict[str, Any]:
        """The `stored_completions` row: every column, redacted, within the column widths."""
        given = completion.get("id")  # before redaction: the id exactly as the client saw it
        # A string longer than a whole body is cut anyway: cut it before the redaction scans
        # it (a base64 image of megabytes costs every pattern a pass otherwise).
        request = {k: v for k, v in body.items() if k != "fallbacks"}
        request = self.redact(_cut_strings(request, MAX_BODY_CHARS))
        response = self.redact(_cut_strings(completion, MAX_BODY_CHARS))
        # The id the client saw; the call's own when the upstream gave none (or an odd one),
        # so that every stored completion can be found and paged through.
        completion_id = _clean(given)[:ID_WIDTH] if isinstance(given, str) and given else call.id
        response["id"] = completion_id
        metadata = request.get("metadata")
        return {
            "call_id": call.id,
            "id": completion_id,
            "key_id": call.key_id,
            "created_at": call.created_at,
            "model": _clean(call.model or str(body.get("model") or ""))[:MODEL_WIDTH] or None,
            "request_metadata": _dumps(metadata, True) if isinstance(metadata, dict) else None,
            "request_body": fit(request),
            "response_body": fit(response),
        }

    def redact(self, value: Any) -> Any:
        """A copy of the JSON `value` with every match of every pattern, in every string,
        replaced by "[REDACTED]"."""
        if isinstance(value, str):
            for pattern in self.patterns:
                value = pattern.sub(REDACTED, value)
            return value
        if isinstance(value, dict):
            # Keys too: a secret can be a metadata key as well as a value.
            return {self.redact(k): self.redact(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.redact(v) for v in value]
        return value


def fit(value: Any, limit: int = MAX_BODY_CHARS) -> str:
    """The JSON text of `value`, at most `limit` characters: the longest strings are cut
    (and say so) until it fits. Raises `BodyTooLarge` when even short strings do not fit."""
    text = _dumps(value)
    cut = limit // 4
    while len(text) > limit:
        if cut < MIN_STRING_CUT:
            raise BodyTooLarge
        value = _cut_strings(value, cut)
        text = _dumps(value)
        cut //= 2
    return text


def _cut_strings(value: Any, cut: int) -> Any:
    if isinstance(value, str):
        if len(value) <= cut:
            return value
        return value[:cut] + f"...[{len(value) - cut} characters not kept]"
    if isinstance(value, dict):
        return {k: _cut_strings(v, cut) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut_strings(v, cut) for v in value]
    return value


def _dumps(value: Any, sort_keys: bool = False) -> str:
    """Compact JSON (the metadata filter looks for `"k":"v"` in the metadata's), valid UTF-8
    whatever the client sent (a lone surrogate would fail the write, and its replay)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys)
    return _clean(text)


def _clean(text: str) -> str:
    """`text` as it can be written to any database: no NUL, no lone surrogate."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text.replace("\x00", "")
