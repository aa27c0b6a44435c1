"""Keras applications (random weights, NHWC, Softmax tails) exported by tf2onnx, committed as graph skeletons.

A ResNet-50 export is ~100 MB of weights that say nothing a seeded fill does not: the weights were random anyway
(`weights=None`). So the exported graph is kept exactly as tf2onnx wrote it, except that the convolution kernels
and dense matrices lose their values; `restore` refills them with seeded He-normal values. Everything else (biases,
batch-norm statistics, the baked-in rescaling constants, shapes and axes) is kept as exported. TensorFlow is too
heavy for CI: this script ran once, in a throwaway environment.

    python3 -m venv tfvenv && tfvenv/bin/pip install "tensorflow-cpu==2.15.1" "tf2onnx==1.16.1" "numpy<2"
    tfvenv/bin/python models/keras_apps.py           # writes tests/data/keras/*.skeleton.onnx
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "keras"
HEIGHT, WIDTH, CLASSES = 96, 128, 7  # non-square, and a class count that no axis of the graph shares
APPS = ("MobileNetV2", "ResNet50", "EfficientNetB0", "Xception", "DenseNet121")
WEIGHTED = ("Conv", "ConvTranspose", "MatMul", "Gemm")  # ops whose second input is a weight tensor
STRIPPED = "onnxviz.skeleton"  # metadata key: the initializers whose values `restore` must fill


def skeleton(model: onnx.ModelProto) -> onnx.ModelProto:
    """The graph with the values of its convolution kernels and weight matrices removed (their shapes kept)."""
    weights = {node.input[1] for node in model.graph.node if node.op_type in WEIGHTED and len(node.input) > 1}
    stripped = []
    for tensor in model.graph.initializer:
        if tensor.name in weights and tensor.data_type == onnx.TensorProto.FLOAT and len(tensor.dims) >= 2:
            del tensor.float_data[:]
            tensor.raw_data = b""
            stripped.append(tensor.name)
    model.metadata_props.add(key=STRIPPED, value="\n".join(stripped))
    return model


def restore(path: Path | str, seed: int = 0) -> onnx.ModelProto:
    """A skeleton with its stripped initializers filled: He-normal over the fan-in (ONNX kernels are (out, in, ...);
    tf2onnx's dense matrices are (in, out)), seeded per tensor name so that the order of tensors does not matter."""
    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props}
    names = set(filter(None, props.get(STRIPPED, "").split("\n")))
    for tensor in model.graph.initializer:
        if tensor.name not in names:
            continue
        shape = tuple(tensor.dims)
        fan_in = shape[0] if len(shape) == 2 else int(np.prod(shape[1:]))
        digest = hashlib.sha256(f"{seed}:{tensor.name}".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        values = rng.normal(0.0, np.sqrt(2.0 / max(fan_in, 1)), shape).astype(np.float32)
        tensor.CopyFrom(numpy_helper.from_array(values, tensor.name))
    del model.metadata_props[:]
    model.metadata_props.extend(onnx.StringStringEntryProto(key=k, value=v) for k, v in props.items() if k != STRIPPED)
    return model


def main() -> None:
    import tensorflow as tf
    import tf2onnx

    OUT.mkdir(parents=True, exist_ok=True)
    for name in APPS:
        tf.keras.utils.set_random_seed(0)
        build = getattr(tf.keras.applications, name)
        model = build(weights=None, input_shape=(HEIGHT, WIDTH, 3), classes=CLASSES)
        spec = (tf.TensorSpec((None, HEIGHT, WIDTH, 3), tf.float32, name="image"),)
        exported, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=17)
        target = OUT / f"{name.lower()}.skeleton.onnx"
        onnx.save(skeleton(exported), str(target))
        print(f"wrote {target} ({target.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
