"""Detectors: one small interface, and onnxruntime for YOLO-style `[B, 4 + C, N]` exports.

Model metadata lives next to the `.onnx` file in `edge_models/<model>/model.toml`; nothing
is ever downloaded. Pre- and post-processing are vectorized numpy (letterbox, confidence
filter, class-aware NMS); frames of several cameras go into one call when the model has a
batch dimension.
"""

from __future__ import annotations

import importlib
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import cv2
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gateway.errors import GatewayError

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]


class VisionError(GatewayError):
    """A camera model or stream cannot be used; the message names the file or camera."""


class ModelInfo(BaseModel):
    """`model.toml`: what the detector needs to know about one `.onnx` export."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    file: str
    input_size: tuple[int, int] = Field(description="[width, height]")
    input_name: str | None = None
    layout: Literal["yolo_cxcywh"] = "yolo_cxcywh"
    classes: list[str] = Field(min_length=1)
    person_class: str | None = "person"
    fire_classes: list[str] = []
    smoke_classes: list[str] = []
    conf_threshold: float = Field(default=0.25, gt=0, lt=1)
    iou_threshold: float = Field(default=0.45, gt=0, le=1)
    pad_value: int = Field(default=114, ge=0, le=255)
    channel_order: Literal["rgb", "bgr"] = "rgb"
    max_detections: int = Field(default=100, ge=1)

    @model_validator(mode="after")
    def _known_classes(self) -> ModelInfo:
        named = [self.person_class or "", *self.fire_classes, *self.smoke_classes]
        unknown = [c for c in named if c and c not in self.classes]
        if unknown:
            raise ValueError(f"classes {unknown} are not in classes = {self.classes}")
        return self


def load_model_info(model_dir: Path) -> ModelInfo:
    """Read and validate `model_dir/model.toml`; errors name the file and key."""
    path = model_dir / "model.toml"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VisionError(f"{path}: missing; every model folder needs a model.toml") from None
    except tomllib.TOMLDecodeError as exc:
        raise VisionError(f"{path}: not valid TOML: {exc}") from None
    try:
        return ModelInfo.model_validate(raw)
    except ValidationError as exc:
        where = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        )
        raise VisionError(f"{path}: {where}") from None


@dataclass(frozen=True, slots=True)
class Detections:
    """Detections of one frame, in frame pixels: boxes `[n, 4]` as x1, y1, x2, y2."""

    boxes: F32
    scores: F32
    classes: I64

    @staticmethod
    def empty() -> Detections:
        return Detections(
            np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
        )

    def of_class(self, cls: int) -> Detections:
        keep = self.classes == cls
        return Detections(self.boxes[keep], self.scores[keep], self.classes[keep])


class Detector(Protocol):
    """Anything that turns BGR frames into detections, one result per frame."""

    info: ModelInfo

    def detect(self, frames: Sequence[U8]) -> list[Detections]: ...


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How a frame was fitted into the model input: `model = frame * scale + pad`."""

    scale: float
    pad_x: float
    pad_y: float


def letterbox(frame: U8, size: tuple[int, int], pad_value: int) -> tuple[U8, Letterbox]:
    """Resize keeping aspect ratio and pad to `size` (width, height), centred as YOLO does."""
    h, w = frame.shape[:2]
    out_w, out_h = size
    scale = min(out_w / w, out_h / h)
    new_w, new_h = round(w * scale), round(h * scale)
    pad_x, pad_y = (out_w - new_w) // 2, (out_h - new_h) // 2
    canvas = np.full((out_h, out_w, 3), pad_value, np.uint8)
    resized = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_AREA)
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    return canvas, Letterbox(scale, float(pad_x), float(pad_y))


