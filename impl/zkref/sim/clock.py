"""The simulator's clock: time is a count of ticks (ZooKeeper's tickTime), moved only by the
simulator."""

from __future__ import annotations


class SimClock:
    def __init__(self, now: int = 0) -> None:
        self.now = now

    def advance(self, ticks: int = 1) -> int:
        assert ticks >= 0, ticks
        self.now += ticks
        return self.now

    def __repr__(self) -> str:
        return f"SimClock(now={self.now})"
