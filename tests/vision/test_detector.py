"""The ONNX detector through onnxruntime (the path a user model takes), NMS and letterbox."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.vision import OnnxDetector, VisionError, letterbox, nms
from tests.vision.scenes import Blob, render

ROOT = Path(__file__).resolve().parents[2]
MODEL_SRC = ROOT / "edge_models" / "blobnet"


@pytest.fixture(scope="module")
def built_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build blobnet from source into a temp folder, as a user would drop in their own."""
    out = tmp_path_factory.mktemp("blobnet")
    # Loaded under its own name (pip's `build` package may exist) and without a
    # __pycache__ in edge_models/.
    spec = importlib.util.spec_from_file_location("blobnet_build", MODEL_SRC / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = saved
    module.build(out)
    shutil.copy(MODEL_SRC / "model.toml", out / "model.toml")
    return out


def test_detector_finds_each_drawn_head_at_its_place(built_model: Path) -> None:
    det = OnnxDetector(built_model)
    blobs = [Blob((100, 100), (0, 0)), Blob((400, 300), (0, 0)), Blob((560, 90), (0, 0))]
    found = det.detect([render(blobs, 0)])[0]
    person = det.info.classes.index("person")
    assert list(found.classes) == [person] * 3
    centres = (found.boxes[:, :2] + found.boxes[:, 2:]) / 2
    for b in blobs:
        dist = np.linalg.norm(centres - np.asarray(b.start), axis=1)
        assert dist.min() < 12, (b.start, centres)


def test_orange_blob_is_fire_not_person(built_model: Path) -> None:
    det = OnnxDetector(built_model)
    image = render([Blob((320, 240), (0, 0), radius=24, color=(0, 120, 255))], 0)
    found = det.detect([image])[0]
    assert [det.info.classes[c] for c in found.classes] == ["fire"]


def test_empty_floor_has_no_detections(built_model: Path) -> None:
    det = OnnxDetector(built_model)
    assert len(det.detect([render([], 0)])[0].scores) == 0


def test_frames_of_several_cameras_go_in_one_inference_call(built_model: Path) -> None:
    det = OnnxDetector(built_model)
    images = [render([Blob((80.0 * k + 60, 200), (0, 0))], 0) for k in range(5)]
    found = det.detect(images)
    assert det.calls == 1
    assert [len(f.scores) for f in found] == [1] * 5
    xs = [float(f.boxes[0, [0, 2]].mean()) for f in found]
    assert xs == sorted(xs)


def test_bad_model_toml_names_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "model.toml").write_text('name = "x"\nfile = "x.onnx"\ninput_size = [320]\n')
    with pytest.raises(VisionError, match=r"model\.toml.*input_size"):
        OnnxDetector(tmp_path)


def test_missing_onnx_file_is_a_clear_error(tmp_path: Path) -> None:
    text = (MODEL_SRC / "model.toml").read_text().replace("blobnet.onnx", "mine.onnx")
    (tmp_path / "model.toml").write_text(text)
    with pytest.raises(VisionError, match=r"mine\.onnx"):
        OnnxDetector(tmp_path)


def _iou(a: list[float], b: list[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _nms_reference(boxes: list[list[float]], scores: list[float], thr: float) -> list[int]:
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    kept: list[int] = []
    for i in order:
        if all(_iou(boxes[i], boxes[k]) <= thr for k in kept):
            kept.append(i)
    return kept


_box = st.tuples(
    st.integers(0, 200), st.integers(0, 200), st.integers(1, 80), st.integers(1, 80)
).map(lambda t: [float(t[0]), float(t[1]), float(t[0] + t[2]), float(t[1] + t[3])])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(_box, st.integers(0, 10_000)), max_size=25, unique_by=lambda t: t[1]),
    st.sampled_from([0.3, 0.45, 0.7]),
)
def test_nms_matches_plain_python(items: list[tuple[list[float], int]], thr: float) -> None:
    boxes = [b for b, _ in items]
    scores = [s / 10_000 for _, s in items]
    arr = np.array(boxes, np.float32).reshape(-1, 4)
    got = nms(arr, np.array(scores, np.float32), thr).tolist()
    assert got == _nms_reference(boxes, scores, thr)


@settings(max_examples=60, deadline=None)
@given(st.integers(16, 900), st.integers(16, 900), st.sampled_from([(320, 320), (640, 384)]))
def test_letterbox_fits_and_centres_like_the_reference(
    w: int, h: int, size: tuple[int, int]
) -> None:
    frame = np.full((h, w, 3), 200, np.uint8)
    out, lb = letterbox(frame, size, 114)
    scale = min(size[0] / w, size[1] / h)
    new_w, new_h = round(w * scale), round(h * scale)
    pad_x, pad_y = (size[0] - new_w) // 2, (size[1] - new_h) // 2
    assert out.shape == (size[1], size[0], 3)
    assert (lb.scale, lb.pad_x, lb.pad_y) == (scale, pad_x, pad_y)
    # The content occupies exactly the reference rectangle; the rest is padding.
    content = np.zeros(out.shape[:2], bool)
    content[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = True
    assert (out[content] == 200).all()
    assert (out[~content] == 114).all()


def test_letterbox_maps_a_point_back_to_the_frame() -> None:
    frame = np.zeros((480, 640, 3), np.uint8)
    cv2.circle(frame, (500, 100), 6, (255, 255, 255), -1)
    out, lb = letterbox(frame, (320, 320), 0)
    ys, xs = np.nonzero(out[..., 0] > 128)
    x = (xs.mean() - lb.pad_x) / lb.scale
    y = (ys.mean() - lb.pad_y) / lb.scale
    assert abs(x - 500) < 2 and abs(y - 100) < 2


def test_committed_blobnet_is_what_build_py_makes(built_model: Path) -> None:
    committed = (MODEL_SRC / "blobnet.onnx").read_bytes()
    assert (built_model / "blobnet.onnx").read_bytes() == committed, (
        "edge_models/blobnet/blobnet.onnx is stale: run python edge_models/blobnet/build.py"
    )
