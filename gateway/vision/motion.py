"""Motion gate: the detector runs only on frames that changed, as Frigate does.

Frame differencing against a running-average background on a small grey copy of the frame
(OpenCV, vectorized); regions are the bounding boxes of the changed blobs, in frame pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]


@dataclass(frozen=True, slots=True)
class Motion:
    """What the gate saw in one frame: changed fraction and regions `[n, 4]` (x1, y1, x2, y2)."""

    moved: bool
    fraction: float
    regions: I32


class MotionGate:
    """Per-camera motion detector with a slowly adapting background.

    `threshold` is the grey-level change (0..255) that counts a pixel as changed;
    `min_fraction` the share of changed pixels that counts the frame as moving;
    `enabled=False` passes every frame (no gate).
    """

    def __init__(
        self,
        *,
        width: int = 160,
        threshold: int = 25,
        min_fraction: float = 0.002,
        alpha: float = 0.05,
        enabled: bool = True,
    ) -> None:
        self.enabled = enabled
        self.width = width
        self.threshold = threshold
        self.min_fraction = min_fraction
        self.alpha = alpha
        self._background: F32 | None = None
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self.frames = 0
        self.passed = 0

    @property
    def pass_fraction(self) -> float:
        """Share of frames that reached the detector so far."""
        return self.passed / self.frames if self.frames else 0.0

    def check(self, frame: U8) -> Motion:
        """Compare `frame` (BGR or grey) to the background and update it."""
        self.frames += 1
        h, w = frame.shape[:2]
        if not self.enabled:
            # Gate off (config or benchmark baseline): every frame is "moving" everywhere.
            self.passed += 1
            return Motion(True, 1.0, np.array([[0, 0, w, h]], np.int32))
        small_h = max(1, round(h * self.width / w))
        grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        small = cv2.resize(grey, (self.width, small_h), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (5, 5), 0)
        current = small.astype(np.float32)
        if self._background is None or self._background.shape != current.shape:
            # The first frame is the background: nothing to compare with yet.
            self._background = current
            return Motion(False, 0.0, np.zeros((0, 4), np.int32))
        diff = cv2.absdiff(current, self._background)
        mask = (diff > self.threshold).astype(np.uint8)
        cv2.accumulateWeighted(current, self._background, self.alpha)
        fraction = float(mask.mean())
        if fraction < self.min_fraction:
            return Motion(False, fraction, np.zeros((0, 4), np.int32))
        self.passed += 1
        grown = np.asarray(cv2.dilate(mask, self._kernel, iterations=2), np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
        stats = stats[1:n]  # row 0 is the background component
        scale = w / self.width
        x, y, bw, bh = (stats[:, i] for i in range(4))
        regions = (np.stack([x, y, x + bw, y + bh], axis=1) * scale).astype(np.int32)
        return Motion(True, fraction, regions)
