"""The edition a reader would get: as mailed when the ledger has it, else matched now.

``paperboy preview`` and the admin app's subscriber page both show it; neither sends
anything nor touches the ledger.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from pipeline.config import Config
from pipeline.editions import local_now, next_send, select_editions
from pipeline.ledger import recorded_selection
from pipeline.models import Selection, Subscriber

if TYPE_CHECKING:  # SQLAlchemy and the sentence model, for the annotations only
    from pipeline.embedding.runtime import SentenceModel
    from pipeline.store import Store


def edition_selection(
    store: Store,
    config: Config,
    sub: Subscriber,
    edition: dt.date,
    now: dt.datetime,
    model: SentenceModel | None = None,
) -> Selection:
    """``sub``'s edition of ``edition``: the ledger's papers and reasons when it was queued
    with papers, otherwise matched as of ``now`` the way ``send`` would match."""
    from pipeline.run import selector  # the matcher and the embedding runtime

    row = store.ledger.get(sub.id, edition)
    if row is not None and row.paper_ids:
        return recorded_selection(row, store.papers.by_ids(row.paper_ids))
    select = selector(config, store, model)
    return select_editions(store, select, [sub], edition, now)[0]


def next_edition(
    store: Store,
    config: Config,
    sub: Subscriber,
    now: dt.datetime,
    model: SentenceModel | None = None,
) -> tuple[dt.date, Selection]:
    """The reader's next edition and its papers as they would match now: the date of their
    next send moment, or today's date in their zone when none is scheduled (not active)."""
    at = next_send(sub, now)
    edition = local_now(sub, at if at is not None else now).date()
    return edition, edition_selection(store, config, sub, edition, now, model)
