"""The reference head-count's alert rules: crowding hysteresis, tailgating, alert order.

Plain Python like the rest of tests/headcount/reference.py (which owns the counts and
windows and calls these), written from docs/headcount.md, not from the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gateway.headcount.records import AlertState, HeadcountAlert, HeadcountOutput
from gateway.headcount.settings import HeadcountSettings

ALERT_ORDER = {
    ("crowding", "checkpoint"): 0,
    ("crowding", "building"): 1,
    ("crowding", "site"): 1,
    ("tailgating", "checkpoint"): 2,
}


class ReferenceAlertRules:
    """Which alerts are raised, by key (`("inflow", cp)`, `("occupancy", target)`, …)."""

    def __init__(self, settings: HeadcountSettings) -> None:
        self.s = settings
        self.raised: set[tuple[str, str]] = set()

    def hysteresis(
        self,
        out: HeadcountOutput,
        key: tuple[str, str],
        value: float,
        limit: float,
        make: Any,
    ) -> None:
        """Raise above `limit`, clear at or below clear_fraction × limit."""
        f = self.s.clear_fraction
        if key not in self.raised and value > limit:
            self.raised.add(key)
            out.alerts.append(make("raised", value, limit))
        elif key in self.raised and value <= f * limit:
            self.raised.discard(key)
            out.alerts.append(make("cleared", value, limit))

    def tailgating(
        self,
        now: int,
        cp_model: Sequence[Any],
        window: dict[str, tuple[dict[str, int], bool]],
        window_s: int,
        offline: Callable[[str], bool],
        out: HeadcountOutput,
    ) -> None:
        """Camera entries beyond the authorized ones, per checkpoint with cameras and readers."""
        f = self.s.clear_fraction
        for cp in cp_model:
            if not (cp.cameras and (cp.access or cp.doors)):
                continue
            c, unc = window[cp.id]
            cam = c["camera_in"]
            auth = c["reader_in"] + c["reader_any"]
            min_count = cp.tailgate_min_count
            min_count = self.s.tailgate_min_count if min_count is None else min_count
            ratio_limit = cp.tailgate_ratio
            ratio_limit = self.s.tailgate_ratio if ratio_limit is None else ratio_limit
            ratio = cam / max(auth, 1)
            key = ("tailgating", cp.id)
            over = not (unc or offline(cp.id)) and cam - auth > min_count and ratio > ratio_limit
            under = cam - auth <= f * min_count or ratio <= f * ratio_limit
            state: AlertState | None = None
            if key not in self.raised and over:
                self.raised.add(key)
                state = "raised"
            elif key in self.raised and under and not over:
                self.raised.discard(key)
                state = "cleared"
            if state is not None:
                details: dict[str, int | float] = {
                    "window_s": window_s,
                    "camera_in": cam,
                    "authorized_in": auth,
                    "excess": cam - auth,
                    "min_count": min_count,
                }
                out.alerts.append(
                    HeadcountAlert(
                        "tailgating",
                        state,
                        "checkpoint",
                        cp.id,
                        "tailgating",
                        round(ratio, 3),
                        float(ratio_limit),
                        now,
                        details,
                    )
                )

    @staticmethod
    def sort(out: HeadcountOutput, cps: Sequence[str], targets: Sequence[str]) -> None:
        """Checkpoint crowding, then occupancy crowding, then tailgating; raised first."""
        index = {**{c: i for i, c in enumerate(cps)}, **{t: i for i, t in enumerate(targets)}}
        out.alerts.sort(
            key=lambda a: (ALERT_ORDER[(a.type, a.scope)], a.state != "raised", index[a.target])
        )
