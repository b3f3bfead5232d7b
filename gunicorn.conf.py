"""gunicorn settings for a source checkout: `gunicorn -c gunicorn.conf.py wsgi:app`.

The settings themselves ship inside the package (`switchboard.gunicorn_conf`, which
`switchboard serve` uses); this file re-exports them unchanged, hooks included.
"""

from switchboard.gunicorn_conf import *  # noqa: F403 - gunicorn reads the settings by name
