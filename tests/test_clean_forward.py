"""The clean forward left to a gradient method's first torch pass (onnxviz/clean_forward.py): with given classes,
saliency and Grad-CAM run no onnxruntime forward of their own, yet give the scores, predictions and maps of the
forward-first path; a method whose passes never see the clean batch, or that changes it in place, gets
onnxruntime's forward afterwards, on the batch as it was given."""

from __future__ import annotations

import numpy as np
import pytest

import onnxviz
from onnxviz import registry
from onnxviz.targets import softmax as softmax_of
from tests.tiny_models import pooled_net

RNG = np.random.default_rng(11)
CLASSES = 5


@pytest.fixture(scope="module")
def model():
    """A non-square (6 x 10) network whose head is not global pooling over the CAM layer (half-map pooling)."""
    loaded = onnxviz.load(pooled_net(RNG.standard_normal((4, 3, 3, 3)) * 0.5, RNG.standard_normal((CLASSES, 16)),
                                     size=(6, 10), pool="partial"), normalize=False)
    assert loaded.torch is not None  # converted, with its parity probe, before any pass is counted
    return loaded


@pytest.fixture
def forwards(model, monkeypatch):
    """Counts onnxruntime passes that end in the model's logits (the clean forward's kind of pass)."""
    seen = []
    run = model.ort.run

    def counted(x, names, *args, **kwargs):
        if "logits" in names:
            seen.append(len(x))
        return run(x, names, *args, **kwargs)

    monkeypatch.setattr(model.ort, "run", counted)
    return seen


def _batch():
    return RNG.standard_normal((3, 3, 6, 10)).astype(np.float32)


@pytest.mark.parametrize("method", ["saliency", "gradcam", "guided_backprop"])
@pytest.mark.parametrize("softmax", [False, True])
def test_given_classes_need_no_forward_of_their_own_and_give_the_same_result(model, forwards, method, softmax):
    x, classes = _batch(), [4, 0, 2]
    target = [f"softmax:{c}" for c in classes] if softmax else classes
    got = onnxviz.explain(model, x, method, target=target, progress=False)
    assert forwards == [] and got.backend == "torch"
    logits = model.ort.run(x, ("logits",))[0]
    expected = softmax_of(logits)[np.arange(3), classes] if softmax else logits[np.arange(3), classes]
    np.testing.assert_allclose(got.scores, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got.predictions, logits.argmax(1))
    np.testing.assert_array_equal(got.targets, classes)
    # the forward-first path (a top1 run explains the predictions): the same maps for the same classes
    top1 = onnxviz.explain(model, x, method, target=("softmax:top1" if softmax else "top1"), progress=False)
    rows = np.flatnonzero(top1.predictions == np.asarray(classes))
    np.testing.assert_allclose(got.attributions[rows], top1.attributions[rows], rtol=1e-6, atol=1e-7)
    assert "onnxruntime" in top1.backend


def test_a_method_whose_passes_never_see_the_clean_batch_gets_onnxruntimes_forward(model, forwards):
    x = _batch()
    got = onnxviz.explain(model, x, "integrated_gradients", target=[1, 2, 3], n_steps=8, progress=False)
    logits = model.ort.run(x, ("logits",))[0]
    np.testing.assert_array_equal(got.scores, logits[np.arange(3), [1, 2, 3]])
    assert 3 in forwards  # a forward of the clean batch happened


class InPlace(onnxviz.Method):
    """Changes its input in place before the gradient pass (a plugin may): its pass is not the clean forward."""

    name = "test_in_place"
    requires = "gradients"

    def explain(self, ctx, x, opts):
        x += 1.0
        return ctx.grad(x)


def test_a_batch_changed_in_place_is_not_taken_for_the_clean_one(model):
    registry.register(InPlace)
    try:
        x = _batch()
        clean = model.ort.run(x, ("logits",))[0]
        got = onnxviz.explain(model, x, "test_in_place", target=[0, 1, 2], progress=False)
    finally:
        registry.unregister("test_in_place")
    np.testing.assert_array_equal(got.scores, clean[np.arange(3), [0, 1, 2]])
    np.testing.assert_array_equal(got.predictions, clean.argmax(1))


def test_top1_and_forward_only_methods_keep_the_forward_first(model, forwards):
    x = _batch()
    assert "onnxruntime" in onnxviz.explain(model, x, "saliency", progress=False).backend
    occlusion = onnxviz.explain(model, x, "occlusion", target=[0, 1, 2], window=3, stride=3, progress=False)
    np.testing.assert_array_equal(occlusion.scores, model.ort.run(x, ("logits",))[0][np.arange(3), [0, 1, 2]])


def test_a_class_out_of_range_is_refused_before_the_method_runs(model, forwards):
    with pytest.raises(onnxviz.TargetError, match=str(CLASSES)):
        onnxviz.explain(model, _batch(), "saliency", target=[0, 1, CLASSES], progress=False)


def test_a_target_kind_from_another_distribution_still_resolves_the_classes_it_claims(model, monkeypatch):
    """A plugin kind that accepts class targets comes first (targets.kind_for): the engine must not skip it by
    leaving the clean forward to torch."""
    from onnxviz.targets import ClassKind, Resolved, TargetKind, kinds

    class Doubled(TargetKind):
        name = "doubled"

        def accepts(self, target):
            return target.kind == "class"

        def resolve(self, model, target, x, indices, photos, batch_size):
            found = ClassKind().resolve(model, target, x, indices, photos, batch_size)
            return Resolved(found.score, 2 * found.scores, found.predictions, found.clean)

    monkeypatch.setattr(kinds, "plugin_kinds", lambda: (Doubled(),))
    x = _batch()
    got = onnxviz.explain(model, x, "saliency", target=[0, 1, 2], progress=False)
    np.testing.assert_allclose(got.scores, 2 * model.ort.run(x, ("logits",))[0][np.arange(3), [0, 1, 2]], rtol=1e-6)
    assert "onnxruntime" in got.backend
