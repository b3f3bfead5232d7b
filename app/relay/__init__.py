"""Relaying a call upstream: routing over deployments, retries before the first byte,
fallbacks, cooldowns and deadlines (`loop`, `cooldown`), the transport and SSE relaying
(`transport`, `sse`, `streaming`), and one module per provider kind (`providers`).

Knows nothing of Flask. May import `capture`, `access`, `ledger` and the core modules.
"""