def iou_matrix(a: F32, b: F32) -> F32:
    """Pairwise IoU of x1y1x2y2 boxes `a [n, 4]` and `b [m, 4]` → `[n, m]`."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).clip(0).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    out: F32 = np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)
    return out


def nms(boxes: F32, scores: F32, iou_threshold: float, classes: I64 | None = None) -> I64:
    """Indices kept by greedy non-maximum suppression, best score first.

    With `classes`, boxes of different classes never suppress each other (offset trick).
    """
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    if classes is not None:
        span = float(boxes.max()) + 1.0
        boxes = boxes + (classes.astype(np.float32) * span)[:, None]
    order = np.argsort(-scores, kind="stable")
    iou = iou_matrix(boxes[order], boxes[order])
    n = len(order)
    suppressed = np.zeros(n, bool)
    # One pass over the sorted boxes; each step suppresses a whole row at once.
    for i in range(n):
        if suppressed[i]:
            continue
        suppressed[i + 1 :] |= iou[i, i + 1 :] > iou_threshold
    kept: I64 = order[~suppressed].astype(np.int64)
    return kept


def decode_yolo(
    output: F32, boxes_map: Letterbox, frame_wh: tuple[int, int], info: ModelInfo
) -> Detections:
    """One frame's `[4 + C, N]` output → thresholded, NMS-ed detections in frame pixels."""
    scores_all = output[4:]
    cls = scores_all.argmax(axis=0)
    score = scores_all[cls, np.arange(scores_all.shape[1])]
    keep = score >= info.conf_threshold
    if not keep.any():
        return Detections.empty()
    cx, cy, bw, bh = output[:4, keep]
    xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
    xyxy[:, [0, 2]] = (xyxy[:, [0, 2]] - boxes_map.pad_x) / boxes_map.scale
    xyxy[:, [1, 3]] = (xyxy[:, [1, 3]] - boxes_map.pad_y) / boxes_map.scale
    w, h = frame_wh
    np.clip(xyxy[:, [0, 2]], 0, w, out=xyxy[:, [0, 2]])
    np.clip(xyxy[:, [1, 3]], 0, h, out=xyxy[:, [1, 3]])
    s, c = score[keep].astype(np.float32), cls[keep].astype(np.int64)
    idx = nms(xyxy.astype(np.float32), s, info.iou_threshold, c)[: info.max_detections]
    return Detections(xyxy[idx].astype(np.float32), s[idx], c[idx])


class OnnxDetector:
    """A YOLO-style ONNX export run by onnxruntime on the CPU (2 threads by default)."""

    def __init__(self, model_dir: Path, *, threads: int = 2) -> None:
        # onnxruntime ships no type stubs; import it untyped and only where it is needed.
        ort: Any = importlib.import_module("onnxruntime")

        self.info = load_model_info(model_dir)
        path = model_dir / self.info.file
        if not path.is_file():
            raise VisionError(f"{model_dir / 'model.toml'}: file {self.info.file!r} not found")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session: Any = ort.InferenceSession(
                str(path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise VisionError(f"{path}: onnxruntime cannot load it: {exc}") from None
        inp = self._session.get_inputs()[0]
        self._input = self.info.input_name or inp.name
        batch_dim = inp.shape[0]
        # A symbolic or -1 first dimension means any batch size; an int fixes it.
        self.max_batch = batch_dim if isinstance(batch_dim, int) and batch_dim > 0 else 64
        self.calls = 0

    def preprocess(self, frames: Sequence[U8]) -> tuple[F32, list[Letterbox]]:
        """Letterbox and stack frames into one `[B, 3, H, W]` float32 tensor."""
        images, maps = [], []
        for frame in frames:
            img, lb = letterbox(frame, self.info.input_size, self.info.pad_value)
            images.append(img)
            maps.append(lb)
        batch = np.stack(images)
        if self.info.channel_order == "rgb":
            batch = batch[..., ::-1]
        tensor: F32 = np.ascontiguousarray(batch.transpose(0, 3, 1, 2), np.float32) / 255.0
        return tensor, maps

    def detect(self, frames: Sequence[U8]) -> list[Detections]:
        """Detections for each BGR frame, batched into as few inference calls as allowed."""
        results: list[Detections] = []
        for start in range(0, len(frames), self.max_batch):
            chunk = frames[start : start + self.max_batch]
            tensor, maps = self.preprocess(chunk)
            (out,) = self._session.run(None, {self._input: tensor})[:1]
            self.calls += 1
            for i, frame in enumerate(chunk):
                wh = (frame.shape[1], frame.shape[0])
                results.append(decode_yolo(np.asarray(out[i], np.float32), maps[i], wh, self.info))
        return results
