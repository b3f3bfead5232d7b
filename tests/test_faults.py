"""The fault suite: real gunicorn, the official openai SDK, a fake upstream that misbehaves.

Each test asserts the three views of its calls: what the clients got, the ledger rows, and what
the upstream saw. Every server here is the test's own (signals and outages disturb it).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.conftest import (
    DatabaseFactory,
    Outage,
    Server,
    read_calls,
    start_server,
    stop_server,
    wait_for,
)
from tests.fake_upstream import FakeUpstream, error_body
from tests.helpers import openai_sdk

pytestmark = pytest.mark.integration
STREAMS = 20


@pytest.fixture
def own_server(
    upstream: FakeUpstream, databases: DatabaseFactory, tmp_path: Path
) -> Iterator[Server]:
    """A gunicorn of this test's own (2 workers) with a key in `.key`."""
    srv = start_server(tmp_path, upstream.base_url, databases.fresh("faults"))
    srv.key = srv.create_key("--name", "faults")
    yield srv
    stop_server(srv)


def sdk(server: Server) -> openai.OpenAI:
    return openai_sdk(server.base_url + "/v1", server.key)


def worker_pids(master: int) -> list[int]:
    """The gunicorn workers of `master` (its children that are not short ledger tasks)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == master and b"switchboard.ledger.serving" not in cmdline:
            pids.append(int(entry.name))
    return pids


class StreamRun:
    """`STREAMS` concurrent streams of the `long` model (60 chunks, 0.1 s apart) via the SDK."""

    def __init__(self, server: Server, model: str = "long") -> None:
        self.tag = uuid.uuid4().hex[:8]
        self.ids = [f"f-{self.tag}-{i}" for i in range(STREAMS)]
        self.results: dict[str, tuple[str, int]] = {}  # request id -> (how it ended, chunks)
        self.client = sdk(server)
        self.threads = [
            threading.Thread(target=self._one, args=(rid, model), daemon=True) for rid in self.ids
        ]

    def _one(self, request_id: str, model: str) -> None:
        chunks = 0
        try:
            stream = self.client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": f"stream {request_id}"}],
                stream=True,
                extra_headers={"X-Request-Id": request_id},
            )
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    chunks += 1
            self.results[request_id] = ("complete", chunks)
        except Exception as exc:  # noqa: BLE001 - how the stream broke is what we record
            self.results[request_id] = (type(exc).__name__, chunks)

    def start(self) -> StreamRun:
        # One stream first, in this thread: the SDK builds its response types lazily, and
        # twenty threads doing that at once can fail inside pydantic (a client-side race).
        warm = self.client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "warm"}], stream=True
        )
        assert [c for c in warm]
        for thread in self.threads:
            thread.start()
        return self

    def join(self, timeout: float = 40) -> None:
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        self.client.close()

    def rows(self, database_url: str) -> list[dict[str, Any]]:
        rows = [r for r in read_calls(database_url) if r["request_id"] in set(self.ids)]
        return rows


def all_rows_final(run: StreamRun, database_url: str) -> list[dict[str, Any]]:
    """The run's rows once every one of them is final (bounded wait); asserts one per call."""

    def final() -> Any:
        rows = run.rows(database_url)
        if len(rows) == STREAMS and all(r["outcome"] != "in_progress" for r in rows):
            return rows
        return None

    rows = wait_for(final, timeout=20, interval=0.2) or run.rows(database_url)
    assert len(rows) == STREAMS, f"{len(rows)} rows for {STREAMS} calls"
    assert sorted(r["request_id"] for r in rows) == sorted(run.ids)  # one row per call
    assert not [r for r in rows if r["outcome"] == "in_progress"]
    return rows


