"""Client keep-alive under a real gunicorn (app/gunicorn_worker.py).

Calls on one client connection are served one after another on it; a worker never holds more
connections than threads, and when it is full, a new connection takes the place of the
longest-idle kept-alive one instead of waiting for it to time out.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.conftest import Server, read_calls, start_server, stop_server, wait_for
from tests.helpers import HELLO


def connect(server: Server) -> http.client.HTTPConnection:
    url = urlsplit(server.base_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=20)
    conn.connect()
    return conn


def call(
    conn: http.client.HTTPConnection, key: str, model: str = "gpt-4o-mini", stream: bool = False
) -> http.client.HTTPResponse:
    body = json.dumps({"model": model, "messages": HELLO, "stream": stream})
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    conn.request("POST", "/v1/chat/completions", body, headers)
    return conn.getresponse()


def closed_by_server(sock: socket.socket) -> bool:
    """True once the peer has closed `sock` (a read returns nothing, or the connection reset)."""
    sock.settimeout(0.2)
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_calls_on_one_connection_reuse_it(server):
    conn = connect(server)
    try:
        sock = conn.sock
        for _ in range(3):
            resp = call(conn, server.key)
            answer = json.loads(resp.read())
            assert resp.status == 200, answer
            assert resp.getheader("Connection", "").lower() != "close"
            assert not resp.will_close
        # http.client reconnects silently when a server closes: the socket is the first one.
        assert conn.sock is sock
    finally:
        conn.close()


@pytest.fixture
def small_server(tmp_path, databases, upstream) -> Iterator[Server]:
    """One worker with two threads, idle connections kept 30 s."""
    srv = start_server(
        tmp_path,
        upstream.base_url,
        databases.fresh("keepalive"),
        workers=1,
        extra_env={
            "SWITCHBOARD_THREADS": "2",
            "GUNICORN_CMD_ARGS": "--no-control-socket --graceful-timeout 20 --keep-alive 30",
        },
    )
    srv.key = srv.create_key("--name", "keepalive", "--user", "kim")
    yield srv
    stop_server(srv)


def test_a_full_worker_closes_its_longest_idle_connection_for_a_new_one(small_server):
    srv = small_server
    idle = connect(srv)
    streaming = connect(srv)
    newcomer = connect(srv)
    try:
        resp = call(idle, srv.key)
        resp.read()
        assert resp.status == 200 and not resp.will_close  # kept alive, for up to 30 s
        # The second thread: a stream of 60 chunks 0.1 s apart, read as it goes.
        stream = call(streaming, srv.key, model="long", stream=True)
        assert stream.status == 200
        assert stream.readline().startswith(b"data: ")
        # Both connections are the worker's two; this one is only accepted by closing the
        # idle one (otherwise it waits until the idle one's 30 s are up).
        started = time.monotonic()
        resp = call(newcomer, srv.key)
        answer = json.loads(resp.read())
        assert resp.status == 200, answer
        assert time.monotonic() - started < 10
        assert wait_for(lambda: closed_by_server(idle.sock), timeout=5)
        # The stream went on undisturbed.
        rest = stream.read()
        assert rest.rstrip().endswith(b"data: [DONE]")
        assert rest.count(b"data: ") >= 60
    finally:
        for conn in (idle, streaming, newcomer):
            conn.close()
    rows = wait_for(lambda: (r := read_calls(srv.database_url)) and len(r) == 3 and r, timeout=10)
    assert sorted(row["outcome"] for row in rows) == ["ok", "ok", "ok"]


def test_gunicorn_no_longer_warns_that_keep_alive_is_off(server):
    assert "No keepalived connections" not in server.log()
    assert "KeepAliveWorker" in server.log()
