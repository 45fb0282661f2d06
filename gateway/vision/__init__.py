"""Edge camera analytics: frames → motion gate → detector → tracker → line crossings.

The names below load on first use (PEP 562): OpenCV and onnxruntime cost ~20 MB of memory
and a second of start-up, and a gateway without cameras (or one that only reads the vision
settings of its config) never needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.vision.counting import CountingLine, LineCount
    from gateway.vision.detector import (
        Detections,
        Detector,
        Letterbox,
        ModelInfo,
        OnnxDetector,
        VisionError,
        letterbox,
        load_model_info,
        nms,
    )
    from gateway.vision.frames import Frame, FrameQueue, MqttFrameSource, StreamSource
    from gateway.vision.motion import Motion, MotionGate
    from gateway.vision.pipeline import (
        CameraEvent,
        Crossing,
        VisionPipeline,
        VisionResult,
        VisionService,
    )
    from gateway.vision.settings import CameraSettings, LineSettings, VisionSettings
    from gateway.vision.tracker import Track, Tracker

_MODULE_OF = {
    "CameraEvent": "gateway.vision.pipeline",
    "CameraSettings": "gateway.vision.settings",
    "CountingLine": "gateway.vision.counting",
    "Crossing": "gateway.vision.pipeline",
    "Detections": "gateway.vision.detector",
    "Detector": "gateway.vision.detector",
    "Frame": "gateway.vision.frames",
    "FrameQueue": "gateway.vision.frames",
    "Letterbox": "gateway.vision.detector",
    "LineCount": "gateway.vision.counting",
    "LineSettings": "gateway.vision.settings",
    "ModelInfo": "gateway.vision.detector",
    "Motion": "gateway.vision.motion",
    "MotionGate": "gateway.vision.motion",
    "MqttFrameSource": "gateway.vision.frames",
    "OnnxDetector": "gateway.vision.detector",
    "StreamSource": "gateway.vision.frames",
    "Track": "gateway.vision.tracker",
    "Tracker": "gateway.vision.tracker",
    "VisionError": "gateway.vision.detector",
    "VisionPipeline": "gateway.vision.pipeline",
    "VisionResult": "gateway.vision.pipeline",
    "VisionService": "gateway.vision.pipeline",
    "VisionSettings": "gateway.vision.settings",
    "letterbox": "gateway.vision.detector",
    "load_model_info": "gateway.vision.detector",
    "nms": "gateway.vision.detector",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'gateway.vision' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "CameraEvent",
    "CameraSettings",
    "CountingLine",
    "Crossing",
    "Detections",
    "Detector",
    "Frame",
    "FrameQueue",
    "Letterbox",
    "LineCount",
    "LineSettings",
    "ModelInfo",
    "Motion",
    "MotionGate",
    "MqttFrameSource",
    "OnnxDetector",
    "StreamSource",
    "Track",
    "Tracker",
    "VisionError",
    "VisionPipeline",
    "VisionResult",
    "VisionService",
    "VisionSettings",
    "letterbox",
    "load_model_info",
    "nms",
]
