"""Injectable clocks: monotonic seconds for deadlines, wall milliseconds for timestamps."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """What every timer in the gateway reads instead of the `time` module."""

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps; only differences mean anything."""
        ...

    def wall_ms(self) -> int:
        """Milliseconds since the Unix epoch (UTC)."""
        ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall_ms(self) -> int:
        return time.time_ns() // 1_000_000


class ManualClock:
    """A clock that moves only when a test says so."""

    def __init__(self, wall_ms: int = 1_795_475_306_083, monotonic: float = 1000.0) -> None:
        self._wall_ms = wall_ms
        self._monotonic = monotonic

    def monotonic(self) -> float:
        return self._monotonic

    def wall_ms(self) -> int:
        return self._wall_ms

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by `seconds`."""
        self._monotonic += seconds
        self._wall_ms += round(seconds * 1000)
