"""When the client tries again: :class:`RetryPolicy` and its backoff delays.

What is retried (the same for :class:`~mega_client.MessageClient` and
:class:`~mega_client.AsyncMessageClient`):

- connecting, when the connection is refused, reset or times out;
- CONSUME and CREATE_TOPIC, when the connection fails (refused, reset, closed
  by the broker) before their answer arrives: reading a message twice is
  harmless, and a second CREATE_TOPIC cannot create a second topic;
- PRODUCE, only when its bytes certainly never left this process (the
  connection was found closed before sending), unless the client was built with
  ``produce_delivery="at-least-once"``: then a PRODUCE that may have reached
  the broker is resent too, and the message may be stored twice.

Never retried: broker errors (the broker gave its answer), protocol errors
(the broker is broken), timeouts (a broker that does not answer in
``request_timeout`` is not going to do better on the next try), validation and
usage errors.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["NO_RETRY", "RetryPolicy"]


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to try, and how long to wait between tries.

    ``attempts`` counts every try, the first included (``1`` never retries).
    The wait before try *n + 1* is ``initial_backoff * multiplier ** (n - 1)``,
    capped at ``max_backoff``, then scaled by a random factor in
    ``[1 - jitter, 1]`` so that many clients do not retry in step.
    """

    attempts: int = 3
    initial_backoff: float = 0.05
    max_backoff: float = 1.0
    multiplier: float = 2.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, not {self.attempts}")
        if self.initial_backoff < 0 or self.max_backoff < 0:
            raise ValueError("backoff delays must not be negative")
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be at least 1, not {self.multiplier}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be between 0 and 1, not {self.jitter}")

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        base = min(self.max_backoff, self.initial_backoff * self.multiplier ** (retry - 1))
        if self.jitter:
            base *= 1 - self.jitter * random.random()  # jitter, not cryptography
        return base

    def delays(self) -> Iterator[float]:
        """The waits before each retry: ``attempts - 1`` of them."""
        for retry in range(1, self.attempts):
            yield self.backoff(retry)


#: A policy that never retries.
NO_RETRY = RetryPolicy(attempts=1)
