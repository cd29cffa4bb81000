"""Who is on the other end of a request: loopback peers, proxies and their headers.

uvicorn believes ``X-Forwarded-For`` only from ``web.trusted_proxies`` (default: nobody), so
``request.client`` is the TCP peer unless a declared proxy named the client. ``ProxyHint``
notices the usual mistake, a proxy on this machine that was not declared: then every reader
looks like 127.0.0.1 and shares one sign-up limit.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request

from pipeline.config import Web
from pipeline.config_view import is_loopback_url

log = logging.getLogger("paperboy.web")

LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# Headers that proxies, CDNs and tunnels add to name the client or mark their hop.
FORWARDING = frozenset(
    {
        "forwarded",
        "via",
        "x-real-ip",
        "client-ip",
        "true-client-ip",
        "x-client-ip",
        "x-cluster-client-ip",
        "fastly-client-ip",
        "akamai-origin-hop",
        "x-proxyuser-ip",
        "cdn-loop",
    }
)
FORWARDING_PREFIXES = ("x-forwarded-", "x-original-", "cf-", "x-envoy-", "x-amzn-", "x-azure-")
# Requests looked at before deciding that every client is loopback.
SAMPLE = 50


def proxy_options(web: Web) -> dict[str, Any]:
    """uvicorn's proxy settings for ``web``: X-Forwarded-For is believed from the declared
    proxies only (uvicorn's own default would trust 127.0.0.1)."""
    return {
        "proxy_headers": bool(web.trusted_proxies),
        "forwarded_allow_ips": list(web.trusted_proxies) or "",
    }


def forwarded(headers: Mapping[str, str]) -> bool:
    """Whether any header says the request came through a proxy, CDN or tunnel."""
    return any(
        name.lower() in FORWARDING or name.lower().startswith(FORWARDING_PREFIXES)
        for name in headers
    )


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def trusted_proxy(host: str, proxies: list[str]) -> bool:
    """Whether ``host`` is one of the declared proxies (addresses or networks)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(p, strict=False) for p in proxies)


def host_name(value: str, url: bool = False) -> str:
    """The lower-case host of a ``Host`` header (``[::1]:8080`` → ``::1``) or of a URL."""
    try:
        return (urlsplit(value if url else f"//{value}").hostname or "").lower()
    except ValueError:
        return ""


def from_this_machine(request: Request, web: Web) -> bool:
    """A request from this machine, straight to us: a loopback peer that is not a declared
    proxy, no forwarding header of any proxy, CDN or tunnel, and a ``Host`` naming localhost
    or ``base_url``'s host, so a page whose domain was re-pointed at 127.0.0.1 (DNS
    rebinding) cannot read the answer from a browser on this machine."""
    if request.client is None or forwarded(request.headers):
        return False
    peer = request.client.host
    if not is_loopback(peer) or trusted_proxy(peer, web.trusted_proxies):
        return False
    host = host_name(request.headers.get("host", ""))
    return host in {*LOCAL_NAMES, host_name(web.base_url, url=True)} - {""}


class ProxyHint:
    """Logs one warning when the app looks to be behind a proxy that is not declared."""

    def __init__(self) -> None:
        self.loopback_seen = 0
        self.done = False

    def see(self, request: Request, web: Web) -> None:
        """Look at one request; cheap, and nothing at all once decided."""
        if self.done or web.trusted_proxies or request.client is None:
            return
        if not is_loopback(request.client.host):
            self.done = True  # clients reach the app directly
            return
        if forwarded(request.headers):
            self.warn("a client on this machine sends proxy headers")
            return
        self.loopback_seen += 1
        if self.loopback_seen < SAMPLE:
            return
        if is_loopback_url(web.base_url):
            self.done = True  # a local instance (make run): local clients are expected
        else:
            self.warn(f"the first {SAMPLE} requests all came from this machine")

    def warn(self, why: str) -> None:
        self.done = True
        log.warning(
            "%s, but web.trusted_proxies is empty: if a reverse proxy or tunnel runs here, "
            'declare it (e.g. trusted_proxies = ["127.0.0.1"]), or every reader shares one '
            "sign-up limit",
            why,
        )