def wait_streaming(upstream: FakeUpstream, run: StreamRun) -> None:
    started = wait_for(
        lambda: len([i for i in run.ids if upstream.requests_for(i)]) == STREAMS, timeout=15
    )
    assert started, "the streams did not all reach the upstream"
    time.sleep(0.5)  # a few chunks into every stream


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM], ids=["SIGHUP", "SIGTERM"])
def test_signal_with_streams_in_flight_loses_nothing(own_server, upstream, sig):
    run = StreamRun(own_server).start()
    wait_streaming(upstream, run)
    old_workers = set(worker_pids(own_server.process.pid))
    own_server.process.send_signal(sig)
    run.join()
    # Clients: every stream shorter than the graceful timeout finished whole.
    assert run.results == {rid: ("complete", 60) for rid in run.ids}, own_server.log()[-3000:]
    # Ledger: one complete row per call.
    rows = all_rows_final(run, own_server.database_url)
    assert {r["outcome"] for r in rows} == {"ok"}
    assert all(r["usage_source"] == "upstream" and r["completion_tokens"] == 7 for r in rows)
    # Upstream: every stream was read to its end.
    ends = [e for e in upstream.stream_ends if e.model == "long-stream"]
    assert len(ends) == STREAMS and not any(e.client_gone for e in ends)
    if sig == signal.SIGTERM:
        assert own_server.process.wait(timeout=30) == 0  # then gunicorn stops cleanly
        return
    # New workers serve after the reload.
    assert wait_for(lambda: not old_workers & set(worker_pids(own_server.process.pid)), 20)
    answer = sdk(own_server).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "after reload"}]
    )
    assert answer.choices[0].message.content == "Hello from the fake upstream."


def test_kill_9_of_a_worker_with_streams_in_flight(own_server, upstream):
    run = StreamRun(own_server).start()
    wait_streaming(upstream, run)
    open_rows = [r for r in run.rows(own_server.database_url) if r["outcome"] == "in_progress"]
    assert len(open_rows) == STREAMS
    by_worker: dict[int, int] = {}
    for row in open_rows:
        pid = int(row["worker"].rsplit(":", 1)[1])
        by_worker[pid] = by_worker.get(pid, 0) + 1
    victim, victims_calls = max(by_worker.items(), key=lambda item: item[1])
    os.kill(victim, signal.SIGKILL)
    run.join()
    broken = [rid for rid, (how, _) in run.results.items() if how != "complete"]
    complete = [rid for rid, (how, chunks) in run.results.items() if how == "complete"]
    # Clients: the streams of the killed worker broke; the others finished whole.
    assert len(broken) == victims_calls
    assert all(run.results[rid][1] == 60 for rid in complete)
    # Ledger: a row for every call, the killed worker's closed as interrupted at once.
    rows = {r["request_id"]: r for r in all_rows_final(run, own_server.database_url)}
    assert {rows[rid]["outcome"] for rid in broken} == {"interrupted"}
    assert {rows[rid]["outcome"] for rid in complete} <= {"ok"}
    assert all(str(victim) in (rows[rid]["error"] or "") for rid in broken)
    # Upstream: the killed worker's connections were closed, not left streaming.
    wait_for(lambda: len([e for e in upstream.stream_ends if e.model == "long-stream"]) == 20)
    gone = [e for e in upstream.stream_ends if e.model == "long-stream" and e.client_gone]
    assert len(gone) == victims_calls and all(e.chunks_sent < 60 for e in gone)


def unfinished(rows: list[dict[str, Any]], sent: list[str], srv: Any) -> str:
    """What is missing or still open in the ledger, and the end of the server's log."""
    found = {r["request_id"]: r["outcome"] for r in rows}
    missing = [rid for rid in sent if rid not in found]
    still_open = [rid for rid, outcome in found.items() if outcome == "in_progress"]
    return f"missing {missing}; in progress {still_open}; log:\n{srv.log()[-3000:]}"


def serving_processes(srv: Server, prefix: str) -> set[int]:
    """The worker processes whose access lines (JSON logs) name a request id with `prefix`."""
    found = set()
    for line in srv.log().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # gunicorn's own lines, and any text line
        request_id = (entry.get("call") or {}).get("request_id") or ""
        if request_id.startswith(prefix):
            found.add(entry["process"])
    return found


