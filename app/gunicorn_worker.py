"""gunicorn's gthread worker with client keep-alive, where no request waits for a thread.

gthread accepts connections on its main loop and hands each to its thread pool; between two
requests a kept-alive connection goes back on the loop's poller and, once readable, to the
pool again. Holding more connections than threads, it queues a request (on a new connection
or a kept-alive one) behind busy threads, silently, for as long as their streams last.
gthread's own remedy, `worker_connections = threads`, turns keep-alive off altogether
(gunicorn warns "No keepalived connections can be handled").

`KeepAliveWorker` keeps both:

- it holds at most `threads` connections, busy or idle (`worker_connections` above `threads`
  is lowered to it), so any request it reads finds a free thread;
- a response keeps its connection open for the next request (up to `keepalive` seconds idle),
  with no separate cap on idle connections;
- full, it still accepts a new connection when one of its connections is idle, and closes its
  longest-idle kept-alive connection to make room: idle connections never hold off new ones.
  Closing an idle connection is what a server does at its keep-alive timeout anyway, and
  clients open a new one (the OpenAI and Anthropic SDKs retry a call whose kept-alive
  connection closed under it).

The gunicorn master loads this class (`worker_class` in `gunicorn_conf`); it imports only
gunicorn, never the application. docs/deployment.md, "Worker model", says why gthread.
"""

from __future__ import annotations

from typing import Any

from gunicorn.workers.gthread import ThreadWorker


class KeepAliveWorker(ThreadWorker):
    """gthread with keep-alive and never more connections than threads (module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.worker_connections = min(self.cfg.worker_connections, self.cfg.threads)
        # Idle connections count in worker_connections; they need no cap of their own.
        self.max_keepalived = self.worker_connections

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        # gthread's check warns that keep-alive is off whenever worker_connections <= threads.
        if cfg.worker_connections > cfg.threads:
            log.info(
                "worker_connections %s is lowered to the %s threads: a connection beyond "
                "the threads would wait for one",
                cfg.worker_connections,
                cfg.threads,
            )

    def set_accept_enabled(self, enabled: bool) -> None:
        # Full, the worker still accepts while it can close an idle connection for a new one.
        super().set_accept_enabled(enabled or (self.alive and bool(self.keepalived_conns)))

    def finish_request(self, conn: Any, fs: Any) -> None:
        super().finish_request(conn, fs)
        # A connection that just went idle can make room: listen again without waiting for
        # the main loop's next turn.
        if self.alive:
            self.set_accept_enabled(self.nr_conns < self.worker_connections)

    def accept(self, listener: Any) -> None:
        if self.nr_conns >= self.worker_connections and not self.keepalived_conns:
            # The idle connection that made room went busy earlier in this turn.
            self.set_accept_enabled(False)
            return
        before = self.nr_conns
        super().accept(listener)
        # Accepted first, so no idle connection is closed for a connection another worker took.
        if self.nr_conns > before and self.nr_conns > self.worker_connections:
            self._close_longest_idle()

    def on_client_socket_readable(self, conn: Any, client: Any) -> None:
        # An idle connection closed for room in this same turn of the poller has no request.
        if conn.sock.fileno() == -1:
            return
        super().on_client_socket_readable(conn, client)

    def _close_longest_idle(self) -> None:
        if not self.keepalived_conns:
            return
        conn = self.keepalived_conns.popleft()  # ordered by when each went idle
        try:
            self.poller.unregister(conn.sock)
        except (OSError, KeyError, ValueError):
            pass
        self.nr_conns -= 1
        conn.close()
