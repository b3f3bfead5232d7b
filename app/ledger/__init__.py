"""The audit trail: one complete, honest row per call, whatever fails around it
(docs/ledger.md).

`ledger.Ledger` is what the rest calls (`open`, `finish`, `store`); `writes` holds the SQL with
the usage roll-up (`rollup`), `failover` writes or spools (`spool`), `liveness` and `sweeper`
close the calls of dead workers, `serving` runs the ledger's tasks beside gunicorn, and
`retention` prunes. `call` and `outcomes` are a call's record; `usage` its tokens and cost.
May import only the core modules: everything else depends on it, never the reverse.
"""
