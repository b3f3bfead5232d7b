"""The Alembic migrations, installed as `switchboard.migrations` (see pyproject.toml), so that
`switchboard db upgrade` finds them wherever Switchboard is installed."""
