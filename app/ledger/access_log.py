"""The access log (docs/deployment.md, "Logs"): one line per call, written once its ledger
row is complete, on the `switchboard.access` logger.

`key=value` pairs in a fixed order: request id, key name, model, provider, endpoint, status,
outcome, latency and time to first token (ms), tokens. Key names are labels, never secrets;
no key, no body and no upstream header is ever written.
"""

from __future__ import annotations

import logging

from .call import Call, CallEnd

log = logging.getLogger("switchboard.access")


def log_call(call: Call, end: CallEnd) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    usage = end.usage
    fields = (
        ("request_id", call.request_id),
        ("key", call.key_name),
        ("model", call.model),
        ("provider", call.provider),
        ("endpoint", call.endpoint),
        ("status", end.status_code),
        ("outcome", end.outcome),
        ("latency_ms", end.latency_ms),
        ("ttft_ms", end.ttft_ms),
        ("prompt_tokens", usage.prompt_tokens),
        ("completion_tokens", usage.completion_tokens),
    )
    # In the JSON format the same pairs are also fields of the line's object (logs.py).
    log.info(
        " ".join(f"{name}={_value(value)}" for name, value in fields),
        extra={"call": {name: value for name, value in fields}},
    )


def _value(value: object) -> str:
    if value is None:
        return "-"
    text = str(value)
    # One line per call, whatever a client put in its model name or request id.
    return text.replace("\n", "\\n").replace(" ", "_")[:200]
