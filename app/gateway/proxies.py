"""The client's address behind a reverse proxy (`[server] trusted_proxies`, docs/deployment.md,
"Behind nginx").

`X-Forwarded-For` is believed only as far as trusted hands wrote it: when the direct peer is a
trusted proxy, the header is read from the right, past every address that is itself a trusted
proxy, and the first other address is the client. A peer that is not trusted is the client,
whatever header it sends (a forged `X-Forwarded-For` is ignored). Werkzeug's ProxyFix counts a
fixed number of hops instead, which trusts whatever the first hop is told when fewer proxies
are in front than configured; here trust follows the addresses.

With no trusted proxies the middleware is not installed at all.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
PEER = "switchboard.peer"  # the direct peer's address, kept in the WSGI environ


def networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """The configured entries as networks (an address is a network of one)."""
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class TrustedProxies:
    """WSGI middleware: REMOTE_ADDR becomes the client a trusted proxy forwarded for."""

    def __init__(self, app: Callable[..., Any], trusted: Iterable[str]) -> None:
        self.app = app
        self.trusted = networks(trusted)

    def is_trusted(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(address in network for network in self.trusted)

    def client(self, peer: str, forwarded: str) -> str:
        """The client's address: `peer` unless a trusted peer forwarded for someone."""
        found = _address(peer)
        if found is None or not self.is_trusted(found):
            return peer
        client = peer
        for hop in reversed(forwarded.split(",")):
            address = _address(hop)
            if address is None:
                break  # garbage: believe no further than the last good hop
            client = str(address)
            if not self.is_trusted(address):
                break
        return client

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        peer = environ.get("REMOTE_ADDR", "")
        forwarded = environ.get("HTTP_X_FORWARDED_FOR")
        if forwarded:
            environ[PEER] = peer
            environ["REMOTE_ADDR"] = self.client(peer, forwarded)
            if environ["REMOTE_ADDR"] != peer:
                proto = environ.get("HTTP_X_FORWARDED_PROTO", "").strip().lower()
                if proto in ("http", "https"):
                    environ["wsgi.url_scheme"] = proto
        return self.app(environ, start_response)
