"""Per-device rate limiting of the bulk lane: a device that floods cannot crowd out others.

A token bucket per device (`rate_per_s` sustained, `burst` at once) that runs on message
time (`message_time_s`): the device's own clock when the decoder found it plausible, never
more than `AHEAD_MS` ahead of the receive time. Receive time alone would mistake a backlog
for a flood: after a gateway restart or a broker outage the broker replays its queue at
line speed, tens of messages a second per device, all of which are legitimate. A device
whose clock runs fast gains at most `AHEAD_MS` of tokens once (capped by `burst`); one that
repeats a timestamp or has none is limited on the receive time. Alarms never pass through
here: the pipeline exempts the alarm lane.
"""

from __future__ import annotations

from dataclasses import dataclass

_MAX_DEVICES = 200_000
AHEAD_MS = 60_000


def message_time_s(ts_ms: int, received_ms: int) -> float:
    """The limiter's clock for one message: its timestamp, at most AHEAD_MS past receipt."""
    return min(ts_ms, received_ms + AHEAD_MS) / 1000.0


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
        """True when the device may send one more message at `now` (seconds).

        Time only moves forward per device: an older message earns no tokens back.
        """
        bucket = self._buckets.get(device)
        if bucket is None:
            if len(self._buckets) >= _MAX_DEVICES:
                self._buckets.clear()
            self._buckets[device] = _Bucket(self._burst - 1, now)
            return True
        if now > bucket.at:
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
