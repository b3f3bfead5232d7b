"""A closed-loop HTTP/1.1 load generator on asyncio: keep-alive connections, timed per request.

Each of `concurrency` connections sends one request, reads the whole answer, and sends the next,
until the time is up or its count is reached. Per request it records the start, the time the
first body bytes arrived (for a stream: the first event) and the end, and checks the answer: a
200 with a JSON answer, or a stream that ends with its format's last event (`API` below: chat
completions `data: [DONE]`, Responses `event: response.completed`, Messages
`event: message_stop`) and has no error event.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

HEAD_END = b"\r\n\r\n"


@dataclass(frozen=True)
class Api:
    """What a good answer of one API looks like to `check`."""

    name: str
    json_mark: bytes  # in a JSON answer
    stream_end: bytes  # what a complete stream's last event starts with
    stream_error: bytes  # in a stream with an error event


CHAT = Api("chat", b'"choices"', b"data: [DONE]", b'"error"')
# The typed formats carry `"error": null` in their objects: their error is an `error` event.
RESPONSES = Api("responses", b'"output"', b"event: response.completed", b"event: error")
MESSAGES = Api("messages", b'"content"', b"event: message_stop", b"event: error")
APIS = {api.name: api for api in (CHAT, RESPONSES, MESSAGES)}


@dataclass
class Sample:
    start: float
    first: float  # first body bytes (time to first chunk for a stream)
    end: float
    ok: bool
    error: str = ""


@dataclass
class Run:
    samples: list[Sample] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    connect_errors: int = 0

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


def build_request(
    host: str, path: str, body: dict[str, object], key: str, anthropic: bool = False
) -> bytes:
    """The request's bytes; with `anthropic`, the key as `x-api-key` and an
    `anthropic-version`, as Anthropic's clients send them (else `Authorization: Bearer`)."""
    data = json.dumps(body).encode()
    auth = (
        f"x-api-key: {key}\r\nanthropic-version: 2023-06-01"
        if anthropic
        else f"Authorization: Bearer {key}"
    )
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n"
        f"Content-Type: application/json\r\nAccept: */*\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


class Client(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.done: asyncio.Future[tuple[int, bytes, float]] | None = None
        self.closed = False
        self._reset()

    def _reset(self) -> None:
        self.buf = bytearray()
        self.status = 0
        self.head_done = False
        self.length = -1  # Content-Length, or -1 for chunked
        self.chunk_left = 0
        self.body = bytearray()
        self.first = 0.0
        self.close_after = False  # the server answered `Connection: close`

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.done is not None and not self.done.done():
            self.done.set_exception(ConnectionError("connection closed mid-answer"))

    def request(self, data: bytes) -> asyncio.Future[tuple[int, bytes, float]]:
        assert self.transport is not None
        self._reset()
        self.done = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.done

    def data_received(self, data: bytes) -> None:
        if self.done is None or self.done.done():
            return
        self.buf += data
        try:
            self._parse()
        except ValueError as exc:
            self.done.set_exception(exc)

    def _parse(self) -> None:
        assert self.done is not None
        if not self.head_done:
            end = self.buf.find(HEAD_END)
            if end < 0:
                return
            lines = bytes(self.buf[:end]).split(b"\r\n")
            self.status = int(lines[0].split(b" ", 2)[1])
            chunked = False
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    self.length = int(value)
                elif name == b"transfer-encoding" and b"chunked" in value.lower():
                    chunked = True
                elif name == b"connection" and b"close" in value.lower():
                    self.close_after = True
            if not chunked and self.length < 0:
                raise ValueError("answer without Content-Length or chunked encoding")
            del self.buf[: end + 4]
            self.head_done = True
        if not self.buf:
            return
        if not self.first:
            self.first = time.perf_counter()
        if self.length >= 0:
            if len(self.buf) >= self.length:
                self.body += self.buf[: self.length]
                self.done.set_result((self.status, bytes(self.body), self.first))
            return
        while True:  # chunked
            if self.chunk_left == 0:
                eol = self.buf.find(b"\r\n")
                if eol < 0:
                    return
                size = int(bytes(self.buf[:eol]).split(b";")[0], 16)
                if size == 0:
                    if len(self.buf) < eol + 4:
                        return
                    self.done.set_result((self.status, bytes(self.body), self.first))
                    return
                del self.buf[: eol + 2]
                self.chunk_left = size + 2  # data and its CRLF
            take = min(self.chunk_left, len(self.buf))
            if take == 0:
                return
            self.body += self.buf[:take]
            del self.buf[:take]
            self.chunk_left -= take
            if self.chunk_left == 0:
                del self.body[-2:]


def check(status: int, body: bytes, stream: bool, api: Api = CHAT) -> str:
    """'' when the answer is a good one of `api`, else what is wrong with it."""
    if status != 200:
        return f"status {status}"
    if stream:
        if not body.rstrip().rsplit(b"\n\n", 1)[-1].startswith(api.stream_end):
            return f"stream did not end with {api.stream_end.decode()}"
        if api.stream_error in body:
            return "error event in stream"
        return ""
    if not body.startswith(b"{") or api.json_mark not in body:
        return f"not a {api.name} answer"
    return ""


async def _connect(host: str, port: int) -> Client:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(Client, host, port)
    return client


async def _worker(
    run: Run,
    host: str,
    port: int,
    data: bytes,
    stream: bool,
    stop_at: float,
    count: int,
    timeout: float,
    on_sample: Callable[[Sample], None] | None,
    api: Api,
) -> None:
    loop = asyncio.get_running_loop()
    client: Client | None = None
    sent = 0
    while sent < count and time.perf_counter() < stop_at:
        if client is None or client.closed:
            try:
                client = await asyncio.wait_for(_connect(host, port), timeout)
            except (TimeoutError, OSError) as exc:
                run.connect_errors += 1
                run.error(f"connect: {type(exc).__name__}")
                client = None
                await asyncio.sleep(0.05)
                continue
        sent += 1
        start = time.perf_counter()
        fut = client.request(data)
        timer = loop.call_later(timeout, fut.cancel)
        try:
            status, body, first = await fut
            problem = check(status, body, stream, api)
        except asyncio.CancelledError:
            if not fut.cancelled():
                raise
            problem = f"timeout after {timeout:g} s"
        except (ConnectionError, ValueError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
            first = 0.0
        finally:
            timer.cancel()
        end = time.perf_counter()
        sample = Sample(start, first or end, end, not problem, problem)
        run.samples.append(sample)
        if problem or client.close_after:
            if problem:
                run.error(problem)
            if client.transport is not None:
                client.transport.close()
            client = None
        if on_sample is not None:
            on_sample(sample)
    if client is not None and client.transport is not None:
        client.transport.close()


async def load(
    host: str,
    port: int,
    data: bytes,
    stream: bool,
    concurrency: int,
    duration: float,
    count: int = 10**9,
    timeout: float = 30.0,
    ramp: float = 0.0,
    on_sample: Callable[[Sample], None] | None = None,
    api: Api = CHAT,
) -> Run:
    """Run `concurrency` closed-loop connections for `duration` s (or `count` requests each),
    checking each answer as one of `api`'s."""
    run = Run()
    stop_at = time.perf_counter() + duration
    tasks = []
    for i in range(concurrency):
        if ramp and i:
            await asyncio.sleep(ramp / concurrency)
        tasks.append(
            asyncio.create_task(
                _worker(run, host, port, data, stream, stop_at, count, timeout, on_sample, api)
            )
        )
    await asyncio.gather(*tasks)
    return run
