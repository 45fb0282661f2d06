"""A seeded morning rush at a site's checkpoints, and the ground truth of what it must count.

`MorningRush(cfg).generate(start_ms, duration_s)` plays residents leaving for work and a few
coming home through every checkpoint whose devices speak the canonical contract, plus two
incidents: a shuttle bus of night-shift workers crowding in through one gate (its
`inflow_limit_per_min` exceeded, then back under) and a group slipping in behind one card
holder at another (tailgating). Cameras report `line_crossing` counts per bucket-long period,
`camera_delay_ms` after the period ends; swipes are published at their own `ts`.

`Rush.truth` recomputes from the generated rows alone, by the rules of docs/headcount.md (it
never calls the engine), what the gateway must output: closed windows, occupancy samples,
retained states and alert transitions, given when the engine started and when the night's
head count was entered.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from gateway.config import GatewayConfig
from gateway.errors import ConfigError
from gateway.sim.rush_truth import AlertFlip, Crossing, RushTruth, Swipe
from gateway.site import SiteIndex

__all__ = ["AlertFlip", "Crossing", "MorningRush", "Rush", "RushMessage", "RushTruth", "Swipe"]

OUT_PER_BUCKET: Final = 2.5  # residents leaving through a gate per 10 s at 07:30
IN_PER_BUCKET: Final = 0.6  # night-shift workers and vendors coming home
SWIPE_OUT_P: Final = 0.4  # share of leavers who swipe out (leaving is mostly free)
DENIED_P: Final = 0.05  # an expired card at the reader: that person does not enter
HELD_DOOR_P: Final = 0.05  # a neighbour walks in behind a card holder
TAILGATERS: Final = 6  # the group behind one card holder at the tailgating gate
STABLE_MS: Final = 2500  # an alert's numbers hold still this long after it flips


@dataclass(frozen=True, slots=True)
class RushMessage:
    """One MQTT message of the rush, the wall time to publish it and what it says."""

    publish_ms: int
    topic: str
    payload: bytes
    row: Swipe | Crossing


@dataclass(frozen=True, slots=True)
class Rush:
    """The generated rush: messages in publish order, the night head count, the truth."""

    start_ms: int
    end_ms: int  # the last publish
    messages: list[RushMessage]
    initial_occupancy: dict[str, int]
    crowd_at: str
    tailgate_at: str
    truth: RushTruth = field(repr=False)


@dataclass(frozen=True, slots=True)
class _Gate:
    checkpoint: str
    building: str
    readers: tuple[str, ...]  # canonical readers (their swipes are simulated)
    doors: tuple[str, ...]
    camera: str | None  # the canonical camera whose counts are simulated
    counts_swipes: bool  # no camera in the site model: its passages are the head-count


class MorningRush:
    """Generates the rush for a site config (its `[headcount]` and checkpoint limits).

    Devices under a vendor profile are left out (their payloads would be the vendor's), and
    so is the camera of a checkpoint whose reader is left out: camera entries without the
    reader's authorizations would be tailgating.
    """

    def __init__(self, cfg: GatewayConfig, *, seed: int = 7, crowd_at: str | None = None,
                 tailgate_at: str | None = None, camera_delay_ms: int = 3000,
                 initial_occupancy: int = 2600) -> None:  # fmt: skip
        self._cfg, self._seed, self._delay_ms = cfg, seed, camera_delay_ms
        self._initial = initial_occupancy
        self._bucket_ms = cfg.headcount.bucket_s * 1000
        self._base = f"{cfg.mqtt.root}/{cfg.gateway.site}/"
        index = SiteIndex(cfg.site)
        self._gates: list[_Gate] = []
        for cp in cfg.site.checkpoints:
            readers = tuple(a for a in cp.access if index.profile_for("access", a) == "canonical")
            cams = [c for c in cp.cameras if index.profile_for("camera", c) == "canonical"]
            camera = cams[0] if cams and len(readers) == len(cp.access) else None
            doors = tuple(cp.doors) if readers else ()
            if doors or camera:
                gate = _Gate(cp.id, cp.building, readers, doors, camera, not cp.cameras)
                self._gates.append(gate)
        by_id = {cp.id: cp for cp in cfg.site.checkpoints}
        full = [g.checkpoint for g in self._gates if g.camera and g.doors]
        self.crowd_at = crowd_at or next((c for c in full if by_id[c].inflow_limit_per_min), "")
        self.tailgate_at = tailgate_at or next(
            (c for c in full if c != self.crowd_at and by_id[c].tailgate_min_count is not None),
            "",
        )
        for role, cp_id, need in (
            ("crowd_at", self.crowd_at, "inflow_limit_per_min"),
            ("tailgate_at", self.tailgate_at, "tailgate_min_count"),
        ):
            if cp_id not in full or getattr(by_id[cp_id], need) is None:
                raise ConfigError(
                    f"{cfg.source}: the morning rush needs a checkpoint ({role}) with a "
                    f"canonical reader, doors, a canonical camera and {need} (got "
                    f"{cp_id or 'none'})"
                )
        limit = by_id[self.crowd_at].inflow_limit_per_min or 0
        # The bus: a fifth over the limit in two buckets; the second alone (and the gate's
        # usual trickle) is under the clear level, so the alert clears when the first leaves
        # the sliding minute.
        surge = limit + math.ceil(limit * 0.2)
        self._surge = (math.ceil(surge * 0.65), surge - math.ceil(surge * 0.65))
        if self._bucket_ms < camera_delay_ms + STABLE_MS + 1500:
            raise ConfigError(
                f"bucket_s = {cfg.headcount.bucket_s}: too short for the rush's camera delay "
                f"of {camera_delay_ms} ms (needs {camera_delay_ms + STABLE_MS + 1500} ms)"
            )

    def generate(self, start_ms: int, duration_s: int) -> Rush:
        """The rush from `start_ms` (a bucket boundary) for `duration_s` (whole buckets, >= 2)."""
        b = self._bucket_ms
        if start_ms % b or (duration_s * 1000) % b or duration_s * 1000 < 2 * b:
            raise ValueError(
                f"start {start_ms} ms and duration {duration_s} s must be whole buckets of "
                f"{b} ms, at least two"
            )
        rng = np.random.default_rng(self._seed)
        cards = [f"{v:010d}" for v in rng.integers(1, 10**10, 4000).tolist()]
        messages: list[RushMessage] = []
        for k in range(duration_s * 1000 // b):
            for gate in self._gates:
                messages += self._bucket(gate, k, start_ms + k * b, rng, cards)
        messages.sort(key=lambda m: m.publish_ms)  # stable: equal times keep their order
        initial = {"site": self._initial}
        truth = RushTruth(self._cfg, [(m.publish_ms, m.row) for m in messages], initial)
        end = max((m.publish_ms for m in messages), default=start_ms)
        return Rush(start_ms, end, messages, initial, self.crowd_at, self.tailgate_at, truth)

    def _bucket(self, gate: _Gate, k: int, b0: int, rng: np.random.Generator,
                cards: list[str]) -> list[RushMessage]:  # fmt: skip
        """One gate's messages for bucket k starting at `b0`."""
        b = self._bucket_ms
        # Every draw is made whatever the gate's role, so bucket k is the same whatever
        # the duration.
        n_in, n_out = (int(v) for v in rng.poisson((IN_PER_BUCKET, OUT_PER_BUCKET)))
        swipe_out = int(rng.binomial(n_out, SWIPE_OUT_P))
        denied = int(rng.random() < DENIED_P)
        held = int(rng.random() < HELD_DOOR_P)
        offsets = rng.random(64).tolist()
        card_ix = rng.integers(0, len(cards), 64).tolist()
        lo, hi = 0, b
        if gate.checkpoint == self.tailgate_at:
            # A quiet side gate whose numbers hold still after each boundary and report.
            lo, hi = self._delay_ms + STABLE_MS, b - 500
            n_in, held = (1, TAILGATERS) if k == 0 else (min(n_in, 1), 0)
        elif gate.checkpoint == self.crowd_at:
            held = 0
            n_in += self._surge[k] if k < len(self._surge) else 0
        elif gate.counts_swipes:
            # Its passages move occupancy: keep them clear of the boundaries (sample times).
            lo, hi = STABLE_MS, b - 1500
        if not gate.doors:  # a camera alone: nobody swipes
            n_in, held, swipe_out, denied = 0, n_in + held, 0, 0
        out: list[RushMessage] = []
        swipes = [("in", True)] * n_in + [("out", True)] * swipe_out + [("in", False)] * denied
        for j, (direction, granted) in enumerate(swipes):
            ts = b0 + lo + int(offsets[j % 64] * (hi - lo))
            card = card_ix[j % 64]
            body = {"ts": ts, "event": "swipe", "card": cards[card],
                    "door": gate.doors[card % len(gate.doors)], "dir": direction,
                    "granted": granted}  # fmt: skip
            reader = gate.readers[card % len(gate.readers)]
            topic = f"{self._base}{gate.building}/access/{reader}/event"
            row = Swipe(gate.checkpoint, ts, "in" if direction == "in" else "out", granted)
            out.append(RushMessage(ts, topic, _json(body), row))
        if gate.camera is not None:
            ts, period_s = b0 + b, b // 1000
            body = {"ts": ts, "event": "line_crossing", "checkpoint": gate.checkpoint,
                    "in": n_in + held, "out": n_out, "period_s": period_s}  # fmt: skip
            topic = f"{self._base}{gate.building}/camera/{gate.camera}/event"
            row_c = Crossing(gate.checkpoint, ts, period_s, n_in + held, n_out)
            out.append(RushMessage(ts + self._delay_ms, topic, _json(body), row_c))
        return out


def _json(body: dict[str, object]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()
