"""The test tools themselves: the fake upstream's plan steps and the TCP proxy's outages."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tests.fake_upstream import FakeUpstream
from tests.tcp_proxy import TcpProxy, wait_until

TERMINATOR = b"0\r\n\r\n"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    upstream = FakeUpstream().start()
    yield upstream
    upstream.stop()


def new_marker() -> str:
    return f"m-{uuid.uuid4().hex[:10]}"


def chat_body(marker: str, stream: bool = False, model: str = "echo") -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": f"hello {marker}"}],
        "stream": stream,
    }


def post(fake: FakeUpstream, body: dict[str, Any], **kwargs: Any) -> requests.Response:
    return requests.post(f"{fake.base_url}/chat/completions", json=body, timeout=5, **kwargs)


def raw_post(fake: FakeUpstream, body: dict[str, Any]) -> socket.socket:
    """Send a chat request on a fresh socket, so a test sees exactly the bytes that come back."""
    sock = socket.create_connection(("127.0.0.1", fake.port), timeout=5)
    data = json.dumps(body).encode()
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data)
    )
    return sock


def read_until(
    sock: socket.socket, done: Callable[[bytes], bool], timeout: float = 5.0
) -> tuple[bytes, bool]:
    """Read until `done(bytes so far)`, end of stream or `timeout`; (bytes, whether it ended)."""
    buf = b""
    deadline = time.monotonic() + timeout
    while not done(buf) and time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return buf, True
        if not data:
            return buf, True
        buf += data
    return buf, False


def framed(pieces: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces)


# ---- fake upstream plans ----------------------------------------------------------------


def test_error_status_then_planned_ok_then_normal(fake):
    m = new_marker()
    fake.plan(m, {"status": 503, "retry_after": "2"}, {"status": 200, "headers": {"X-Step": "2"}})
    first, second, third = (post(fake, chat_body(m)) for _ in range(3))
    assert first.status_code == 503 and first.headers["Retry-After"] == "2"
    assert first.json() == {
        "error": {
            "message": "The server had an error while processing your request.",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
    assert second.status_code == 200 and second.headers["X-Step"] == "2"
    assert second.json()["choices"][0]["message"]["content"] == "Hello from the fake upstream."
    assert third.status_code == 200 and "X-Step" not in third.headers
    assert len(fake.requests_for(m)) == 3


def test_429_answers_a_stream_request_with_a_json_error(fake):
    m = new_marker()
    fake.plan(m, {"status": 429, "retry_after": "1", "headers": {"X-RateLimit-Remaining": "0"}})
    resp = post(fake, chat_body(m, stream=True))
    assert resp.status_code == 429
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.headers["Retry-After"] == "1" and resp.headers["X-RateLimit-Remaining"] == "0"
    error = resp.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_exceeded")


def test_redirects(fake):
    m = new_marker()
    elsewhere = "http://127.0.0.1:9/v1/chat/completions"
    fake.plan(m, {"redirect": elsewhere}, {"redirect": elsewhere, "status": 308})
    first = post(fake, chat_body(m), allow_redirects=False)
    second = post(fake, chat_body(m, stream=True), allow_redirects=False)
    assert (first.status_code, second.status_code) == (307, 308)
    assert first.headers["Location"] == second.headers["Location"] == elsewhere
    assert first.content == b"{}"


def test_delay_holds_back_the_first_byte(fake):
    m = new_marker()
    fake.plan(m, {"delay": 0.3})
    started = time.monotonic()
    resp = post(fake, chat_body(m))
    assert resp.status_code == 200 and time.monotonic() - started >= 0.3
    (received,) = fake.requests_for(m)
    assert 0 <= received.at - started < 0.2


def test_close_drops_the_connection_without_an_answer(fake):
    m = new_marker()
    fake.plan(m, {"close": True})
    with pytest.raises(requests.ConnectionError):
        post(fake, chat_body(m))
    assert post(fake, chat_body(m)).status_code == 200
    assert len(fake.requests_for(m)) == 2  # the dropped request was read and recorded


def test_sse_pieces_are_written_verbatim(fake):
    m = new_marker()
    pieces = [
        b'data: {"not json\n\n',
        b'data: {"choices": [{"index": 0, "del',
        b'ta": {"content": "split"}}]}\n\n',
        b'data: {"choices": []}\r\n\r\n',
        b"data: [DONE]\n\n",
    ]
    fake.plan(m, {"sse": pieces, "gap": 0.01})
    sock = raw_post(fake, chat_body(m, stream=True))
    with sock:
        raw, _ = read_until(sock, lambda b: b.endswith(TERMINATOR))
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"Transfer-Encoding: chunked" in head
    assert body == framed(pieces) + TERMINATOR


def test_stall_notices_the_client_leaving(fake):
    m, model = new_marker(), f"stall-{uuid.uuid4().hex[:6]}"
    fake.plan(m, {"stall_after": 2, "stall": 10.0})
    sock = raw_post(fake, chat_body(m, stream=True, model=model))
    raw, ended = read_until(sock, lambda b: b.count(b"data: ") >= 3)
    assert not ended and raw.count(b"data: ") == 3  # role chunk + 2 content chunks
    sock.close()
    closed_at = time.monotonic()
    end = fake.wait_stream_end(model, timeout=2)
    assert end is not None and end.client_gone and end.chunks_sent == 2
    assert end.at - closed_at < 1.0


@pytest.mark.parametrize(
    ("step", "events", "chunks_sent"),
    [({"stall_after": 1, "stall": 0.2}, 2, 1), ({"drop_after": 4}, 5, 4)],
)
def test_stream_is_cut_without_its_last_chunk(fake, step, events, chunks_sent):
    m, model = new_marker(), f"cut-{uuid.uuid4().hex[:6]}"
    fake.plan(m, step)
    sock = raw_post(fake, chat_body(m, stream=True, model=model))
    with sock:
        raw, ended = read_until(sock, lambda b: False, timeout=3)
    assert ended and raw.count(b"data: ") == events
    assert not raw.endswith(TERMINATOR) and b"[DONE]" not in raw
    end = fake.wait_stream_end(model, timeout=2)
    assert end is not None and (end.chunks_sent, end.client_gone) == (chunks_sent, False)


def test_stall_on_a_json_request_delays_the_answer(fake):
    m, model = new_marker(), f"json-stall-{uuid.uuid4().hex[:6]}"
    fake.plan(m, {"stall": 0.2})
    started = time.monotonic()
    resp = post(fake, chat_body(m, model=model))
    assert resp.status_code == 200 and time.monotonic() - started >= 0.2
    end = fake.wait_stream_end(model, timeout=1)
    assert end is not None and (end.chunks_sent, end.client_gone) == (0, False)


def test_json_raw_is_the_exact_body(fake):
    m = new_marker()
    html = b"<html>bad gateway</html>"
    fake.plan(
        m,
        {"json_raw": b'{"choices": ['},
        {"json_raw": html, "status": 502, "headers": {"Content-Type": "text/html"}},
    )
    first, second = post(fake, chat_body(m)), post(fake, chat_body(m, stream=True))
    assert (first.status_code, first.content) == (200, b'{"choices": [')
    assert (second.status_code, second.content) == (502, html)
    assert second.headers["Content-Type"] == "text/html"


def test_requests_record_their_connection_and_arrival(fake):
    m = new_marker()
    with requests.Session() as session:
        for _ in range(2):
            url = f"{fake.base_url}/chat/completions"
            assert session.post(url, json=chat_body(m), timeout=5).status_code == 200
    assert post(fake, chat_body(m)).status_code == 200
    first, second, third = fake.requests_for(m)
    assert first.connection == second.connection != third.connection
    assert first.at <= second.at <= third.at


def test_plan_rejects_unknown_steps_and_reset_clears_plans(fake):
    with pytest.raises(ValueError, match="unknown plan step keys"):
        fake.plan("x", {"stauts": 500})
    m = new_marker()
    fake.plan(m, {"status": 500})
    fake.reset()
    assert post(fake, chat_body(m)).status_code == 200


# ---- TCP proxy ---------------------------------------------------------------------------


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.settimeout(5)
        for _ in range(10_000):  # bounded: far more reads than any test needs
            try:
                data = self.request.recv(65536)
            except OSError:
                return
            if not data:
                return
            self.request.sendall(data)


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    echo = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    echo.daemon_threads = True
    thread = threading.Thread(target=echo.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    tcp = TcpProxy("127.0.0.1", echo.server_address[1]).start()
    yield tcp
    tcp.stop()
    echo.shutdown()
    echo.server_close()


def connect(proxy: TcpProxy) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proxy.port), timeout=2)


def echoes(sock: socket.socket, data: bytes) -> bool:
    sock.sendall(data)
    got, _ = read_until(sock, lambda b: len(b) >= len(data), timeout=2)
    return got == data


def closed_soon(sock: socket.socket) -> bool:
    """Whether the peer ends `sock` (EOF or reset) within a second."""
    sock.settimeout(1)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_proxy_passes_bytes_both_ways_and_half_closes(proxy):
    with connect(proxy) as sock:
        assert echoes(sock, b"ping")
        assert echoes(sock, bytes(range(256)) * 4096)  # 1 MiB
        sock.sendall(b"last")
        sock.shutdown(socket.SHUT_WR)
        got, ended = read_until(sock, lambda b: False, timeout=2)
        assert (got, ended) == (b"last", True)


def test_cut_ends_live_connections_and_refuses_new_ones_until_restore(proxy):
    live = connect(proxy)
    assert echoes(live, b"before")
    assert wait_until(lambda: proxy.live == 1, timeout=1)
    started = time.monotonic()
    proxy.cut()
    assert closed_soon(live)
    refused = connect(proxy)  # the port still accepts, then hangs up at once
    assert closed_soon(refused)
    assert time.monotonic() - started < 1.5 and proxy.live == 0
    live.close()
    refused.close()
    proxy.restore()
    with connect(proxy) as again:
        assert echoes(again, b"after")
