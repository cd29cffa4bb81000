"""Age claims and leases in the database: stale and expiry checks read the database's clock,
so a test moves the rows back in time instead of passing a later ``now``."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update

from pipeline.models import Delivery, DeliveryStatus
from pipeline.store import Store
from pipeline.store import tables as s


def age_claims(store: Store, by: dt.timedelta) -> int:
    """Make every row in ``sending`` look claimed ``by`` ago; returns how many."""
    at = dt.datetime.now(dt.UTC) - by
    with store.engine.begin() as conn:
        done = conn.execute(
            update(s.deliveries)
            .where(s.deliveries.c.status == DeliveryStatus.SENDING.value)
            .values(claimed_at=at)
        )
        return int(done.rowcount)


def expire_lease(store: Store, name: str = "deliver") -> None:
    """Make the named lease look as if it ran out a second ago."""
    at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    with store.engine.begin() as conn:
        conn.execute(update(s.leases).where(s.leases.c.name == name).values(expires_at=at))


def claim_of(row: Delivery | None) -> str:
    """The claim id of a row ``ledger.claim`` returned: what its mark must carry."""
    assert row is not None and row.claim_id is not None
    return row.claim_id
