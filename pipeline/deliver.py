"""The delivery engine: claim → send → mark over the ledger, with backoff.

Per row (DESIGN.md, "Delivery is at-least-once with nothing lost"):

    claim (commit: sending) ──send──▶ 250            → mark_sent (commit, papers recorded)
                                 ├─▶ drop or timeout  → sent_ambiguous (papers recorded, never
                                 │   after DATA's dot   resent: perhaps delivered)
                                 ├─▶ 4xx/552/drop,    → deferred, retry after backoff + jitter,
                                 │   5.7.x/554/421      failed once give_up_after_hours passed
                                 ├─▶ 5.1.1 … 5.2.1    → failed, address suppressed
                                 ├─▶ other 5xx, RCPT  → failed, +1 bounce score (3 in 14 days
                                 │                      suppress the address)
                                 ├─▶ other 5xx, DATA  → failed (the content, not the address)
                                 └─▶ auth/TLS failure, sender refused at MAIL
                                                      → claim released, run aborted

Which reply is which is ``pipeline.bounces``' table.

Only a crash between the server's 250 and the ``sent`` commit can send an edition twice; the
resend carries the same Message-ID. A connection lost between the final dot and the reply is
recorded ``sent_ambiguous`` and counted as a possible duplicate (the server may have it), never
resent. Which editions are due and what they hold is
``pipeline.editions``'s business; ``run.deliver_due`` wires the two together.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Literal

from pipeline import metrics
from pipeline.bounces import BOUNCE_LIMIT, BOUNCE_WINDOW
from pipeline.breaker import Breaker, signal_of
from pipeline.config import Delivery as DeliveryConfig
from pipeline.errors import (
    DeliveryUncertain,
    PermanentSendError,
    RecipientBounced,
    RecipientRefused,
    RenderError,
    SendAbort,
    SendError,
    StoreError,
)
from pipeline.models import (
    Delivery,
    Subscriber,
    SubscriberStatus,
)
from pipeline.send import Sender
from pipeline.store import Store

log = logging.getLogger("paperboy.deliver")

# A fenced mark that found its claim gone: taken over after going stale, or erased mid-send.
_UNRECORDED = "the ledger row was claimed again or erased while in flight"

Status = Literal["sent", "ambiguous", "deferred", "failed", "skipped"]
Clock = Callable[[], dt.datetime]
Compose = Callable[[Delivery, Subscriber, dt.datetime], EmailMessage]


def retry_delay(
    attempts: int, config: DeliveryConfig, rng: random.Random | None = None
) -> dt.timedelta:
    """Exponential backoff with jitter: base·2^(n-1), capped, then scaled by 0.5–1.0."""
    rng = rng or random.Random()
    seconds = min(config.retry_base_seconds * 2 ** max(0, attempts - 1), config.retry_max_seconds)
    return dt.timedelta(seconds=seconds * rng.uniform(0.5, 1.0))


# --- the engine -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    subscriber_id: int
    edition: dt.date
    status: Status
    detail: str
    reason: str = ""  # the detail without this row's particulars (a retry time): for grouping


@dataclass(frozen=True, slots=True)
class Job:
    """One ledger row to deliver, with its message when this run has just rendered it
    (a row queued by an earlier run is rebuilt from the ledger by ``compose``)."""

    row: Delivery
    message: EmailMessage | None = None


class StopRequest:
    """Set from a signal handler (SIGTERM): the engine claims no further row, finishes the
    sends in flight, and returns; unclaimed rows stay queued for the next run."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def set(self, reason: str) -> None:
        self.reason = reason


@dataclass
class Tally:
    """What one run did; ``aborted`` says why it stopped early, if it did, and ``paused`` why
    the circuit breaker paused it (``held`` rows then wait for the pause to end); ``stopped``
    says which signal asked it to stop."""

    queued: int = 0
    due: int = 0  # dry run: editions that would be sent now
    sent: int = 0
    ambiguous: int = 0  # sent_ambiguous: lost after the final dot; perhaps delivered, not resent
    deferred: int = 0
    failed: int = 0
    skipped: int = 0
    missed: int = 0  # editions recorded missed: not sent by their send hour + the cutoff
    aborted: str | None = None
    paused: str | None = None
    held: int = 0
    stopped: str | None = None
    busy: bool = False
    failures: list[str] = field(default_factory=list)
    last_deferred: str | None = None
    # (status, reason) -> editions: the run's deferrals and failures, grouped for the summary
    reasons: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, outcome: Outcome) -> None:
        setattr(self, outcome.status, getattr(self, outcome.status) + 1)
        if outcome.status in ("deferred", "failed"):
            self.reasons[(outcome.status, outcome.reason or outcome.detail)] += 1
        if outcome.status == "failed":
            self.failures.append(f"{outcome.subscriber_id} {outcome.edition}: {outcome.detail}")
        if outcome.status == "deferred":
            self.last_deferred = outcome.detail

    def problem(self) -> str | None:
        """Why this run did not do its job, in one line: it was aborted or paused, or
        something was due and nothing was sent. None for a run that sent, or had nothing due."""
        if self.aborted or self.paused:
            return self.aborted or self.paused
        if self.deferred and not self.sent:
            return (
                f"{self.deferred + self.failed} editions were due and none was sent; "
                f"all were deferred or failed (last deferral: {self.last_deferred})"
            )
        return None

    def grouped(self) -> list[tuple[str, str, int]]:
        """(status, reason, editions) for the deferrals and failures, most frequent first."""
        return [(st, why, n) for (st, why), n in self.reasons.most_common()]

    def as_dict(self) -> dict[str, object]:
        return {
            "queued": self.queued,
            "due": self.due,
            "sent": self.sent,
            "sent_ambiguous": self.ambiguous,
            "deferred": self.deferred,
            "failed": self.failed,
            "skipped": self.skipped,
            "missed": self.missed,
            "aborted": self.aborted,
            "paused": self.paused,
            "held": self.held,
            "stopped": self.stopped,
            "busy": self.busy,
            "failures": list(self.failures),
            "reasons": [
                {"status": st, "reason": why, "editions": n} for st, why, n in self.grouped()
            ],
        }


