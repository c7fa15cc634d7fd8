"""RetryPolicy: how many tries, how long between them."""

from __future__ import annotations

import pytest

from mega_client import NO_RETRY, RetryPolicy


def test_default_policy_retries_twice_with_growing_waits() -> None:
    delays = list(RetryPolicy(jitter=0).delays())
    assert delays == [0.05, 0.1]


def test_backoff_is_capped() -> None:
    policy = RetryPolicy(attempts=8, initial_backoff=0.1, max_backoff=0.5, multiplier=3, jitter=0)
    assert list(policy.delays()) == [0.1, pytest.approx(0.3), 0.5, 0.5, 0.5, 0.5, 0.5]


def test_jitter_only_shortens() -> None:
    policy = RetryPolicy(attempts=50, initial_backoff=0.2, max_backoff=0.2, jitter=0.5)
    delays = list(policy.delays())
    assert all(0.1 <= d <= 0.2 for d in delays)
    assert len(set(delays)) > 1


def test_no_retry() -> None:
    assert list(NO_RETRY.delays()) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"attempts": 0}, "attempts"),
        ({"initial_backoff": -1}, "negative"),
        ({"max_backoff": -1}, "negative"),
        ({"multiplier": 0.5}, "multiplier"),
        ({"jitter": 2}, "jitter"),
    ],
)
def test_invalid_policies_are_refused(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
