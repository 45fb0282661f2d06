"""Per-device rate limiting of the bulk lane: a device that floods cannot crowd out others.

A token bucket per device (`rate_per_s` sustained, `burst` at once), read from the injected
clock. Alarms never pass through here: the pipeline exempts the alarm lane.
"""

from __future__ import annotations

from dataclasses import dataclass

_MAX_DEVICES = 200_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float
    dropped: int = 0


class DeviceRateLimiter:
    """Token buckets keyed by device; `allow` is called once per message on the event loop."""

    def __init__(self, rate_per_s: float, burst: float) -> None:
        self._rate = rate_per_s
        self._burst = burst
        self._buckets: dict[tuple[str, str, str], _Bucket] = {}
        self.dropped_total = 0

    def allow(self, device: tuple[str, str, str], now: float) -> bool:
        """True when the device may send one more message now."""
        bucket = self._buckets.get(device)
        if bucket is None:
            if len(self._buckets) >= _MAX_DEVICES:
                self._buckets.clear()
            self._buckets[device] = _Bucket(self._burst - 1, now)
            return True
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.at) * self._rate)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return True
        bucket.dropped += 1
        self.dropped_total += 1
        return False

    def flooding(self) -> dict[tuple[str, str, str], int]:
        """Devices that had messages dropped, with how many (since start)."""
        return {k: b.dropped for k, b in self._buckets.items() if b.dropped}
