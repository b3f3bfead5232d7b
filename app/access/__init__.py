"""Who may call, and how much: client keys, teams, rate limits, budgets, and the admin event
log that records every change to them (docs/access.md).

`keys.KeyStore` authenticates; `limits.RateLimiter` admits calls under rpm/tpm; `budgets`
reserves a call's worst-case cost; `settlement.CallSettlement` settles tokens and cost when a
call ends. May import `ledger` (a call's record and usage) and the core modules.
"""
