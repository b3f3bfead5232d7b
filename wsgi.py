"""WSGI entry point of a source checkout: `gunicorn -c gunicorn.conf.py wsgi:app`."""

from switchboard import create_app

app = create_app()
