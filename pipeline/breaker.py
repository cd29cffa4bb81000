"""The circuit breaker: notices, from the outcome of each send, that the mail server is
refusing us rather than a reader, and says so once. Pure (a monotonic clock is passed in).

It trips on any of (``[delivery.breaker]``):

- ``policy_refusals`` policy refusals (5.7.x, 554 without 5.1.x) among the last
  ``policy_window`` recipients the server answered;
- ``connect_failures`` connection attempts in a row that failed or timed out (any reply from
  the server ends the row);
- ``busy_replies`` × 421 within ``busy_window_seconds``.

What a trip does (pause the run, defer what was not tried) is ``run.deliver_due``'s business.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Literal

from pipeline.config import Breaker as BreakerConfig
from pipeline.errors import PermanentSendError, PolicyRefusal, SendError, Unreachable

Signal = Literal["answered", "policy", "busy", "unreachable"]


def signal_of(error: SendError | None) -> Signal | None:
    """What one send tells the breaker: None (it was sent) is an answer; a dropped
    connection or an unknown failure tells it nothing."""
    if error is None or isinstance(error, PermanentSendError):
        return "answered"
    if isinstance(error, PolicyRefusal):
        return "busy" if error.code == 421 else "policy"
    if isinstance(error, Unreachable):
        return "unreachable"
    if error.code is not None:  # a 4xx or 552: the server answered
        return "answered"
    return None


class Breaker:
    """Counts signals; ``record`` returns the reason the first time a threshold is reached."""

    def __init__(
        self, config: BreakerConfig, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self.monotonic = monotonic
        self.recent: deque[bool] = deque(maxlen=config.policy_window)  # True: policy refusal
        self.busy_at: deque[float] = deque()
        self.unreachable = 0
        self.tripped: str | None = None

    def record(self, signal: Signal | None, detail: str = "") -> str | None:
        """Take one send's signal; the trip's one-line reason when this one trips it."""
        if signal is None or self.tripped is not None:
            return None
        c = self.config
        reason = None
        if signal == "unreachable":
            self.unreachable += 1
            if self.unreachable >= c.connect_failures:
                reason = (
                    f"{self.unreachable} connections in a row to the mail server failed or "
                    f"timed out (last: {detail})"
                )
        else:
            self.unreachable = 0
        if signal == "busy":
            now = self.monotonic()
            self.busy_at.append(now)
            while self.busy_at and self.busy_at[0] <= now - c.busy_window_seconds:
                self.busy_at.popleft()
            if len(self.busy_at) >= c.busy_replies:
                reason = (
                    f"{len(self.busy_at)} × 421 from the mail server within "
                    f"{c.busy_window_seconds:g} s (last: {detail})"
                )
        if signal in ("answered", "policy"):
            self.recent.append(signal == "policy")
            refused = sum(self.recent)
            if signal == "policy" and refused >= c.policy_refusals:
                reason = (
                    f"{refused} of the last {len(self.recent)} recipients were refused by the "
                    f"mail server's policy, a block on us rather than on them (last: {detail})"
                )
        self.tripped = reason
        return reason
