"""A bare Flask + requests pass-through: the ceiling of Switchboard's stack (benchmark only).

No keys, no validation, no ledger: parse the body, POST it to the upstream over one pooled
`requests.Session`, relay the answer (streams with `read1`, as they arrive). Any POST under
/v1 goes to the same path under BENCH_UPSTREAM (chat completions, Responses, Messages; a
Messages call also gets `x-api-key` and `anthropic-version`, as Switchboard's `anthropic`
providers send them). Run by
bench/run.py under gunicorn with Switchboard's own gunicorn settings (worker class, workers,
threads, worker connections, keep-alive, timeout: read from `switchboard.gunicorn_conf` by
bench/servers.py), e.g. with the defaults:

    BENCH_UPSTREAM=http://127.0.0.1:9100/v1 python -m gunicorn --pythonpath bench -w 2 \
        -k switchboard.gunicorn_worker.KeepAliveWorker --threads 512 --worker-connections 512 \
        passthrough:app
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import requests
from flask import Flask, Response, request
from requests.adapters import HTTPAdapter

UPSTREAM = os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:9100/v1").rstrip("/")
HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer sk-upstream"}
ANTHROPIC_HEADERS = {
    "Content-Type": "application/json",
    "x-api-key": "sk-upstream",
    "anthropic-version": "2023-06-01",
}

app = Flask(__name__)
session = requests.Session()
session.trust_env = False
session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=256, max_retries=0))


@app.get("/healthz")
def healthz() -> Response:
    return Response(b'{"status":"ok"}', content_type="application/json")


@app.post("/v1/<path:path>")
def relay_post(path: str) -> Response:
    body = request.get_data()
    stream = json.loads(body).get("stream") is True
    headers = ANTHROPIC_HEADERS if path.startswith("messages") else HEADERS
    upstream = session.post(
        f"{UPSTREAM}/{path}", data=body, headers=headers, stream=True, timeout=(5, 600)
    )
    ctype = upstream.headers.get("Content-Type", "application/json")
    if not stream or upstream.status_code != 200:
        return Response(upstream.content, status=upstream.status_code, content_type=ctype)

    def relay() -> Iterator[bytes]:
        try:
            while True:
                data = upstream.raw.read1(65536)
                if not data:
                    return
                yield data
        finally:
            upstream.close()

    return Response(relay(), status=200, content_type=ctype, headers={"Cache-Control": "no-cache"})
