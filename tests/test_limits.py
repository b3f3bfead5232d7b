"""Per-key rpm and tpm: exact in one process, across gunicorn workers, across instances."""

from __future__ import annotations

import dataclasses
import threading
import uuid

import pytest
import requests
from switchboard import create_app
from switchboard.config import Settings

from tests.conftest import free_port, read_calls, start_server, stop_server
from tests.helpers import HELLO, bearer, post_chat, post_chat_http


def test_rpm_admits_exactly_the_limit_then_429(app, make_key, upstream, database_url):
    secret = make_key("two-a-minute", rpm=2)
    first, second, third = (post_chat(app, bearer(secret)) for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (200, 200, 429)
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert second.headers["x-ratelimit-remaining-requests"] == "0"
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")
    error = third.get_json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_exceeded")
    assert "2 requests per minute" in error["message"]
    assert 1 <= int(third.headers["Retry-After"]) <= 60
    assert third.headers["x-ratelimit-remaining-requests"] == "0"
    assert len(upstream.received) == 2
    outcomes = [(r["outcome"], r["status_code"]) for r in read_calls(database_url)]
    assert outcomes == [("ok", 200), ("ok", 200), ("rate_limited", 429)]


def test_keys_without_limits_get_no_rate_headers(app, make_key):
    resp = post_chat(app, bearer(make_key("free")))
    assert resp.status_code == 200
    assert not [h for h in resp.headers.keys() if h.lower().startswith("x-ratelimit")]


def test_tpm_counts_the_tokens_calls_used(app, make_key, upstream, database_url):
    secret = make_key("tokens", tpm=30)  # the fake reports 18 tokens a call
    first = post_chat(app, bearer(secret))
    assert first.headers["x-ratelimit-limit-tokens"] == "30"
    assert first.headers["x-ratelimit-remaining-tokens"] == "30"  # before this call's tokens
    second = post_chat(app, bearer(secret), stream=True)
    assert second.status_code == 200 and second.get_data().endswith(b"data: [DONE]\n\n")
    assert second.headers["x-ratelimit-remaining-tokens"] == "12"
    third = post_chat(app, bearer(secret))  # 36 tokens used of 30
    assert third.status_code == 429
    assert "30 tokens per minute" in third.get_json()["error"]["message"]
    assert third.headers["x-ratelimit-remaining-tokens"] == "0"
    assert len(upstream.received) == 2
    assert [r["outcome"] for r in read_calls(database_url)] == ["ok", "ok", "rate_limited"]


@pytest.mark.parametrize("policy", ["open", "closed"])
def test_store_down_policy(settings: Settings, make_key, policy, upstream):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(
        dataclasses.replace(settings, limits_storage=dead, limits_fail_open=policy == "open")
    )
    try:
        keys = app.extensions["switchboard"].keys
        _, secret = keys.create(name="limited", rpm=5)
        resp = post_chat(app, bearer(secret))
        ready = app.test_client().get("/readyz")
        assert ready.get_json()["limits"]["healthy"] is False
        if policy == "open":
            assert resp.status_code == 200  # served, uncounted
            assert ready.status_code == 200
        else:
            assert resp.status_code == 503
            assert resp.get_json()["error"]["code"] == "limits_unavailable"
            assert ready.status_code == 503
            assert upstream.received == []
    finally:
        app.extensions["switchboard"].close()


def burst(urls: list[str], secret: str, count: int) -> list[int]:
    """`count` concurrent calls spread over `urls`, each on a new connection."""
    statuses: list[int] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        resp = post_chat_http(
            urls[i % len(urls)],
            bearer(secret) | {"Connection": "close"},
            {"model": "gpt-4o-mini", "messages": HELLO},
            timeout=30,
        )
        with lock:
            statuses.append(resp.status_code)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(40)
    return statuses


@pytest.mark.integration
def test_rpm_holds_across_four_gunicorn_workers(upstream, databases, tmp_path):
    srv = start_server(tmp_path, upstream.base_url, databases.fresh("rpm4"), workers=4)
    try:
        name = f"rpm-{uuid.uuid4().hex[:6]}"
        secret = srv.create_key("--name", name, "--rpm", "2")
        statuses = burst([srv.base_url], secret, 12)
        assert sorted(statuses) == [200, 200] + [429] * 10
        rows = [r for r in read_calls(srv.database_url) if r["key_name"] == name]
        assert sorted(r["outcome"] for r in rows) == ["ok", "ok"] + ["rate_limited"] * 10
        assert len(upstream.received) == 2
    finally:
        stop_server(srv)


@pytest.mark.integration
def test_rpm_holds_across_two_instances_sharing_redis(upstream, databases, tmp_path, redis_url):
    database_url = databases.fresh("rpm2i")
    shared = {"limits": {"storage": redis_url}}
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = start_server(tmp_path / "one", upstream.base_url, database_url, sections=shared)
    two = start_server(tmp_path / "two", upstream.base_url, database_url, sections=shared)
    try:
        name = f"rpm-{uuid.uuid4().hex[:6]}"
        secret = one.create_key("--name", name, "--rpm", "2")
        statuses = burst([one.base_url, two.base_url], secret, 12)
        assert sorted(statuses) == [200, 200] + [429] * 10
        assert len(upstream.received) == 2
        ready = requests.get(two.base_url + "/readyz", timeout=5).json()
        assert ready["limits"]["healthy"] is True and ready["limits"]["store"] != "local"
    finally:
        stop_server(one)
        stop_server(two)
