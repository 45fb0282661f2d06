"""`[vision]`: cameras analysed on the gateway, their counting lines and the model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Point = tuple[Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)]]
DEFAULT_MODELS_DIR = Path(__file__).resolve().parents[2] / "edge_models"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LineSettings(_Section):
    """A counting line in frame-relative coordinates (0..1, origin top-left).

    `inside` is any point on the side people are "in" after crossing.
    """

    a: Point
    b: Point
    inside: Point

    @model_validator(mode="after")
    def _proper(self) -> LineSettings:
        if self.a == self.b:
            raise ValueError(f"line a {self.a} and b {self.b} must differ")
        (ax, ay), (bx, by), (px, py) = self.a, self.b, self.inside
        if (bx - ax) * (py - ay) - (by - ay) * (px - ax) == 0:
            raise ValueError(f"inside {self.inside} lies on the line; put it on the 'in' side")
        return self


class MotionSettings(_Section):
    """Motion gate tuning (docs/vision.md); `enabled = false` sends every frame on."""

    enabled: bool = True
    threshold: int = Field(default=25, ge=1, le=255)
    min_fraction: float = Field(default=0.002, gt=0, lt=1)
    width: int = Field(default=160, ge=32, le=1920)


class CameraSettings(_Section):
    """One camera: where its frames come from and what its crossings count for.

    `source`: `"mqtt"` (JPEG on `…/camera/{id}/frame`), an `rtsp://` or `http://` URL, or
    a file path (tests, replays).
    """

    id: Name
    source: str = "mqtt"
    fps: float = Field(default=5.0, gt=0, le=60)
    queue_max: int = Field(default=2, ge=1, le=100)
    checkpoint: Name | None = None
    zone: Name | None = None
    line: LineSettings | None = None
    loop: bool = False

    @model_validator(mode="after")
    def _line_needs_checkpoint(self) -> CameraSettings:
        if self.line is not None and self.checkpoint is None:
            raise ValueError(f"camera {self.id}: a counting line needs a checkpoint to count for")
        return self


class VisionSettings(_Section):
    """The `[vision]` config section; off unless cameras are listed."""

    enabled: bool = True
    model: Name = "blobnet"
    models_dir: Path = DEFAULT_MODELS_DIR
    threads: int = Field(default=2, ge=1, le=64)
    batch_max: int = Field(default=8, ge=1, le=64)
    reconnect_min_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)
    event_min_interval_s: float = Field(default=10.0, ge=0)
    max_misses: int = Field(default=5, ge=0, le=100)
    motion: MotionSettings = MotionSettings()
    cameras: list[CameraSettings] = []

    @model_validator(mode="after")
    def _unique(self) -> VisionSettings:
        ids = [c.id for c in self.cameras]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"camera ids {dup} appear more than once")
        return self

    @property
    def model_dir(self) -> Path:
        return self.models_dir / self.model
