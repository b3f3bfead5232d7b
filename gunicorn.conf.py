"""gunicorn settings for Switchboard (`switchboard serve` uses this file).

Worker model: gthread. An open stream holds one thread (about 80 KB), not a process, and
blocking libraries (requests, SQLAlchemy, psycopg, sqlite3) need no monkey-patching. See the
README, "Deployment", for why this and not gevent. Every value can be overridden by
GUNICORN_CMD_ARGS or the command line.
"""

import os

from app.serving import child_exit, on_starting, post_worker_init, worker_exit  # noqa: F401

bind = os.environ.get("SWITCHBOARD_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("SWITCHBOARD_WORKERS", "2"))
worker_class = "gthread"
# Threads per worker bound the open streams per worker: 2 x 512 covers 1,000 streams.
threads = int(os.environ.get("SWITCHBOARD_THREADS", "512"))
# Connections beyond the threads may only be idle keep-alive ones (64): active requests never
# wait silently in a queue behind busy threads.
worker_connections = threads + 64
# On gthread this is a heartbeat of the worker's main loop, never a limit on a long stream.
timeout = 60
# On SIGTERM/SIGHUP, in-flight calls (streams included) get this long to finish and record.
graceful_timeout = int(os.environ.get("SWITCHBOARD_GRACEFUL_TIMEOUT", "300"))
keepalive = 5
# Migrations are never run here: `switchboard db upgrade` runs them once.
preload_app = False
limit_request_line = 8190
