"""LeGrad (Bousselham et al. 2024) equals its formula on the native timm module: for each chosen block l, the head
(final norm, class-token pooling, classifier) applied to the tokens leaving block l gives a score whose gradient
with respect to block l's attention probabilities, clamped at zero and averaged over heads and query tokens, is the
block's map over the patch tokens; the maps are summed. Attention from the unfused timm module (hooks), 96 x 128."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest

import onnxviz

torch = pytest.importorskip("torch")
pytest.importorskip("timm")

H, W = 96, 128
GRID = (6, 8)


@pytest.fixture(scope="module", params=["vit", "deit"])
def vit(request, tmp_path_factory):
    from timm.models.deit import VisionTransformerDistilled
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(2)
    common = {"img_size": (H, W), "num_classes": 5, "patch_size": 16, "embed_dim": 32, "depth": 3, "num_heads": 2}
    net = (VisionTransformer if request.param == "vit" else VisionTransformerDistilled)(**common).eval()
    with torch.no_grad():
        for block in net.blocks:
            block.attn.qkv.weight.mul_(8)
    path = tmp_path_factory.mktemp("legrad") / f"{request.param}.onnx"
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.rand(1, 3, H, W),), str(path), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    x = np.random.default_rng(3).random((2, 3, H, W)).astype(np.float32)
    x[0, :, :, : W // 3] *= 0.1
    return net, onnxviz.load(path, preprocessing="unit"), x, 1 if request.param == "vit" else 2


def _reference(net, x: np.ndarray, target: int, prefix: int, first: int) -> np.ndarray:
    attentions, outputs = [], []
    hooks = []
    for block in net.blocks:
        block.attn.fused_attn = False
        hooks.append(block.attn.attn_drop.register_forward_hook(lambda _m, _i, out: attentions.append(out)))
        hooks.append(block.register_forward_hook(lambda _m, _i, out: outputs.append(out)))
    try:
        with torch.enable_grad():
            net(torch.from_numpy(x))
            total = torch.zeros(len(x), attentions[0].shape[-1], dtype=torch.float64)
            for attention, tokens in list(zip(attentions, outputs, strict=True))[first:]:
                score = net.forward_head(net.norm(tokens))[:, target].sum()
                (grad,) = torch.autograd.grad(score, attention, retain_graph=True)
                total += grad.clamp(min=0).mean(dim=1).mean(dim=1).double()
    finally:
        for hook in hooks:
            hook.remove()
        for block in net.blocks:
            block.attn.fused_attn = True
    return total[:, prefix:].reshape(len(x), *GRID).numpy()


@pytest.mark.parametrize("first", [-2, 0, -1])
def test_legrad_equals_its_formula_on_the_native_module(vit, first):
    net, model, x, prefix = vit
    ours = onnxviz.explain(model, x, "legrad", target=3, from_block=first, progress=False).raw
    theirs = _reference(net, x, 3, prefix, first)
    span = np.abs(theirs).max()
    assert ours.shape == (2, *GRID) and span > 0
    np.testing.assert_allclose(ours, theirs, atol=1e-4 * span)  # float32 through three blocks
    assert np.abs(ours - theirs[:, ::-1]).max() > 0.05 * span
    if first != -1:  # more blocks read than the last one: the sum is not the last block's map
        last = _reference(net, x, 3, prefix, -1)
        assert np.abs(ours - last).max() > 0.05 * span


def test_legrad_is_class_specific_and_refuses_what_it_cannot_read(vit, digits_model, digits_batch):
    _, model, x, _ = vit
    maps = [onnxviz.explain(model, x, "legrad", target=k, progress=False).raw for k in (0, 4)]
    assert np.abs(maps[0] - maps[1]).max() > 0.05 * np.abs(maps[0]).max()
    with pytest.raises(onnxviz.MethodError, match="from_block 3 is out of range: the graph has 3 blocks"):
        onnxviz.explain(model, x, "legrad", from_block=3, progress=False)
    with pytest.raises(onnxviz.MethodError, match="no transformer attention"):
        onnxviz.explain(digits_model, digits_batch, "legrad", progress=False)


def test_the_default_reads_every_block_of_a_shallower_model(tiny_vit):
    model = onnxviz.load(tiny_vit, preprocessing="unit")  # one block: "the last two" is all of them
    x = model.probe_input(1)
    default = onnxviz.explain(model, x, "legrad", progress=False).raw
    np.testing.assert_array_equal(default, onnxviz.explain(model, x, "legrad", from_block=0, progress=False).raw)
