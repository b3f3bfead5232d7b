"""The ledger when the database is locked or down: rows spooled on local disk, replayed once.

On SQLite the outage is the write lock held by another connection; on PostgreSQL a TCP proxy
between Switchboard and the server is cut.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from switchboard.config import Settings
from switchboard.ledger.spool import Spool

from tests.conftest import USE_POSTGRES, Outage, read_calls
from tests.helpers import HELLO, bearer, post_chat


@pytest.fixture
def build(
    settings: Settings, outage: Outage, make_app: Callable[[Settings], Any]
) -> Callable[..., Any]:
    """Builds the app on the database behind the outage switch."""

    def make(**changes: Any) -> Any:
        return make_app(dataclasses.replace(settings, database_url=outage.url, **changes))

    return make


def new_key(app: Any) -> dict[str, str]:
    _, secret = app.extensions["switchboard"].keys.create(name=f"k-{uuid.uuid4().hex[:6]}")
    return bearer(secret)


def call(app: Any, auth: dict[str, str], request_id: str, **body: Any) -> Any:
    """A chat completion (`post_chat`) sent with the request id `request_id`."""
    return post_chat(app, auth | {"X-Request-Id": request_id}, **body)


def spool_files(app: Any) -> list[Path]:
    return app.extensions["switchboard"].ledger.spool.files()


def replay(app: Any) -> int:
    return int(app.extensions["switchboard"].ledger.replay_spool())


def test_call_during_an_outage_is_served_spooled_and_written_once(
    build, outage, database_url, upstream
):
    app = build()
    auth = new_key(app)
    assert call(app, auth, "before").status_code == 200  # the key is known to this worker
    outage.cut()
    resp = call(app, auth, "during")
    assert resp.status_code == 200
    assert resp.get_json()["choices"][0]["message"]["content"] == "Hello from the fake upstream."
    assert len(upstream.requests_for("Hello there")) == 2
    [spooled] = spool_files(app)
    lines = [json.loads(line) for line in spooled.read_text().splitlines()]
    assert [r["op"] for r in lines] == ["open", "finish"]
    assert "sb-" not in spooled.read_text()  # no secret on disk
    outage.restore()
    assert app.test_client().get("/readyz").get_json()["spool_files"] == 1
    assert replay(app) == 2
    assert app.test_client().get("/readyz").get_json()["spool_files"] == 0
    [row] = read_calls(database_url, request_id="during")
    assert (row["outcome"], row["status_code"], row["prompt_tokens"]) == ("ok", 200, 11)
    assert row["completed_at"] is not None and row["worker"] is None
    assert spool_files(app) == []
    assert replay(app) == 0 and len(read_calls(database_url, request_id="during")) == 1


def test_replaying_a_file_twice_leaves_one_row(build, outage, database_url, tmp_path):
    app = build()
    auth = new_key(app)
    call(app, auth, "warm")
    outage.cut()
    resp = call(app, auth, "twice", stream=True)
    assert resp.get_data().endswith(b"data: [DONE]\n\n")
    outage.restore()
    [spooled] = spool_files(app)
    kept = tmp_path / "copy.jsonl"
    shutil.copy(spooled, kept)
    assert replay(app) == 2
    shutil.copy(kept, spooled)  # as if the process died between applying and deleting
    assert replay(app) == 2
    rows = read_calls(database_url, request_id="twice")
    assert len(rows) == 1 and rows[0]["outcome"] == "ok" and rows[0]["stream"]


def test_stream_open_before_the_outage_completes_after_it(build, outage, database_url, upstream):
    app = build()
    auth = new_key(app)
    body = {"model": "long", "messages": HELLO, "stream": True}
    resp = app.test_client().post(
        "/v1/chat/completions",
        json=body,
        headers=auth | {"X-Request-Id": "spanning"},
        buffered=False,
    )
    events = iter(resp.response)
    next(events)
    [row] = read_calls(database_url, request_id="spanning")
    assert row["outcome"] == "in_progress"  # written before the outage
    outage.cut()
    body_text = b"".join(events)
    resp.close()
    assert body_text.endswith(b"data: [DONE]\n\n")
    assert read_calls(database_url, request_id="spanning")[0]["outcome"] == "in_progress"
    outage.restore()
    replay(app)
    [row] = read_calls(database_url, request_id="spanning")
    assert (row["outcome"], row["usage_source"]) == ("ok", "upstream")


def test_rejected_calls_during_an_outage_are_recorded_too(build, outage, database_url):
    app = build()
    auth = new_key(app)
    call(app, auth, "warm")
    outage.cut()
    resp = call(app, auth, "bad", temperature="hot")
    assert resp.status_code == 400
    outage.restore()
    replay(app)
    [row] = read_calls(database_url, request_id="bad")
    assert (row["outcome"], row["status_code"]) == ("invalid_request", 400)


def test_refuse_policy_answers_503_while_the_database_is_down(build, outage, database_url):
    app = build(when_database_down="refuse")
    auth = new_key(app)
    call(app, auth, "warm")
    outage.cut()
    first = call(app, auth, "first")  # finds the database down while recording
    second = call(app, auth, "second")
    assert first.status_code == 200
    assert second.status_code == 503
    assert second.get_json()["error"]["code"] == "database_unavailable"
    assert second.headers["Retry-After"]
    outage.restore()
    replay(app)
    assert read_calls(database_url, request_id="first")[0]["outcome"] == "ok"
    assert read_calls(database_url, request_id="second")[0]["status_code"] == 503


@pytest.mark.skipif(not USE_POSTGRES, reason="SQLite stays readable while its writes are locked")
def test_unseen_key_gets_503_while_the_database_is_down(build, outage, database_url):
    app = build()
    known = new_key(app)
    unseen = new_key(app)
    call(app, known, "warm")
    outage.cut()
    assert call(app, known, "known").status_code == 200
    resp = call(app, unseen, "unseen")
    assert resp.status_code == 503
    assert app.test_client().get("/readyz").status_code == 503
    assert resp.get_json()["error"]["code"] == "database_unavailable"
    outage.restore()
    replay(app)
    assert read_calls(database_url, request_id="known")[0]["outcome"] == "ok"
    assert read_calls(database_url, request_id="unseen")[0]["status_code"] == 503


def test_a_replay_racing_appends_loses_no_line(tmp_path):
    """The sweeper replays while request threads spool: every line is applied exactly once."""
    spool = Spool(tmp_path)
    applied: list[str] = []
    done = threading.Event()

    def write(n: int) -> None:
        for i in range(100):
            spool.append("open", {"id": f"{n}-{i}"})

    def replay() -> None:
        while not done.is_set():  # bounded: ends when the writers are done
            spool.replay(lambda op, values: applied.append(values["id"]), lambda pid: False)

    writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    replayer = threading.Thread(target=replay)
    replayer.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(60)
    done.set()
    replayer.join(60)
    spool.replay(lambda op, values: applied.append(values["id"]), lambda pid: False)
    assert sorted(applied) == sorted(f"{n}-{i}" for n in range(4) for i in range(100))
