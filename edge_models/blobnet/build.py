"""Build `blobnet.onnx`: a fixed (untrained) ONNX graph that finds bright round blobs.

It is a real ONNX model run by onnxruntime exactly like a user's YOLO export: input
`images` float32 `[batch, 3, S, S]` (RGB in 0..1, letterboxed), output `output0`
`[batch, 4 + C, N]` (cx, cy, w, h in input pixels, then one score per class). Classes:
`person` (a bright, unsaturated blob: a head seen from above under good light) and `fire`
(a red-orange blob). The weights are hand-set filters, not learned:

    channel mix (1x1 conv) -> 8x8 average pool (one cell = 8 px)
    -> centre minus surround (3x3 minus 9x9 average) -> sigmoid(gain * (x - bias))
    -> keep only local maxima (3x3 max pool), i.e. non-maximum suppression on the grid

Run `python edge_models/blobnet/build.py` (or call `build()`); the result is ~2 kB.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
INPUT_SIZE = 320
STRIDE = 8
BOX_PX = 28.0  # fixed box side in input pixels: the graph does not estimate size
GAIN = 12.0
BIAS = 0.2  # centre-surround contrast (0..1) where the score crosses 0.5
OPSET = 17


def _const(name: str, value: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(value.astype(np.float32), name)


def _image_input(size: int) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, size, size])


def build_model(input_size: int = INPUT_SIZE) -> onnx.ModelProto:
    """The blob detector graph for a square input of `input_size` pixels."""
    if input_size % STRIDE:
        raise ValueError(f"input_size {input_size} must be a multiple of {STRIDE}")
    grid = input_size // STRIDE
    n = grid * grid
    # Channel mix: person = mean of G and B (white/grey heads are bright there, orange is
    # not); fire = R - B (positive only for red-orange).
    mix = np.array([[0.0, 0.5, 0.5], [1.0, 0.0, -1.0]], np.float32).reshape(2, 3, 1, 1)
    ys, xs = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    cx = (xs.reshape(-1) + 0.5) * STRIDE
    cy = (ys.reshape(-1) + 0.5) * STRIDE
    side = np.full(n, BOX_PX)
    boxes = np.stack([cx, cy, side, side])[None]  # [1, 4, N]
    inits = [
        _const("mix_w", mix),
        _const("gain", np.array(GAIN)),
        _const("bias", np.array(BIAS)),
        _const("boxes", boxes),
        _const("zero", np.array(0.0)),
        numpy_helper.from_array(np.array([0, 2, n], np.int64), "flat_shape"),
    ]
    pool = {"auto_pad": "NOTSET"}
    nodes = [
        helper.make_node("Conv", ["images", "mix_w"], ["mixed"]),
        helper.make_node(
            "AveragePool", ["mixed"], ["cells"], kernel_shape=[STRIDE] * 2, strides=[STRIDE] * 2
        ),
        helper.make_node(
            "AveragePool",
            ["cells"],
            ["centre"],
            kernel_shape=[3, 3],
            pads=[1] * 4,
            count_include_pad=0,
            **pool,
        ),
        helper.make_node(
            "AveragePool",
            ["cells"],
            ["surround"],
            kernel_shape=[9, 9],
            pads=[4] * 4,
            count_include_pad=0,
            **pool,
        ),
        helper.make_node("Sub", ["centre", "surround"], ["contrast"]),
        helper.make_node("Sub", ["contrast", "bias"], ["shifted"]),
        helper.make_node("Mul", ["shifted", "gain"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["score"]),
        helper.make_node("MaxPool", ["score"], ["peak"], kernel_shape=[3, 3], pads=[1] * 4),
        helper.make_node("GreaterOrEqual", ["score", "peak"], ["is_peak"]),
        helper.make_node("Cast", ["is_peak"], ["peak_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["score", "peak_f"], ["kept"]),
        helper.make_node("Reshape", ["kept", "flat_shape"], ["scores"]),
        # scores * 0 + boxes broadcasts the constant boxes over the batch dimension.
        helper.make_node("Mul", ["scores", "zero"], ["zeros"]),
        helper.make_node("ReduceMax", ["zeros"], ["zero_col"], axes=[1], keepdims=1),
        helper.make_node("Add", ["zero_col", "boxes"], ["boxes_b"]),
        helper.make_node("Concat", ["boxes_b", "scores"], ["output0"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "blobnet",
        [_image_input(input_size)],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", 6, n])],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="blobnet-build"
    )
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def build(out_dir: Path = HERE) -> Path:
    """Write `blobnet.onnx` into `out_dir` and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "blobnet.onnx"
    onnx.save(build_model(), str(path))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE)
    print(build(parser.parse_args().out))


if __name__ == "__main__":
    main()
