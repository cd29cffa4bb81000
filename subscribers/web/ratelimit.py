"""Per-network limit on sign-up posts: a sliding one-hour window kept in the store.

The window lives in the store's ``signup_events`` table rather than in memory, so it holds
across restarts and across several web workers sharing one database. Every post under the
limit is recorded (valid or not, so probing costs attempts); posts over the limit are refused
with 429 and not recorded, so a flood costs one read each and no writes. The check and the
record are two statements, so a burst of concurrent posts may overshoot by a few; that is
fine for a limit whose job is to stop list-bombing through the form. Events older than a
day are pruned at most once an hour, so the table stays small.

IPv6 clients are limited per /64 network, because one host usually controls a whole /64.
"""

from __future__ import annotations

import datetime as dt
import ipaddress

from pipeline.store import Store

WINDOW = dt.timedelta(hours=1)
# Events are kept a day past the window (for an admin looking into abuse), then pruned.
KEEP = dt.timedelta(days=1)


def network_key(host: str) -> str:
    """The rate-limit key for a client address: the IPv4 address, or the IPv6 /64."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host[:64] or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class SignupLimiter:
    """``allow`` says whether a network may post the sign-up form again this hour."""

    def __init__(self, store: Store, per_hour: int) -> None:
        self.store = store
        self.per_hour = per_hour
        self._pruned_at: dt.datetime | None = None

    def allow(self, host: str, now: dt.datetime) -> bool:
        return self.store.signups.count_since(network_key(host), now - WINDOW) < self.per_hour

    def record(self, host: str, accepted: bool, now: dt.datetime) -> None:
        self.store.signups.record(network_key(host), accepted, now)
        if self._pruned_at is None or now - self._pruned_at >= WINDOW:
            self.store.signups.prune(now - KEEP)
            self._pruned_at = now
