"""The client's address behind a reverse proxy (`[server] trusted_proxies`, app/gateway/proxies.py):
X-Forwarded-For believed only as far as trusted proxies wrote it."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from switchboard.gateway.proxies import TrustedProxies

from tests.conftest import read_calls
from tests.helpers import bearer, post_chat


def client_of(trusted: list[str], peer: str, forwarded: str) -> str:
    return TrustedProxies(lambda e, s: None, trusted).client(peer, forwarded)


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded", "client"),
    [
        # nginx on this host forwards for the real client
        (["127.0.0.1"], "127.0.0.1", "203.0.113.7", "203.0.113.7"),
        # the client sent a forged header; nginx appended the real peer: the forgery is ignored
        (["127.0.0.1"], "127.0.0.1", "6.6.6.6, 203.0.113.7", "203.0.113.7"),
        # two trusted hops (a load balancer, then nginx) are walked past
        (["127.0.0.1", "10.0.0.0/8"], "127.0.0.1", "6.6.6.6, 198.51.100.2, 10.1.2.3",
         "198.51.100.2"),
        # an untrusted peer is the client whatever it claims
        (["127.0.0.1"], "192.0.2.9", "127.0.0.1, 203.0.113.7", "192.0.2.9"),
        (["10.0.0.0/8"], "127.0.0.1", "203.0.113.7", "127.0.0.1"),
        # garbage stops the walk at the last good hop
        (["127.0.0.1"], "127.0.0.1", "203.0.113.7, not-an-ip", "127.0.0.1"),
        (["127.0.0.1", "10.0.0.1"], "127.0.0.1", "bogus, 10.0.0.1", "10.0.0.1"),
        # every hop trusted: the farthest one
        (["127.0.0.0/8"], "127.0.0.1", "127.0.0.2", "127.0.0.2"),
        # ports and IPv6
        (["::1"], "::1", "[2001:db8::5]:4711", "2001:db8::5"),
        (["127.0.0.1"], "127.0.0.1", "203.0.113.7:5555", "203.0.113.7"),
        (["fd00::/8"], "fd00::1", "2001:db8::9, fd00::2", "2001:db8::9"),
    ],
)  # fmt: skip
def test_the_client_is_the_first_untrusted_hop_from_the_right(trusted, peer, forwarded, client):
    assert client_of(trusted, peer, forwarded) == client


def test_the_middleware_sets_remote_addr_and_keeps_the_peer():
    seen = {}

    def app(environ, start_response):
        seen.update(environ)
        return []

    environ = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.7",
               "HTTP_X_FORWARDED_PROTO": "https", "wsgi.url_scheme": "http"}  # fmt: skip
    TrustedProxies(app, ["127.0.0.1"])(environ, None)
    assert seen["REMOTE_ADDR"] == "203.0.113.7"
    assert seen["switchboard.peer"] == "127.0.0.1"
    assert seen["wsgi.url_scheme"] == "https"
    seen.clear()
    forged = {"REMOTE_ADDR": "192.0.2.9", "HTTP_X_FORWARDED_FOR": "1.2.3.4",
              "HTTP_X_FORWARDED_PROTO": "https", "wsgi.url_scheme": "http"}  # fmt: skip
    TrustedProxies(app, ["127.0.0.1"])(forged, None)
    assert (seen["REMOTE_ADDR"], seen["wsgi.url_scheme"]) == ("192.0.2.9", "http")


def ledger_ip(app, database_url, remote: str, forwarded: str | None) -> str:
    _, secret = app.extensions["switchboard"].keys.create(name=f"ip-{uuid.uuid4().hex[:6]}")
    headers = bearer(secret) | ({"X-Forwarded-For": forwarded} if forwarded else {})
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = remote
    resp = post_chat(client, headers)
    assert resp.status_code == 200
    rows = read_calls(database_url, request_id=resp.headers["x-request-id"])
    return rows[0]["client_ip"]


def test_the_ledger_records_the_forwarded_client_only_from_a_trusted_proxy(
    settings, make_app, database_url
):
    trusting = make_app(dataclasses.replace(settings, trusted_proxies=("127.0.0.1",)))
    assert ledger_ip(trusting, database_url, "127.0.0.1", "203.0.113.7") == "203.0.113.7"
    assert ledger_ip(trusting, database_url, "192.0.2.9", "203.0.113.7") == "192.0.2.9"
    # With no trusted proxies (the default) the header is ignored altogether.
    plain = make_app(settings)
    assert ledger_ip(plain, database_url, "127.0.0.1", "203.0.113.7") == "127.0.0.1"
