"""The states a confirmation link can be in, and which one a link is in: one answer each.

| state     | the link …                                   | the answer                      |
| --------- | -------------------------------------------- | ------------------------------- |
| PENDING   | is fresh, its reader pending                 | confirm                         |
| RETRY     | was spent, yet its reader is still pending   | confirm (again)                 |
| ACTIVE    | names a reader already subscribed (or paused)| "already subscribed" + settings |
| STALE     | was mailed before the reader unsubscribed    | no longer valid; sign up again  |
| EXPIRED   | is older than ``web.confirm_token_days``     | offer a new link (rate-limited) |

A forged, mangled or wrong-purpose link, or one whose reader was erased, has no state: it is
the usual "invalid link" error.
"""

from __future__ import annotations

from enum import StrEnum

from pipeline.models import SubscriberStatus


class LinkState(StrEnum):
    PENDING = "pending"
    RETRY = "retry"
    ACTIVE = "active"
    STALE = "stale"
    EXPIRED = "expired"


CONFIRMS = (LinkState.PENDING, LinkState.RETRY)


def link_state(
    status: SubscriberStatus, epoch: int, link_epoch: int, *, expired: bool, spent: bool
) -> LinkState:
    """The state of a genuine confirmation link for a reader in ``status`` and ``epoch``.

    The epoch comes first: a link from before an unsubscribe says nothing about the reader
    now, not even that they are subscribed again (its holder gets no settings link from it).
    """
    if link_epoch != epoch:
        return LinkState.STALE
    if status in (SubscriberStatus.ACTIVE, SubscriberStatus.PAUSED):
        return LinkState.ACTIVE
    if status != SubscriberStatus.PENDING:
        return LinkState.STALE  # unsubscribed, or suppressed since the link went out
    if expired:
        return LinkState.EXPIRED
    return LinkState.RETRY if spent else LinkState.PENDING
