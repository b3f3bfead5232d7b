"""The ledger's safety nets: rows left in progress by dead processes become `interrupted`."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import insert
from switchboard.database import Database
from switchboard.ledger.call import Call, CallEnd
from switchboard.ledger.ledger import Ledger
from switchboard.ledger.liveness import HOST, worker_tag
from switchboard.ledger.spool import Spool
from switchboard.tables import CallRecord, utcnow

from tests.conftest import ROOT, read_calls


def dead_pid() -> int:
    """The pid of a process that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def open_row(db: Database, call_id: str, worker: str, age_seconds: float = 0) -> None:
    with db.write() as conn:
        conn.execute(insert(CallRecord.__table__).values(
            id=call_id, request_id=call_id, endpoint="/v1/chat/completions",
            created_at=utcnow() - timedelta(seconds=age_seconds), outcome="in_progress",
            stream=True, attempts=1, usage_source="absent", worker=worker))  # fmt: skip


def outcomes(database_url: str) -> dict[str, str]:
    return {r["id"]: r["outcome"] for r in read_calls(database_url)}


def test_open_and_finish_write_one_row(database_url, tmp_path):
    db = Database(database_url)
    ledger = Ledger(db, Spool(tmp_path))
    call = Call(endpoint="/v1/chat/completions", model="m")
    ledger.open(call)
    [row] = read_calls(database_url)
    assert (row["outcome"], row["worker"]) == ("in_progress", ledger.liveness.tag)
    ledger.finish(call, CallEnd("ok", 200))
    ledger.finish(call, CallEnd("upstream_error", 502))  # a second finish changes nothing
    [row] = read_calls(database_url)
    assert (row["outcome"], row["status_code"], row["worker"]) == ("ok", 200, None)
    db.dispose()


def test_rows_of_a_dead_master_are_interrupted_at_start(database_url, tmp_path):
    db = Database(database_url)
    dead = dead_pid()
    open_row(db, "dead-1", f"{HOST}:{dead}:{dead + 1}")
    open_row(db, "alive-1", worker_tag())  # this test process's master: alive
    open_row(db, "elsewhere-1", f"other-host:{dead}:1")  # another instance's business
    assert Ledger(db, Spool(tmp_path)).liveness.interrupt_dead_masters() == 1
    assert outcomes(database_url) == {
        "dead-1": "interrupted",
        "alive-1": "in_progress",
        "elsewhere-1": "in_progress",
    }
    db.dispose()


def ledger_task(database_url: str, *args: str, config: str | None = None):
    """Run `python -m switchboard.ledger.serving ARGS` as the gunicorn master does."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env["SWITCHBOARD_DATABASE_URL"] = database_url
    if config:
        env["SWITCHBOARD_CONFIG"] = config
    return subprocess.run(
        [sys.executable, "-m", "switchboard.ledger.serving", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_start_task_sweeps_dead_masters(database_url):
    db = Database(database_url)
    dead = dead_pid()
    open_row(db, "dead-2", f"{HOST}:{dead}:{dead + 1}")
    done = ledger_task(database_url, "start")
    assert done.returncode == 0, done.stderr
    assert outcomes(database_url) == {"dead-2": "interrupted"}
    assert "marked 1 in-progress call(s) interrupted" in done.stderr
    db.dispose()


def test_start_task_stops_on_a_configuration_error(database_url, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[providers]]\nname = "x"\nkind = "telegraph"\n')
    done = ledger_task(database_url, "start", config=str(bad))
    assert done.returncode == 2 and "`kind` must be one of" in done.stderr


def test_worker_exited_task_interrupts_only_that_workers_rows(database_url):
    db = Database(database_url)
    open_row(db, "w-100", worker_tag(pid=100, parent=4242))
    open_row(db, "w-101", worker_tag(pid=101, parent=4242))
    done = ledger_task(database_url, "worker-exited", "4242", "100")
    assert done.returncode == 0, done.stderr
    assert outcomes(database_url) == {"w-100": "interrupted", "w-101": "in_progress"}
    [row] = [r for r in read_calls(database_url) if r["id"] == "w-100"]
    assert row["error"].startswith("worker ") and row["completed_at"] is not None
    db.dispose()


def test_periodic_sweep_uses_heartbeats(database_url, tmp_path):
    db = Database(database_url)
    ledger = Ledger(db, Spool(tmp_path))
    ledger.liveness.heartbeat()
    open_row(db, "mine-old", ledger.liveness.tag, age_seconds=600)  # long stream, worker alive
    open_row(db, "silent-old", f"{HOST}:1:2", age_seconds=600)  # no heartbeat at all
    open_row(db, "silent-new", f"{HOST}:1:3", age_seconds=0)  # too young to judge
    assert ledger.liveness.sweep(stale_after=60) == 1
    assert outcomes(database_url) == {
        "mine-old": "in_progress",
        "silent-old": "interrupted",
        "silent-new": "in_progress",
    }
    db.dispose()


def test_a_path_and_model_no_column_can_hold_are_recorded_cut(database_url, tmp_path):
    db = Database(database_url)
    ledger = Ledger(db, Spool(tmp_path))
    call = Call(endpoint="/v1/chat/completions/" + "x\x00" * 200, model="m\x00" + "y" * 300)
    ledger.finish(call, CallEnd("unauthorized", 401, error="bad \x00 key"))
    [row] = read_calls(database_url)
    assert row["endpoint"] == ("/v1/chat/completions/" + "x" * 200)[:200]
    assert row["model"] == ("m" + "y" * 300)[:200]
    assert row["error"] == "bad  key"
    assert not ledger.database_down and not Spool(tmp_path).files()
    db.dispose()


def test_a_spooled_row_the_database_refuses_is_set_aside(database_url, tmp_path):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite stores any text: only PostgreSQL refuses an over-wide value")
    db = Database(database_url)
    ledger = Ledger(db, Spool(tmp_path))
    bad, good = Call(endpoint="/v1/x"), Call(endpoint="/v1/y")
    spool = ledger.spool
    blank = ledger.writes.sql.blank
    spool.append("finish", blank | bad.identity() | {"key_name": "k" * 300,
                 "outcome": "ok", "attempts": 0, "usage_source": "absent"})  # fmt: skip
    spool.append("finish", blank | good.identity() | {"outcome": "ok", "attempts": 0,
                 "usage_source": "absent"})  # fmt: skip
    assert ledger.replay_spool() == 2
    assert [r["id"] for r in read_calls(database_url)] == [good.id]
    [refused] = list(tmp_path.joinpath("spool").glob("refused-*.txt"))
    assert bad.id in refused.read_text() and not spool.files()
    db.dispose()
