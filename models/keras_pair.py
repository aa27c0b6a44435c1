"""The framework pair: a small Keras CNN (NHWC, ends in Softmax) with seeded weights, exported by tf2onnx, and
the weights it was given, so the tests can build the same network in PyTorch. TensorFlow is too heavy for CI:
this script ran once and its two small files are committed.

    python3 -m venv tfvenv && tfvenv/bin/pip install "tensorflow-cpu==2.15.1" "tf2onnx==1.16.1" "numpy<2"
    tfvenv/bin/python models/keras_pair.py        # writes tests/data/keras_cnn.onnx and keras_cnn_weights.npz
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "tests" / "data"
SIZE, CLASSES = 32, 5


def weights(seed: int = 0) -> dict[str, np.ndarray]:
    """Keras layouts: conv kernels (kH, kW, C_in, C_out), dense (in, out)."""
    rng = np.random.default_rng(seed)
    return {
        "conv1_kernel": rng.normal(0, 0.3, (3, 3, 3, 8)), "conv1_bias": rng.normal(0, 0.1, 8),
        "conv2_kernel": rng.normal(0, 0.2, (3, 3, 8, 16)), "conv2_bias": rng.normal(0, 0.1, 16),
        "dense_kernel": rng.normal(0, 0.5, (16, CLASSES)), "dense_bias": rng.normal(0, 0.1, CLASSES),
    }


def main() -> None:
    import tensorflow as tf
    import tf2onnx

    w = {k: v.astype(np.float32) for k, v in weights().items()}
    inputs = tf.keras.Input((SIZE, SIZE, 3), name="image")
    x = tf.keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = tf.keras.layers.MaxPooling2D(2, name="pool")(x)
    x = tf.keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(x)
    x = tf.keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = tf.keras.layers.Dense(CLASSES, name="dense")(x)
    outputs = tf.keras.layers.Softmax(name="probabilities")(x)
    model = tf.keras.Model(inputs, outputs)
    for name in ("conv1", "conv2", "dense"):
        model.get_layer(name).set_weights([w[f"{name}_kernel"], w[f"{name}_bias"]])
    spec = (tf.TensorSpec((None, SIZE, SIZE, 3), tf.float32, name="image"),)
    OUT.mkdir(parents=True, exist_ok=True)
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=17, output_path=str(OUT / "keras_cnn.onnx"))
    np.savez(OUT / "keras_cnn_weights.npz", **w)
    probe = np.random.default_rng(1).uniform(0, 1, (2, SIZE, SIZE, 3)).astype(np.float32)
    np.save(OUT / "keras_cnn_probe_logits.npy", tf.keras.Model(inputs, x)(probe).numpy())
    print(f"wrote {OUT / 'keras_cnn.onnx'} and the weights")


if __name__ == "__main__":
    main()
