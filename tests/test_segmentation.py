"""Segmentation targets (Seg-Grad-CAM): a class over a region of an (N, classes, H, W) output."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import onnxviz

torch = pytest.importorskip("torch")
grad_cam = pytest.importorskip("pytorch_grad_cam")
from pytorch_grad_cam.utils.model_targets import SemanticSegmentationTarget  # noqa: E402


@pytest.fixture(scope="module")
def seg(build_reference):
    from models.segmentation import scenes

    ref = build_reference("tiny_seg")
    images, labels = scenes(4, seed=5)
    with torch.no_grad():
        predicted = ref.net(torch.from_numpy(images)).argmax(1).numpy()
    return ref.net, onnxviz.load(ref.path), images, labels, float((predicted == labels).mean())


def _native_cam(net, layer, x, category, masks):
    with grad_cam.GradCAM(net, [layer]) as cam:
        return cam(torch.from_numpy(x), [SemanticSegmentationTarget(category, m) for m in masks])


def test_the_tiny_model_segments_its_scenes(seg):
    assert seg[4] >= 0.95


def test_seg_gradcam_of_the_square_class_lies_on_the_square(seg):
    _, model, images, labels, _ = seg
    ex = onnxviz.explain(model, images, "gradcam", target="1@predicted", layer="Relu:-1")
    for cam, label in zip(ex.attributions, labels, strict=True):
        near = cv2.dilate((label == 1).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        assert cam[near].sum() / cam.sum() >= 0.8


def test_seg_saliency_lies_on_the_square(seg):
    _, model, images, labels, _ = seg
    ex = onnxviz.explain(model, images, "saliency", target="1@predicted")
    for attr, label in zip(ex.attributions[:, 0], labels, strict=True):
        near = cv2.dilate((label == 1).astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
        assert attr[near].sum() / attr.sum() >= 0.8


def test_predicted_region_matches_pytorch_grad_cam(seg):
    net, model, images, _, _ = seg
    ex = onnxviz.explain(model, images, "gradcam", target="2@predicted", layer="Relu:-1")
    with torch.no_grad():
        masks = (net(torch.from_numpy(images)).argmax(1) == 2).float().numpy()
    expected = _native_cam(net, net.features[-1], images, 2, masks)
    for ours, theirs in zip(ex.attributions, expected, strict=True):
        assert np.corrcoef(ours.ravel(), theirs.ravel())[0, 1] >= 0.97


def test_box_and_mask_regions(seg, tmp_path):
    net, model, images, labels, _ = seg
    box = onnxviz.explain(model, images[:1], "gradcam", target="1@box:0,0,16,16", layer="Relu:-1")
    mask = np.zeros((32, 32), np.float32)
    mask[:16, :16] = 1
    expected = _native_cam(net, net.features[-1], images[:1], 1, [mask])
    assert np.corrcoef(box.attributions[0].ravel(), expected[0].ravel())[0, 1] >= 0.97
    cv2.imwrite(str(tmp_path / "square.png"), (labels[0] == 1).astype(np.uint8) * 255)
    from_file = onnxviz.explain(model, images[:1], "gradcam", target=f"1@mask:{tmp_path / 'square.png'}",
                                layer="Relu:-1")
    predicted = onnxviz.explain(model, images[:1], "gradcam", target="1@predicted", layer="Relu:-1")
    np.testing.assert_allclose(from_file.attributions, predicted.attributions, rtol=1e-4, atol=1e-6)


def test_region_errors(seg, digits_model, digits_batch):
    _, model, images, _, _ = seg
    blank = np.zeros_like(images[:1])
    with pytest.raises(onnxviz.TargetError, match="no pixel is predicted as the target class"):
        onnxviz.explain(model, blank, "gradcam", target="1@predicted", layer="Relu:-1")
    with pytest.raises(onnxviz.TargetError, match="does not fit the 32x32 output"):
        onnxviz.explain(model, images, "gradcam", target="1@box:0,0,40,8", layer="Relu:-1")
    with pytest.raises(onnxviz.TargetError, match="needs a segmentation output"):
        onnxviz.explain(digits_model, digits_batch, "saliency", target="3@predicted")
    with pytest.raises(onnxviz.TargetError, match="bad region"):
        onnxviz.Target.parse("1@circle")


def test_torchvision_lraspp_export_matches_pytorch_grad_cam(tmp_path, photos):
    from models.exports import export, torchvision_net
    from tests.test_conversion_coverage import SegmentationLogits

    net = SegmentationLogits(torchvision_net("lraspp_mobilenet_v3_large", num_classes=4,
                                             weights_backbone=None)).eval()
    model = onnxviz.load(export(net, tmp_path / "lraspp.onnx", "legacy", size=128))
    x = onnxviz.load_image(photos[:2], model)
    layer_module = net.net.backbone["16"]
    captured = {}
    hook = layer_module.register_forward_hook(lambda m, i, o: captured.update(act=o.detach().numpy()) and None)
    with torch.no_grad():
        classes = net(torch.from_numpy(x)).argmax(1)
    hook.remove()
    scale = float(np.abs(captured["act"]).max())  # random weights: these activations are tiny, compare relatively
    layer = next(layer for layer in model.layers if layer.shape[1:] == captured["act"].shape[1:]
                 and np.abs(model.ort.run(x, (layer.name,))[0] - captured["act"]).max() <= 1e-4 * scale)
    category = int(np.bincount(classes.numpy().ravel()).argmax())
    ex = onnxviz.explain(model, x, "gradcam", target=f"{category}@predicted", layer=layer.name)
    masks = (classes == category).float().numpy()
    expected = _native_cam(net, layer_module, x, category, masks)
    for ours, theirs, m in zip(ex.attributions, expected, masks, strict=True):
        if m.any():
            assert np.corrcoef(ours.ravel(), theirs.ravel())[0, 1] >= 0.97


def test_photo_regions_map_the_original_images_pixels_and_are_drawn(seg, tmp_path):
    """A box in the photo's own pixels (what a person measures) is mapped through the resize; the overlay draws it;
    a box that fits the photo but not the output says photo: is meant. Non-square photos, asymmetric box."""
    import cv2

    from onnxviz.io import to_uint8

    _, model, images, _, _ = seg
    photo = cv2.resize(to_uint8(model.preprocessing.invert(images[0])), (64, 96))  # 64 wide, 96 high
    path = tmp_path / "tall.png"
    cv2.imwrite(str(path), photo[..., ::-1])
    by_photo = onnxviz.explain(model, [path], "saliency", target="1@photo:8,12,32,60")
    x = onnxviz.load_image([path], model)
    by_box = onnxviz.explain(model, x, "saliency", target="1@box:4,4,16,20")  # 32x32 output: x/2, y/3
    np.testing.assert_allclose(by_photo.attributions, by_box.attributions, rtol=1e-6)
    assert by_photo.extras["region_boxes"] == [[4, 4, 16, 20]] and by_photo.extras["region_space"] == [32, 32]
    drawn = by_photo.overlay(0)
    plain = by_photo.images()[0]
    assert np.allclose(drawn[4, 4:16], 1.0, atol=1e-6) or np.allclose(drawn[4, 4:16], 0.0, atol=1e-6)
    assert not np.allclose(drawn, onnxviz.viz.overlay(plain, by_photo.normalized()[0], by_photo.signed))
    with pytest.raises(onnxviz.TargetError, match=r"does not fit the 32x32 output \(if these are pixels of the "
                                                  r"original image, write photo:8,12,40,60\)"):
        onnxviz.explain(model, [path], "saliency", target="1@box:8,12,40,60")
    with pytest.raises(onnxviz.TargetError, match="does not fit the 64x96 photo"):
        onnxviz.explain(model, [path], "saliency", target="1@photo:8,12,70,60")
