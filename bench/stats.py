"""Medians and spreads of repeated rounds."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Spread:
    """The median of a figure's rounds, with the lowest and the highest, and how many rounds."""

    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float | None]) -> Spread | None:
        """None when no round gave a value."""
        xs = sorted(v for v in values if v is not None)
        if not xs:
            return None
        return cls(float(statistics.median(xs)), xs[0], xs[-1], len(xs))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def spread(values: Iterable[float | None]) -> dict[str, Any] | None:
    """:meth:`Spread.of` as a dict (for the results JSON)."""
    s = Spread.of(values)
    return None if s is None else s.as_dict()


def ratios(numerators: list[float | None], denominators: list[float | None]) -> list[float | None]:
    """Round by round: ``numerators[i] / denominators[i]`` (None where either is missing or zero)."""
    return [a / b if a is not None and b else None for a, b in zip(numerators, denominators, strict=True)]
