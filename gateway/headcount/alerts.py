"""Crowding and tailgating alerts, with hysteresis so each is raised once and cleared once.

An alert is raised when its value goes over the limit and cleared only when the value
falls to `clear_fraction` (default 80 %) of the limit or below; in between nothing
changes, so a value hovering at the limit does not flap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from gateway.headcount.index import HeadcountIndex
from gateway.headcount.records import AlertState, HeadcountAlert
from gateway.headcount.settings import WINDOWS_S, HeadcountSettings

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
Mask = NDArray[np.bool_]


class Hysteresis:
    """Raised/cleared state of one alert family over n targets."""

    def __init__(self, n: int) -> None:
        self.raised: Mask = np.zeros(n, dtype=bool)

    def step(self, over: Mask, under: Mask) -> tuple[list[int], list[int]]:
        """Targets raised now (over and not yet raised), cleared now (under and raised)."""
        raise_now = over & ~self.raised
        clear_now = under & self.raised & ~over
        self.raised |= raise_now
        self.raised &= ~clear_now
        return np.flatnonzero(raise_now).tolist(), np.flatnonzero(clear_now).tolist()


def over_limit(values: F64, limits: F64, clear_fraction: float) -> tuple[Mask, Mask]:
    """(over, under): value > limit; value <= clear_fraction x limit. NaN limit: neither."""
    with np.errstate(invalid="ignore"):
        return values > limits, values <= clear_fraction * limits


def tailgating(
    camera_in: F64,
    authorized_in: F64,
    min_count: F64,
    ratio_limit: F64,
    enabled: Mask,
    uncertain: Mask,
    clear_fraction: float,
) -> tuple[Mask, Mask]:
    """(over, under) of the tailgating condition: camera inflow beyond the reader's
    authorized entries, by count AND by ratio (`camera_in / max(authorized_in, 1)`).

    Never raised on an uncertain window (a reader offline would look like tailgating);
    cleared when the excess falls to clear_fraction x min_count or the ratio to
    clear_fraction x ratio_limit.
    """
    excess = camera_in - authorized_in
    ratio = camera_in / np.maximum(authorized_in, 1.0)
    over = enabled & ~uncertain & (excess > min_count) & (ratio > ratio_limit)
    under = enabled & (
        (excess <= clear_fraction * min_count) | (ratio <= clear_fraction * ratio_limit)
    )
    return over, under


class AlertBook:
    """Every crowding and tailgating alert of the site and whether it is raised."""

    def __init__(self, index: HeadcountIndex, settings: HeadcountSettings) -> None:
        self._index = index
        self._fraction = settings.clear_fraction
        self._window_s = WINDOWS_S[settings.tailgate_window]
        self._inflow = Hysteresis(index.n_checkpoints)
        self._occupancy = Hysteresis(index.n_targets)
        self._tailgate = Hysteresis(index.n_checkpoints)

    def evaluate(
        self,
        now_ms: int,
        in_1m: I64,
        level: I64,
        camera_in: I64,
        authorized_in: I64,
        uncertain: Mask,
    ) -> list[HeadcountAlert]:
        """Alerts changing state now. `in_1m` per checkpoint, `level` per occupancy target;
        `camera_in`, `authorized_in` and `uncertain` over the tailgating window."""
        index = self._index
        f = self._fraction
        alerts: list[HeadcountAlert] = []
        inflow = in_1m.astype(np.float64)
        limits = index.inflow_limit

        def crowd_cp(i: int, state: AlertState) -> HeadcountAlert:
            return HeadcountAlert(
                "crowding",
                state,
                "checkpoint",
                index.checkpoint_ids[i],
                "inflow_per_min",
                float(inflow[i]),
                float(limits[i]),
                now_ms,
            )

        _step(self._inflow, *over_limit(inflow, limits, f), crowd_cp, alerts)
        occupancy = level.astype(np.float64)
        occ_limits = index.occupancy_limit

        def crowd_target(i: int, state: AlertState) -> HeadcountAlert:
            scope: Literal["building", "site"] = (
                "building" if index.target_is_building[i] else "site"
            )
            return HeadcountAlert(
                "crowding",
                state,
                scope,
                index.target_ids[i],
                "occupancy",
                float(occupancy[i]),
                float(occ_limits[i]),
                now_ms,
            )

        _step(self._occupancy, *over_limit(occupancy, occ_limits, f), crowd_target, alerts)
        cam = camera_in.astype(np.float64)
        auth = authorized_in.astype(np.float64)
        over, under = tailgating(
            cam, auth, index.tailgate_min_count, index.tailgate_ratio, index.tailgate, uncertain, f
        )

        def tailgate(i: int, state: AlertState) -> HeadcountAlert:
            ratio = cam[i] / max(auth[i], 1.0)
            details: dict[str, int | float] = {
                "window_s": self._window_s,
                "camera_in": int(cam[i]),
                "authorized_in": int(auth[i]),
                "excess": int(cam[i] - auth[i]),
                "min_count": int(index.tailgate_min_count[i]),
            }
            return HeadcountAlert(
                "tailgating",
                state,
                "checkpoint",
                index.checkpoint_ids[i],
                "tailgating",
                round(float(ratio), 3),
                float(index.tailgate_ratio[i]),
                now_ms,
                details,
            )

        _step(self._tailgate, over, under, tailgate, alerts)
        return alerts


def _step(
    book: Hysteresis,
    over: Mask,
    under: Mask,
    make: Callable[[int, AlertState], HeadcountAlert],
    out: list[HeadcountAlert],
) -> None:
    raised, cleared = book.step(over, under)
    out.extend(make(i, "raised") for i in raised)
    out.extend(make(i, "cleared") for i in cleared)
