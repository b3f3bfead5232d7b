"""The `switchboard` command line (also `python -m switchboard`): the database, serving under
gunicorn, keys and teams, usage reports and the calls listing.

May import `reports`, `access`, `ledger`, `services`, `factory` and the core modules.
"""
