"""Generated top-down camera scenes: bright round blobs ("heads") moving over a dark floor.

Ground truth comes from the blobs' own paths, never from the code under test.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from gateway.vision.frames import Frame

W, H = 640, 480
FLOOR = 40
U8 = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Blob:
    """A blob at `start` (pixels) moving `velocity` pixels per frame during [first, last]."""

    start: tuple[float, float]
    velocity: tuple[float, float]
    first: int = 0
    last: int = 10_000
    radius: int = 20
    color: tuple[int, int, int] = (235, 235, 235)

    def at(self, i: int) -> tuple[float, float] | None:
        if not self.first <= i <= self.last:
            return None
        k = i - self.first
        return self.start[0] + self.velocity[0] * k, self.start[1] + self.velocity[1] * k


def render(blobs: list[Blob], i: int, seed: int = 0) -> U8:
    """Frame `i` of the scene (BGR), with a little sensor noise."""
    rng = np.random.default_rng(seed * 100_003 + i)
    img = np.full((H, W, 3), FLOOR, np.uint8)
    img += rng.integers(0, 4, img.shape, dtype=np.uint8)
    for b in blobs:
        p = b.at(i)
        if p is not None:
            cv2.circle(img, (round(p[0]), round(p[1])), b.radius, b.color, -1, cv2.LINE_AA)
    return img


def frames(
    camera: str, blobs: list[Blob], n: int, *, ts0: int = 0, dt_ms: int = 200
) -> list[Frame]:
    return [Frame(camera, ts0 + i * dt_ms, render(blobs, i)) for i in range(n)]


def true_crossings(blobs: list[Blob], n: int, line_y: float) -> tuple[int, int]:
    """(in, out) for a horizontal line at `line_y`; "in" is downward (toward larger y).

    A blob counts once per change of side between frames it is visible in.
    """
    n_in = n_out = 0
    for b in blobs:
        sides = [p[1] > line_y for i in range(n) if (p := b.at(i)) is not None and _inside(p)]
        for prev, cur in itertools.pairwise(sides):
            if cur and not prev:
                n_in += 1
            elif prev and not cur:
                n_out += 1
    return n_in, n_out


def _inside(p: tuple[float, float]) -> bool:
    return 0 <= p[0] < W and 0 <= p[1] < H


def write_video(path: Path, blobs: list[Blob], n: int, fps: float = 10.0) -> Path:
    """An MJPEG AVI of the scene (what a replay file or a dumb camera gives)."""
    fourcc = cv2.VideoWriter.fourcc(*"MJPG")
    writer = cv2.VideoWriter(str(path), fourcc, fps, (W, H))
    assert writer.isOpened(), "OpenCV cannot write MJPEG AVI here"
    for i in range(n):
        writer.write(render(blobs, i))
    writer.release()
    return path
