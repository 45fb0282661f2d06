"""`[headcount]`: buckets, lateness, daily reset and alert defaults of the head-count engine."""

from __future__ import annotations

import re
from typing import Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Bucket widths that divide a minute, so every 1 min, 5 min and 1 h window is whole buckets.
BUCKET_WIDTHS_S: Final = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60)
WINDOWS_S: Final = {"1m": 60, "5m": 300, "1h": 3600}
_HHMM: Final = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class HeadcountSettings(BaseModel):
    """The `[headcount]` config section; every key has a default (docs/headcount.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    bucket_s: int = 10
    lateness_s: int = Field(default=120, ge=0, le=3600)
    max_future_s: int = Field(default=300, ge=0, le=3600)
    timezone: str = "Asia/Shanghai"
    daily_reset: str | None = "04:00"
    state_min_interval_s: float = Field(default=1.0, gt=0, le=3600)
    occupancy_interval_s: int = Field(default=60, ge=1, le=3600)
    clear_fraction: float = Field(default=0.8, gt=0, lt=1)
    tailgate_window: Literal["1m", "5m", "1h"] = "1m"
    tailgate_min_count: int = Field(default=3, ge=0)
    tailgate_ratio: float = Field(default=1.5, ge=1)
    site_occupancy_limit: int | None = Field(default=None, ge=1)
    max_cameras: int = Field(default=4096, ge=1, le=1_000_000)

    @field_validator("bucket_s")
    @classmethod
    def _divides_minute(cls, value: int) -> int:
        if value not in BUCKET_WIDTHS_S:
            allowed = ", ".join(str(w) for w in BUCKET_WIDTHS_S)
            raise ValueError(f"bucket_s must divide 60 seconds: one of {allowed}")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as 'Asia/Shanghai'"
            ) from None
        return value

    @field_validator("daily_reset")
    @classmethod
    def _hh_mm(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None  # TOML has no null: "" turns the daily reset off
        if not _HHMM.match(value):
            raise ValueError(
                f"daily_reset {value!r} must be local time HH:MM, e.g. '04:00' ('' for none)"
            )
        return value

    def reset_time(self) -> tuple[int, int] | None:
        """The daily reset as (hour, minute) local time, or None for no reset."""
        if self.daily_reset is None:
            return None
        hour, minute = self.daily_reset.split(":")
        return int(hour), int(minute)
