"""Edge camera analytics: frames → motion gate → detector → tracker → line crossings."""

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
