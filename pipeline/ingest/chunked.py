"""An opened dump into the store, chunk by chunk, each chunk its own short transaction.

    begin (the dump is "in progress") → add_chunk × n → finish (the dump is done)

Only ``finish`` marks the bytes as ingested, and only after it is the file archived. A crash
or a refused write in between leaves the file in the inbox; ingesting it again merges the
chunks already stored once more (a paper merged with itself is unchanged) and goes on.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from pipeline.ingest import OpenDump, ParsedEntries
from pipeline.models import IngestOutcome, ParseWarning

if TYPE_CHECKING:
    from pipeline.store import Store

log = logging.getLogger("paperboy.ingest")

MAX_WARNINGS = 1_000  # warnings kept per dump; a dump of a million bad entries says so once
PROGRESS_EVERY = 100  # chunks between two progress lines in the log


class _Warnings:
    """The first MAX_WARNINGS warnings of a dump, and how many more there were."""

    def __init__(self) -> None:
        self.kept: list[str] = []
        self.dropped = 0

    def extend(self, warnings: Iterable[ParseWarning]) -> None:
        for warning in warnings:
            if len(self.kept) < MAX_WARNINGS:
                self.kept.append(str(warning))
            else:
                self.dropped += 1

    def all(self) -> list[str]:
        if not self.dropped:
            return self.kept
        return [*self.kept, f"file: {self.dropped:,} more warnings not listed"]


def store_dump(
    store: Store,
    dump: OpenDump,
    chunk_size: int,
    *,
    before_finish: Callable[[], bool] | None = None,
    on_chunk: Callable[[ParsedEntries], None] | None = None,
    now: dt.datetime | None = None,
) -> IngestOutcome | None:
    """Stream ``dump``'s papers into ``store``; None if ``before_finish`` says the file changed
    meanwhile (then the dump stays in progress and is not marked done)."""
    head = dump.head
    base = {"dump_id": head.id, "name": head.name, "format": head.format}
    if not store.papers.begin(head, now):
        return IngestOutcome(**base, already_ingested=True)
    warnings = _Warnings()
    warnings.extend(head.warnings)
    new = papers = skipped = 0
    for number, part in enumerate(dump.chunks(chunk_size), start=1):
        if part.papers:
            new += store.papers.add_chunk(head, part.papers, now)
        if on_chunk is not None:
            on_chunk(part)
        papers += len(part.papers)
        skipped += part.skipped
        warnings.extend(part.warnings)
        if number % PROGRESS_EVERY == 0:
            done = papers + skipped
            log.info("%s: %d of %d entries read, %d stored", head.name, done, head.records, papers)
    if before_finish is not None and not before_finish():
        return None
    kept = warnings.all()
    store.papers.finish(head, papers, kept, now)
    return IngestOutcome(
        **base, new=new, merged=papers - new, skipped=skipped, warnings=tuple(kept)
    )
