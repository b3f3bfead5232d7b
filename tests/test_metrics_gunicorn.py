"""`/metrics` under a real gunicorn with 2 workers (docs/metrics.md, "Under gunicorn"): a scrape
answers for the whole instance whichever worker takes it, a killed worker's gauges are dropped
and its counts kept, and a restart starts from zero."""

from __future__ import annotations

import json
import os
import signal
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import Server, read_calls, start_server, stop_server, wait_for
from tests.helpers import CHAT, bearer
from tests.test_metrics import Samples, parse, total

pytestmark = pytest.mark.integration

CALLS, STREAMS = 24, 8


def scrape(srv: Server) -> Samples:
    resp = requests.get(srv.base_url + "/metrics", timeout=10)
    assert resp.status_code == 200
    return parse(resp.text)


def call(srv: Server, stream: bool) -> int:
    body = {"model": "gpt-4o-mini", "stream": stream,
            "messages": [{"role": "user", "content": f"count {uuid.uuid4().hex[:6]}"}]}  # fmt: skip
    with requests.post(srv.base_url + CHAT, json=body, headers=bearer(srv.key), timeout=20) as r:
        r.content  # noqa: B018 - read to the end
        return r.status_code


def workers_of(srv: Server) -> set[int]:
    """The worker processes that wrote access lines (JSON logs name their process)."""
    lines = [json.loads(line) for line in srv.log().splitlines() if line.startswith("{")]
    return {e["process"] for e in lines if e["logger"] == "switchboard.access"}


@pytest.fixture
def instance(upstream: Any, databases: Any, tmp_path: Path) -> Any:
    json_logs = {"logging": {"format": "json"}}
    srv = start_server(
        tmp_path, upstream.base_url, databases.fresh("metrics"), workers=2, sections=json_logs
    )
    srv.key = srv.create_key("--name", "scraped")
    yield srv
    stop_server(srv)


def test_counters_equal_the_calls_whichever_worker_served_them(instance, tmp_path, upstream):
    kinds = [False] * (CALLS - STREAMS) + [True] * STREAMS
    rounds = 0
    # Eight at a time: both workers accept some, nearly always in the first round; a few
    # more rounds make sure of it (whichever worker accepts is the kernel's choice).
    while rounds < 4 and (rounds == 0 or len(workers_of(instance)) < 2):
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda s: call(instance, s), kinds))
        assert statuses == [200] * CALLS
        rounds += 1
        wait_for(lambda: len(workers_of(instance)) == 2, timeout=2)
    assert len(workers_of(instance)) == 2
    calls, streams = CALLS * rounds, STREAMS * rounds
    expected = {"endpoint": "/v1/chat/completions", "model": "gpt-4o-mini", "outcome": "ok"}
    # Every scrape (each taken by either worker) sums both workers' files.
    for _ in range(4):
        samples = scrape(instance)
        assert total(samples, "switchboard_requests_total", **expected) == calls
        assert total(samples, "switchboard_call_duration_seconds_count") == calls
        assert total(samples, "switchboard_time_to_first_token_seconds_count") == streams
        assert total(samples, "switchboard_tokens_total", kind="prompt") == 11 * calls
        assert total(samples, "switchboard_calls_in_flight") == 0

    # A worker killed mid-stream: its live gauges go, its counts stay.
    body = {"model": "long", "stream": True, "messages": [{"role": "user", "content": "cut"}]}
    with requests.post(instance.base_url + CHAT, json=body, headers=bearer(instance.key),
                       stream=True, timeout=20) as resp:  # fmt: skip
        assert resp.status_code == 200
        chunks = resp.iter_content(None)
        assert next(chunks)
        live = scrape(instance)
        assert total(live, "switchboard_streams_open") == 1
        assert total(live, "switchboard_calls_in_flight") == 1
        # An open call's row names its process: "host:master_pid:worker_pid".
        row = wait_for(lambda: read_calls(instance.database_url, model="long"))[0]
        os.kill(int(str(row["worker"]).rsplit(":", 1)[-1]), signal.SIGKILL)
        with pytest.raises(requests.RequestException):
            for _ in chunks:
                pass

    def settled() -> Samples | None:
        samples = scrape(instance)
        return samples if total(samples, "switchboard_streams_open") == 0 else None

    after = wait_for(settled, timeout=15)
    assert after, "the killed worker's open stream is still counted"
    assert total(after, "switchboard_calls_in_flight") == 0
    assert total(after, "switchboard_requests_total", **expected) == calls

    # A restart empties the directory: counts start again from zero.
    stop_server(instance)
    again = start_server(tmp_path, upstream.base_url, instance.database_url, workers=2)
    try:
        assert total(scrape(again), "switchboard_requests_total") == 0
        assert list((tmp_path / "state" / "metrics").glob("*.db")) != []
    finally:
        stop_server(again)
