"""Two instances of Switchboard behind a real nginx running deploy/nginx.conf (docs/deployment.md,
"Several instances behind nginx"): one database, one Redis, streams unbuffered, the client's
address forwarded, an rpm limit exact across both, and an instance killed mid-stream losing no
row while nginx sends the next calls to the other.

nginx and redis-server come from Debian's packages (.ci/run installs them); without them the
module is skipped, except under CI=1, where that is a failure.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import (
    ROOT,
    Server,
    answers,
    free_port,
    read_calls,
    start_server,
    stop_server,
    wait_for,
)
from tests.helpers import CHAT, bearer

pytestmark = pytest.mark.integration

NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)), None
)
if NGINX is None or shutil.which("redis-server") is None:
    why = "nginx and redis-server are needed (.ci/run installs them)"
    if os.environ.get("CI") == "1":
        pytest.fail(why, pytrace=False)
    pytest.skip(why, allow_module_level=True)


class Stack:
    def __init__(self, url: str, one: Server, two: Server) -> None:
        self.url, self.one, self.two = url, one, two


def nginx_config(workdir: Path, port: int, one: Server, two: Server) -> Path:
    """deploy/nginx.conf with the test's ports, inside a top-level file of the test's own."""
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    for fixed, server in (("127.0.0.1:8001", one), ("127.0.0.1:8002", two)):
        assert fixed in site
        site = site.replace(fixed, server.base_url.removeprefix("http://"))
    assert "listen 80;" in site
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    (workdir / "switchboard.conf").write_text(site)
    temp = " ".join(f"{kind}_temp_path {workdir / kind};" for kind in
                    ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))  # fmt: skip
    top = f"""
{"user root;" if os.geteuid() == 0 else ""}
daemon off;
worker_processes 1;
pid {workdir / "nginx.pid"};
error_log {workdir / "error.log"} warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    {temp}
    include {workdir / "switchboard.conf"};
}}
"""
    path = workdir / "nginx.top.conf"
    path.write_text(top)
    return path


@pytest.fixture(scope="module")
def stack(
    _fake_upstream: Any, databases: Any, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    database_url = databases.fresh("nginx")
    sections = {
        "limits": {"storage": redis_url},
        "server": {"trusted_proxies": ["127.0.0.1"]},
        # A dead instance's open calls are interrupted by the other's sweep within seconds.
        "ledger": {"sweep_interval": 1, "stale_after": 3},
    }
    root = tmp_path_factory.mktemp("behind-nginx")
    servers = []
    for name in ("one", "two"):
        (root / name).mkdir()
        servers.append(start_server(root / name, _fake_upstream.base_url, database_url,
                                    sections=sections))  # fmt: skip
    one, two = servers
    port = free_port()
    config = nginx_config(root, port, one, two)
    check = subprocess.run([NGINX, "-t", "-p", str(root), "-c", str(config)],
                           capture_output=True, text=True, timeout=30)  # fmt: skip
    assert check.returncode == 0, check.stderr
    nginx = subprocess.Popen([NGINX, "-p", str(root), "-c", str(config)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: answers(url + "/healthz"), timeout=15), (
            root / "error.log"
        ).read_text()
        one.key = one.create_key("--name", "through-nginx")
        yield Stack(url, one, two)
    finally:
        nginx.send_signal(signal.SIGQUIT)
        try:
            nginx.wait(timeout=10)
        except subprocess.TimeoutExpired:
            nginx.kill()
        for server in servers:
            stop_server(server)


def body(model: str = "gpt-4o-mini", stream: bool = False) -> dict[str, Any]:
    content = f"via nginx {uuid.uuid4().hex[:8]}"
    return {"model": model, "stream": stream, "messages": [{"role": "user", "content": content}]}


def served_by(stack: Stack, request_id: str) -> set[str]:
    """Which instances wrote an access line for the call."""
    return {name for name, srv in (("one", stack.one), ("two", stack.two))
            if f"request_id={request_id}" in srv.log()}  # fmt: skip


def test_a_stream_is_not_buffered(stack, upstream):
    # "slow": the first chunk, then 1.5 s of silence, then the rest.
    with requests.post(stack.url + CHAT, json=body("slow", stream=True),
                       headers=bearer(stack.one.key), stream=True, timeout=20) as resp:  # fmt: skip
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        lines = resp.iter_lines()
        first = next(lines)
        assert first.startswith(b"data: ")
        # The upstream has not finished its stream yet, so the chunk was not held back.
        assert upstream.wait_stream_end("slow-stream", timeout=0.01) is None
        rest = [line for line in lines if line]
    assert rest[-1] == b"data: [DONE]"
    assert upstream.wait_stream_end("slow-stream", timeout=5) is not None


def test_the_ledger_has_the_forwarded_client_not_a_forged_one(stack):
    host, port = stack.url.removeprefix("http://").split(":")
    # The test client connects from 127.0.0.2 and claims to be forwarding for 6.6.6.6.
    conn = http.client.HTTPConnection(host, int(port), timeout=20,
                                      source_address=("127.0.0.2", 0))  # fmt: skip
    headers = bearer(stack.one.key) | {"Content-Type": "application/json",
                                       "X-Forwarded-For": "6.6.6.6"}  # fmt: skip
    try:
        conn.request("POST", CHAT, body=json.dumps(body()), headers=headers)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200
        request_id = resp.getheader("x-request-id")
    finally:
        conn.close()
    row = wait_for(lambda: read_calls(stack.one.database_url, request_id=request_id))[0]
    assert row["client_ip"] == "127.0.0.2"


def test_an_rpm_limit_holds_exactly_across_both_instances(stack):
    name = f"rpm-{uuid.uuid4().hex[:6]}"
    secret = stack.one.create_key("--name", name, "--rpm", "4")
    answered = [requests.post(stack.url + CHAT, json=body(), headers=bearer(secret), timeout=20)
                for _ in range(10)]  # fmt: skip
    assert sorted(r.status_code for r in answered) == [200] * 4 + [429] * 6
    ids = [r.headers["x-request-id"] for r in answered]
    assert wait_for(lambda: all(served_by(stack, i) for i in ids))
    # nginx spread the calls over both instances, and each call was served by one.
    assert {n for i in ids for n in served_by(stack, i)} == {"one", "two"}
    assert all(len(served_by(stack, i)) == 1 for i in ids)
    rows = [r for r in read_calls(stack.one.database_url) if r["key_name"] == name]
    assert sorted(r["outcome"] for r in rows) == ["ok"] * 4 + ["rate_limited"] * 6


def test_an_instance_killed_mid_stream_loses_no_row_and_the_other_serves(stack):
    request_id = f"nginx-kill-{uuid.uuid4().hex[:8]}"
    headers = bearer(stack.one.key) | {"X-Request-Id": request_id}
    # "long": 60 chunks 0.1 s apart.
    with requests.post(stack.url + CHAT, json=body("long", stream=True), headers=headers,
                       stream=True, timeout=20) as resp:  # fmt: skip
        assert resp.status_code == 200
        lines = resp.iter_lines()
        assert next(lines)
        row = wait_for(lambda: read_calls(stack.one.database_url, request_id=request_id))[0]
        assert row["outcome"] == "in_progress"
        _, master, worker = str(row["worker"]).rsplit(":", 2)
        victim = stack.one if int(master) == stack.one.process.pid else stack.two
        assert int(master) == victim.process.pid
        for pid in (int(master), int(worker)):
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(requests.RequestException):
            for _ in lines:
                pass
    victim.process.wait(timeout=10)
    survivor = stack.two if victim is stack.one else stack.one

    def ended() -> dict[str, Any] | None:
        rows = read_calls(stack.one.database_url, request_id=request_id)
        return rows[0] if rows and rows[0]["outcome"] != "in_progress" else None

    # The survivor's sweep finds the dead instance silent and closes its call.
    closed = wait_for(ended, timeout=20)
    assert closed, "the killed instance's call stayed in_progress"
    assert closed["outcome"] == "interrupted"
    # nginx sends the next calls to the instance left.
    after = [requests.post(stack.url + CHAT, json=body(), headers=bearer(stack.one.key),
                           timeout=20) for _ in range(4)]  # fmt: skip
    assert [r.status_code for r in after] == [200] * 4
    ids = [r.headers["x-request-id"] for r in after]
    name = "one" if survivor is stack.one else "two"
    assert wait_for(lambda: all(served_by(stack, i) == {name} for i in ids))