class Engine:
    """Sends due ledger rows through one sender, ``concurrency`` at a time."""

    def __init__(
        self,
        delivery: DeliveryConfig,
        store: Store,
        sender: Sender,
        compose: Compose,
        clock: Clock,
        *,
        concurrency: int = 1,
        keep_lease: Callable[[], bool] | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
        rng: random.Random | None = None,
        tally: Tally | None = None,
        breaker: Breaker | None = None,
        stop: StopRequest | None = None,
    ) -> None:
        self.delivery = delivery
        self.store = store
        self.sender = sender
        self.compose = compose
        self.clock = clock
        self.concurrency = max(1, concurrency)
        self.keep_lease = keep_lease
        self.on_outcome = on_outcome
        self.rng = rng or random.Random()
        self.stale = dt.timedelta(minutes=delivery.sending_stale_minutes)
        self.tally = tally if tally is not None else Tally()  # the caller's, to count on with
        self.attempted: set[tuple[int, dt.date]] = set()
        self.breaker = breaker
        self.stop = stop

    @property
    def stopped(self) -> bool:
        if self.stop is not None and self.stop.reason and self.tally.stopped is None:
            self.tally.stopped = (
                f"stopped by {self.stop.reason}: the sends in flight were finished, "
                "the rest is left for the next run"
            )
        t = self.tally
        return t.aborted is not None or t.paused is not None or t.stopped is not None

    async def run_all(
        self,
        batches: Iterable[Sequence[Job]],
        now: dt.datetime,
        on_total: Callable[[int], None] | None = None,
    ) -> None:
        """This run's new editions batch by batch, then whatever else is due (retries, crashes);
        closes the sender at the end.

        Due means due at the run's start, so a row deferred during this run waits for the next.
        """
        try:
            for batch in batches:
                if on_total is not None:
                    on_total(len(batch))
                await self.run(batch)
                if self.stopped:
                    return
            while not self.stopped:
                rows = [
                    Job(row)
                    for row in self.store.ledger.due(
                        now, self.stale, limit=self.delivery.batch_size
                    )
                    if (row.subscriber_id, row.edition_date) not in self.attempted
                ]
                if not rows:
                    break
                if on_total is not None:
                    on_total(len(rows))
                await self.run(rows)
        finally:
            await self.sender.close()

    async def run(self, jobs: Sequence[Job]) -> None:
        """Deliver ``jobs`` (each row at most once per run); stops early on an abort."""
        queue: asyncio.Queue[Job] = asyncio.Queue()
        for job in jobs:
            key = (job.row.subscriber_id, job.row.edition_date)
            if key not in self.attempted:
                self.attempted.add(key)
                queue.put_nowait(job)
        workers = [asyncio.create_task(self._worker(queue)) for _ in range(self.concurrency)]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()

    async def _worker(self, queue: asyncio.Queue[Job]) -> None:
        while not self.stopped and not queue.empty():
            job = queue.get_nowait()
            if self.keep_lease is not None and not self.keep_lease():
                self.tally.aborted = "lost the delivery lease to another runner; stopping"
                return
            try:
                outcome = await self.deliver_one(job)
            except StoreError as e:
                self.tally.aborted = f"database error, stopping the run: {e}"
                return
            if outcome is not None:
                self.tally.add(outcome)
                if self.on_outcome is not None:
                    self.on_outcome(outcome)

    async def deliver_one(self, job: Job) -> Outcome | None:
        """Claim, send and record one edition; None if another runner has it."""
        sid, edition = job.row.subscriber_id, job.row.edition_date
        claimed = self.store.ledger.claim(sid, edition, self.clock(), self.stale)
        if claimed is None:
            return None
        subscriber = self.store.subscribers.get(sid)
        if subscriber is None or subscriber.status != SubscriberStatus.ACTIVE:
            # Unsubscribed (or paused, suppressed) after the edition was queued: never send it.
            status = subscriber.status.value if subscriber else "erased"
            self.store.ledger.release(sid, edition, self.clock(), claim_id=claimed.claim_id)
            self.store.ledger.cancel(sid, f"not sent: subscriber is {status}", self.clock())
            return Outcome(sid, edition, "skipped", f"subscriber is {status}")
        try:
            message = job.message
            if message is None:
                message = self.compose(claimed, subscriber, self.clock())
        except RenderError as e:
            return self._failed(claimed, f"could not render: {e}")
        except StoreError:
            self.store.ledger.release(sid, edition, self.clock(), claim_id=claimed.claim_id)
            raise
        except Exception as e:  # a bug for one subscriber must not stop everyone else's mail
            log.exception("internal error composing edition %s for subscriber %s", edition, sid)
            return self._failed(
                claimed, f"internal error while rendering: {e.__class__.__name__}: {e}"
            )
        try:
            reply = await self._send(message)
        except SendAbort as e:
            self.store.ledger.release(sid, edition, self.clock(), claim_id=claimed.claim_id)
            self.tally.aborted = str(e)
            return None
        except DeliveryUncertain as e:
            # Perhaps delivered: a resend would be a duplicate whenever it was, so none is made.
            self.store.ledger.mark_sent(
                sid, edition, str(e), self.clock(), claim_id=claimed.claim_id, ambiguous=True
            )
            self._observe(e)
            return Outcome(sid, edition, "ambiguous", str(e))
        except SendError as e:
            outcome = self._refused(claimed, subscriber.email, e)
            self._observe(e)
            return outcome
        except Exception as e:  # unknown: the server may or may not have it; retry, never lose
            log.exception("unexpected error sending edition %s to subscriber %s", edition, sid)
            return self._deferred(claimed, f"unexpected {e.__class__.__name__}: {e}")
        recorded = self.store.ledger.mark_sent(
            sid, edition, reply, self.clock(), claim_id=claimed.claim_id
        )
        self._observe(None)
        if not recorded:
            # Accepted by the server all the same; the ledger says why it is not recorded.
            return Outcome(sid, edition, "sent", f"{reply} (not recorded: {_UNRECORDED})")
        return Outcome(sid, edition, "sent", reply)

    async def _send(self, message: EmailMessage) -> str:
        started = time.monotonic()
        try:
            return await self.sender.send(message)
        finally:
            metrics.send_took(time.monotonic() - started)

    def _refused(self, row: Delivery, email: str, error: SendError) -> Outcome:
        """The ledger's (and the address's) answer to one refusal, by its bounce class."""
        if isinstance(error, RecipientRefused):
            return self._failed(row, str(error), suppress=email)
        if isinstance(error, RecipientBounced):
            return self._bounced(row, email, str(error))
        if isinstance(error, PermanentSendError):
            return self._failed(row, str(error))
        return self._deferred(row, str(error))  # temporary, or unknown: retry, never lose

    def _observe(self, error: SendError | None) -> None:
        """Tell the breaker; when it trips, the workers stop taking rows."""
        if self.breaker is None:
            return
        reason = self.breaker.record(signal_of(error), str(error) if error else "")
        if reason is not None and self.tally.paused is None:
            self.tally.paused = reason

    def _failed(self, row: Delivery, error: str, suppress: str | None = None) -> Outcome:
        if not self.store.ledger.mark_failed(
            row.subscriber_id,
            row.edition_date,
            error,
            suppress_email=suppress,
            now=self.clock(),
            claim_id=row.claim_id,
        ):
            return Outcome(row.subscriber_id, row.edition_date, "skipped", _UNRECORDED)
        detail = f"{error} (address suppressed)" if suppress else error
        return Outcome(row.subscriber_id, row.edition_date, "failed", detail)

    def _bounced(self, row: Delivery, email: str, error: str) -> Outcome:
        """Fail the edition, then count the bounce (a crash in between counts one too few)."""
        outcome = self._failed(row, error)
        if outcome.status == "failed" and self.store.subscribers.record_bounce(
            email, error, limit=BOUNCE_LIMIT, window=BOUNCE_WINDOW, now=self.clock()
        ):
            days = BOUNCE_WINDOW.days
            detail = f"{error} ({BOUNCE_LIMIT} bounces in {days} days: address suppressed)"
            return Outcome(row.subscriber_id, row.edition_date, "failed", detail)
        return outcome

    def _deferred(self, row: Delivery, error: str) -> Outcome:
        now = self.clock()
        first = row.first_attempt_at or now
        give_up = dt.timedelta(hours=self.delivery.give_up_after_hours)
        if now - first >= give_up:
            hours = self.delivery.give_up_after_hours
            return self._failed(row, f"gave up after {hours:g} h of retries; last error: {error}")
        retry_at = now + retry_delay(row.attempts, self.delivery, self.rng)
        if not self.store.ledger.mark_deferred(
            row.subscriber_id, row.edition_date, error, retry_at, now, claim_id=row.claim_id
        ):
            return Outcome(row.subscriber_id, row.edition_date, "skipped", _UNRECORDED)
        return Outcome(
            row.subscriber_id,
            row.edition_date,
            "deferred",
            f"{error}; retry at {retry_at:%Y-%m-%d %H:%M} UTC",
            reason=error,
        )