def test_database_outage_mid_load_loses_no_row(upstream, databases, tmp_path):
    database_url = databases.fresh("outage")
    outage = Outage(database_url)
    # JSON logs: each access line names the worker process that served the call.
    srv = start_server(
        tmp_path, upstream.base_url, outage.url, sections={"logging": {"format": "json"}}
    )
    try:
        srv.key = srv.create_key("--name", "outage")
        client = sdk(srv)
        tag = uuid.uuid4().hex[:8]
        warm = openai_sdk(srv.base_url + "/v1", srv.key, spread=True)
        for i in range(40):  # until both workers have served a call, and so know the key
            warm.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "warm"}],
                extra_headers={"X-Request-Id": f"w-{tag}-{i}"},
            )
            if len(serving_processes(srv, f"w-{tag}-")) == 2:
                break
        else:
            pytest.fail(f"40 calls on new connections all went to one worker:\n{srv.log()}")
        statuses: dict[str, int] = {}

        def load(worker: int) -> None:
            for i in range(6):
                rid = f"o-{tag}-{worker}-{i}"
                try:
                    if i % 2:
                        stream = client.chat.completions.create(
                            model="gpt-4o-mini",
                            messages=[{"role": "user", "content": rid}],
                            stream=True,
                            extra_headers={"X-Request-Id": rid},
                        )
                        assert [c for c in stream][-1] is not None
                    else:
                        client.chat.completions.create(
                            model="gpt-4o-mini",
                            messages=[{"role": "user", "content": rid}],
                            extra_headers={"X-Request-Id": rid},
                        )
                    statuses[rid] = 200
                except openai.APIStatusError as exc:
                    statuses[rid] = exc.status_code
                time.sleep(0.3)

        threads = [threading.Thread(target=load, args=(w,), daemon=True) for w in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        outage.cut()
        time.sleep(2.5)
        outage.restore()
        for thread in threads:
            thread.join(60)
        client.close()
        sent = sorted(statuses)
        assert len(sent) == 24
        # Clients: served through the outage; at worst refused because a key was unknown.
        assert set(statuses.values()) <= {200, 503}
        assert list(statuses.values()).count(200) >= 20

        def complete() -> Any:
            rows = [r for r in read_calls(database_url) if r["request_id"].startswith(f"o-{tag}")]
            if len(rows) == 24 and all(r["outcome"] != "in_progress" for r in rows):
                return rows
            return None

        rows = wait_for(complete, timeout=20, interval=0.2)
        assert rows, unfinished(read_calls(database_url), sent, srv)
        # Ledger: one row per call, none lost, none twice, each saying what the client got.
        assert sorted(r["request_id"] for r in rows) == sent
        assert all(r["status_code"] == statuses[r["request_id"]] for r in rows)
        assert all(r["outcome"] == "ok" for r in rows if r["status_code"] == 200)
        # Upstream: every served call reached it once.
        served = [rid for rid, status in statuses.items() if status == 200]
        assert all(len(upstream.requests_for(rid)) == 1 for rid in served)
        # The spool empties (lines already applied by a direct write are replayed harmlessly).
        spool = tmp_path / "state" / "spool"
        assert wait_for(lambda: not list(spool.glob("*.jsonl")), timeout=10)
        again = [r for r in read_calls(database_url) if r["request_id"].startswith(f"o-{tag}")]
        assert sorted(r["request_id"] for r in again) == sent
        assert {r["request_id"]: r["outcome"] for r in again} == {
            r["request_id"]: r["outcome"] for r in rows
        }
    finally:
        stop_server(srv)
        outage.close()


def test_cooldown_and_its_end_are_shared_by_all_workers(upstream, databases, tmp_path):
    srv = start_server(
        tmp_path,
        upstream.base_url,
        databases.fresh("cooldown"),
        routing={"cooldown_failures": 1, "max_attempts": 1, "cooldown_seconds": 60},
    )
    try:
        srv.key = srv.create_key("--name", "cool")
        mark = f"cool-{uuid.uuid4().hex[:8]}"
        upstream.plan(mark, {"status": 500})
        client = sdk(srv)
        ask = {"model": "gpt-4o", "messages": [{"role": "user", "content": mark}]}
        with pytest.raises(openai.APIStatusError) as first:
            client.chat.completions.create(**ask)
        assert first.value.status_code == 502
        for _ in range(6):  # a new connection each time: both workers answer some
            with openai.OpenAI(api_key=srv.key, base_url=srv.base_url + "/v1") as fresh:
                listed = {m.id: m.model_extra.get("available") for m in fresh.models.list()}
            assert listed["gpt-4o"] is False and listed["gpt-4o-mini"] is True
        # The upstream is fine again: one half-open probe brings it back, for every worker.
        assert client.chat.completions.create(**ask).choices[0].message.content
        for _ in range(6):
            with openai.OpenAI(api_key=srv.key, base_url=srv.base_url + "/v1") as fresh:
                assert fresh.chat.completions.create(**ask).choices
                listed = {m.id: m.model_extra.get("available") for m in fresh.models.list()}
            assert listed["gpt-4o"] is True
        client.close()
        rows = read_calls(srv.database_url, model="gpt-4o")
        assert [r["status_code"] for r in rows] == [502] + [200] * 7
        assert [r["attempts"] for r in rows] == [1] * 8
        assert len(upstream.requests_for(mark)) == 8
    finally:
        stop_server(srv)


# ---- upstream faults through gunicorn and the SDK ----------------------------------------


@pytest.fixture(scope="module")
def relay_server(
    _fake_upstream: FakeUpstream,
    databases: DatabaseFactory,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    """A gunicorn for the upstream-fault tests; cooldowns off so one test cannot cool another's
    model (`test_cooldown_is_shared_by_all_workers` has its own)."""
    srv = start_server(
        tmp_path_factory.mktemp("relay-faults"),
        _fake_upstream.base_url,
        databases.fresh("relayfaults"),
        routing={"cooldown_failures": 1000},
    )
    srv.key = srv.create_key("--name", "relay")
    yield srv
    stop_server(srv)


def ask(server: Server, mark: str, model: str = "gpt-4o-mini", **extra: Any) -> Any:
    client = sdk(server)
    try:
        return client.chat.completions.with_raw_response.create(
            model=model,
            messages=[{"role": "user", "content": f"fault {mark}"}],
            extra_headers={"X-Request-Id": mark},
            **extra,
        )
    finally:
        client.close()


def row_of(server: Server, mark: str) -> dict[str, Any]:
    def final() -> Any:
        rows = read_calls(server.database_url, request_id=mark)
        return rows if rows and rows[0]["outcome"] != "in_progress" else None

    rows = wait_for(final, timeout=10)
    assert rows and len(rows) == 1, rows
    return rows[0]


def new_mark() -> str:
    return "fault-" + uuid.uuid4().hex[:10]


def test_sdk_5xx_then_success_is_one_answer_and_one_row(relay_server, upstream):
    mark = new_mark()
    upstream.plan(mark, {"status": 500}, {"status": 503})
    raw = ask(relay_server, mark)
    assert raw.parse().choices[0].message.content == "Hello from the fake upstream."
    assert raw.headers["x-switchboard-provider"] == "fake"
    assert len(upstream.requests_for(mark)) == 3
    row = row_of(relay_server, mark)
    assert (row["outcome"], row["status_code"], row["attempts"]) == ("ok", 200, 3)


def test_sdk_429_waits_for_retry_after(relay_server, upstream):
    mark = new_mark()
    upstream.plan(mark, {"status": 429, "retry_after": "1"})
    assert ask(relay_server, mark).parse().choices
    first, second = upstream.requests_for(mark)
    assert second.at - first.at >= 0.95
    assert row_of(relay_server, mark)["attempts"] == 2


def test_sdk_400_is_not_retried(relay_server, upstream):
    mark = new_mark()
    upstream.plan(mark, {"status": 400})
    with pytest.raises(openai.BadRequestError) as raised:
        ask(relay_server, mark)
    assert raised.value.body == error_body(400)["error"]  # the upstream's own error, as it was
    assert len(upstream.requests_for(mark)) == 1
    row = row_of(relay_server, mark)
    assert (row["outcome"], row["attempts"]) == ("invalid_request", 1)


def test_sdk_connection_refused_then_fallback(relay_server, upstream):
    mark = new_mark()
    raw = ask(relay_server, mark, model="unreachable", extra_body={"fallbacks": ["gpt-4o"]})
    assert raw.parse().choices[0].message.content == "Hello from the fake upstream."
    assert [r.body["model"] for r in upstream.requests_for(mark)] == ["echo"]
    assert "fallbacks" not in upstream.requests_for(mark)[0].body
    row = row_of(relay_server, mark)
    assert (row["model"], row["provider"], row["upstream_model"]) == ("unreachable", "fake", "echo")
    assert (row["outcome"], row["attempts"]) == ("ok", 4)
    assert row["error"] is None


def test_sdk_redirect_is_not_followed(relay_server, upstream):
    elsewhere = FakeUpstream().start()
    try:
        mark = new_mark()
        target = elsewhere.base_url + "/chat/completions"
        upstream.plan(mark, *[{"redirect": target}] * 3)
        with pytest.raises(openai.InternalServerError) as raised:
            ask(relay_server, mark)
        assert raised.value.status_code == 502
        assert elsewhere.connections == 0 and elsewhere.received == []
        row = row_of(relay_server, mark)
        assert (row["outcome"], row["attempts"]) == ("upstream_error", 3)
    finally:
        elsewhere.stop()


def test_sdk_slow_first_byte_is_retried(relay_server, upstream):
    mark = new_mark()
    upstream.plan(mark, {"delay": 6})  # the fake provider's read timeout is 5 s
    assert ask(relay_server, mark).parse().choices
    row = row_of(relay_server, mark)
    assert (row["outcome"], row["attempts"]) == ("ok", 2)
    assert len(upstream.requests_for(mark)) == 2


def stream_until_error(server: Server, mark: str) -> tuple[int, openai.APIError]:
    client = sdk(server)
    chunks = 0
    try:
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": f"fault {mark}"}],
            stream=True,
            extra_headers={"X-Request-Id": mark},
        )
        with pytest.raises(openai.APIError) as raised:
            for chunk in stream:
                chunks += bool(chunk.choices and chunk.choices[0].delta.content)
        return chunks, raised.value
    finally:
        client.close()


def test_sdk_stall_mid_stream_ends_with_a_timeout_error(relay_server, upstream):
    mark = new_mark()
    upstream.plan(mark, {"stall_after": 2, "stall": 8})
    chunks, error = stream_until_error(relay_server, mark)
    assert chunks == 2
    assert "quiet" in str(error.message)
    row = row_of(relay_server, mark)
    assert (row["outcome"], row["attempts"]) == ("upstream_timeout", 1)
    end = upstream.wait_stream_end("echo", timeout=5)
    assert end is not None and end.client_gone and end.chunks_sent == 2


def test_sdk_drop_after_three_chunks(relay_server, upstream):
    mark = new_mark()
    upstream.plan(mark, {"drop_after": 3})
    chunks, error = stream_until_error(relay_server, mark)
    assert chunks == 3
    assert "broke" in str(error.message)
    row = row_of(relay_server, mark)
    assert (row["outcome"], row["attempts"], row["usage_source"]) == (
        "upstream_error",
        1,
        "estimated",
    )
    assert len(upstream.requests_for(mark)) == 1
