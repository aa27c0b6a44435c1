"""Recipro-CAM and ViT-ReciproCAM against OpenVINO-XAI itself (the reference implementation, Intel's default XAI
method) on the same ONNX file: OpenVINO reads the export, OpenVINO-XAI inserts its mosaic branch, and the raw
per-class maps are compared with ours. OpenVINO-XAI reads the logits (the input of a trailing Softmax), so ours runs
with `score target`; it does not clip, so its maps are compared after our ReLU. OpenVINO's CPU plugin may run in
bf16 on CPUs that have it: the reference is compiled at f32.

openvino-xai 1.1 pins numpy 1 and openvino-dev 2024.4 and imports `openvino.runtime`, which OpenVINO 2026 removed:
CI installs openvino 2025.3 and openvino-xai with --no-deps (see .ci/run)."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest

import onnxviz

torch = pytest.importorskip("torch")
ov = pytest.importorskip("openvino")
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # its import of openvino.runtime warns
    recipro = pytest.importorskip("openvino_xai.methods.white_box.recipro_cam")

SAME = 1e-4  # of the map's span: both compute in float32 (measured ~1e-7)


def _export(net, path, shape, output: str) -> None:
    """Legacy exporter with a dynamic batch: OpenVINO-XAI stacks the mosaic copies on the batch axis."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.rand(*shape),), str(path), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=[output],
                          dynamic_axes={"input": {0: "batch"}, output: {0: "batch"}})


def _reference(method, path, x: np.ndarray, **options) -> np.ndarray:
    """OpenVINO-XAI's raw maps (N, classes, h, w), its branch compiled at f32."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        explainer = method(ov.Core().read_model(str(path)), embed_scaling=False, prepare_model=False, **options)
        compiled = ov.Core().compile_model(explainer.prepare_model(load_model=False), "CPU",
                                           {"INFERENCE_PRECISION_HINT": "f32"})
    return np.maximum(np.stack([compiled(x[i : i + 1])[compiled.output("saliency_map")][0] for i in range(len(x))]), 0)


class SoftmaxCnn(torch.nn.Module):
    """A Flatten -> Linear head behind a Softmax, 40 x 56 input, a 10 x 14 map of 40 channels (OpenVINO-XAI takes
    a layer as NCHW only when it has more channels than rows and columns)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3, stride=2, padding=1), torch.nn.ReLU(),
                                            torch.nn.Conv2d(32, 40, 3, stride=2, padding=1), torch.nn.ReLU())
        self.head = torch.nn.Linear(40 * 10 * 14, 5)
        with torch.no_grad():
            self.head.weight.mul_(50)

    def forward(self, x):
        return torch.softmax(self.head(self.features(x).flatten(1)), dim=1)


def test_reciprocam_equals_openvino_xai_on_a_non_square_cnn(tmp_path):
    path = tmp_path / "cnn.onnx"
    _export(SoftmaxCnn().eval(), path, (1, 3, 40, 56), "probs")
    model = onnxviz.load(path, preprocessing="unit")
    layer = [layer for layer in model.layers if layer.op_type == "Relu"][-1]
    x = np.random.default_rng(0).random((2, 3, 40, 56)).astype(np.float32)
    x[1, :, 25:] = 1.0
    theirs = _reference(recipro.ReciproCAM, path, x, target_layer=layer.node)
    for target in (1, 3):
        ours = onnxviz.explain(model, x, "reciprocam", layer=layer.name, target=target, score="target",
                               progress=False).raw
        span = np.ptp(theirs[:, target])
        assert ours.shape == (2, 10, 14) and span > 0
        np.testing.assert_allclose(ours, theirs[:, target], atol=SAME * span)
        probabilities = onnxviz.explain(model, x, "reciprocam", layer=layer.name, target=target, progress=False).raw
        assert np.abs(probabilities - theirs[:, target]).max() > 0.05 * span  # the paper's softmax is another map


@pytest.fixture(scope="module")
def vit(tmp_path_factory):
    """A 3-block timm ViT on 96 x 96 (OpenVINO-XAI folds static token counts into square grids), its queries and
    keys sharpened so that random weights do not attend uniformly and the maps have contrast."""
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    net = VisionTransformer(img_size=(96, 96), num_classes=5, patch_size=16, embed_dim=48, depth=3,
                            num_heads=2).eval()
    with torch.no_grad():
        for block in net.blocks:
            block.attn.qkv.weight[: 2 * 48].mul_(4)
    path = tmp_path_factory.mktemp("ovxai") / "vit.onnx"
    _export(net, path, (1, 3, 96, 96), "logits")
    x = np.random.default_rng(1).random((2, 3, 96, 96)).astype(np.float32)
    x[0, :, :, :30] *= 0.1
    return path, onnxviz.load(path, preprocessing="unit"), x


@pytest.mark.parametrize("kernel", ["gaussian", "point"])
def test_vit_reciprocam_equals_openvino_xai_block_by_block(vit, kernel):
    """OpenVINO-XAI's k-th block from the head is our block:-k; its cls_token and use_gaussian are our class_token
    and kernel. Each of ours must miss the neighbouring configurations."""
    path, model, x = vit
    configs = [(k, token) for k in (1, 2) for token in (True, False)]
    theirs = {(k, token): _reference(recipro.ViTReciproCAM, path, x, k=k, cls_token=token,
                                     use_gaussian=kernel == "gaussian")[:, 2] for k, token in configs}
    for k, token in configs:
        ours = onnxviz.explain(model, x, "vit_reciprocam", layer=f"block:{-k}", class_token=token, kernel=kernel,
                               score="target", target=2, progress=False).raw
        span = np.ptp(theirs[(k, token)])
        assert ours.shape == (2, 6, 6) and span > 0
        np.testing.assert_allclose(ours, theirs[(k, token)], atol=SAME * span, err_msg=str((k, token)))
        for other in configs:
            if other != (k, token):
                assert np.abs(ours - theirs[other]).max() > 0.02 * span, (k, token, other)
