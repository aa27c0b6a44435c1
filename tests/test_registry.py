"""Registration: built-ins via entry points; runtime registration; broken plugins and name conflicts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

import onnxviz
from onnxviz import registry
from onnxviz.options import option
from onnxviz.testing import check_method


@pytest.fixture
def scratch():
    added = []
    yield added
    for name in added:
        registry.unregister(name)


def test_methods_stays_callable_after_importing_a_method_module():
    import onnxviz.methods.gradcam

    assert any(row["name"] == "gradcam" for row in onnxviz.plugins())


def test_builtins_are_entry_points():
    entries = {e.name: e for e in registry.all_entries()}
    for name in ("saliency", "gradcam", "occlusion"):
        assert entries[name].dist == "onnxviz" and entries[name].error is None


REGISTERED = sorted(e.name for e in registry.all_entries() if e.error is None)


def test_the_whole_suite_is_registered():
    suite = {"saliency", "input_x_gradient", "integrated_gradients", "smoothgrad", "guided_backprop", "deconvnet",
             "guided_gradcam", "gradcam", "gradcam_plus_plus", "xgradcam", "layercam", "hirescam", "eigencam",
             "scorecam", "ablationcam", "cam", "occlusion"}
    assert suite <= set(REGISTERED)


TRANSFORMER_ONLY = {"rollout", "legrad", "vit_reciprocam"}  # they read attention: the digits CNN has none
DETECTION_ONLY = {"drise"}  # it explains a detection: on a tiny YOLOv8n, det:0 (and det:1 to follow the target)


@pytest.mark.parametrize("name", REGISTERED)
def test_every_registered_method_keeps_the_contract(name, request):
    if name in TRANSFORMER_ONLY:
        check_method(name, model=onnxviz.load(request.getfixturevalue("tiny_vit"), preprocessing="unit"))
    elif name in DETECTION_ONLY:
        model = onnxviz.load(request.getfixturevalue("tiny_yolo"))
        x = np.random.default_rng(0).random((2, 3, 128, 160)).astype(np.float32)
        check_method(name, model=model, x=x, target="det:0", other_target="det:1", n_masks=16)
    else:
        check_method(name)


def test_a_runtime_method_with_options(scratch, digits_model, digits_batch):
    @dataclass(frozen=True)
    class ScaleOptions:
        factor: float = option(2.0, "multiplier")

    @onnxviz.register
    class Scaled(onnxviz.Method):
        name = "scaled_input"
        family = "attribution"
        Options = ScaleOptions
        target_dependent = model_dependent = False  # the input itself, scaled: declared, so the kit accepts it

        def explain(self, ctx, x, opts):
            return x * opts.factor

    scratch.append("scaled_input")
    ex = onnxviz.explain(digits_model, digits_batch, "scaled_input", factor="1/2")
    np.testing.assert_allclose(ex.attributions, digits_batch / 2)
    check_method("scaled_input")


def test_broken_and_conflicting_plugins_are_reported_not_raised(monkeypatch):
    declared = dict(registry._declared())
    declared["broken"] = registry.Entry("broken", "no_such_module:Thing", "acme-plugins")
    declared["twice"] = registry.Entry("twice", "onnxviz.methods.saliency:Saliency", "dist-a", conflict="dist-b")
    monkeypatch.setattr(registry, "_declared", lambda: declared)
    rows = {r["name"]: r for r in onnxviz.plugins()}
    assert "ModuleNotFoundError" in rows["broken"]["error"]
    assert rows["saliency"]["error"] is None
    with pytest.raises(onnxviz.MethodError, match="from acme-plugins is broken"):
        registry.get("broken")
    with pytest.raises(onnxviz.MethodError, match="claimed by two distributions: dist-a and dist-b"):
        registry.get("twice")


def test_options_named_like_explain_keywords_are_refused():
    @dataclass(frozen=True)
    class Clashing:
        seed: int = option(0, "would be swallowed by explain(seed=...)")

    class Clash(onnxviz.Method):
        name = "clash"
        Options = Clashing

    with pytest.raises(onnxviz.MethodError, match=r"\['seed'\] are taken by onnxviz.explain"):
        onnxviz.register(Clash)


def test_a_method_returning_the_wrong_shape_is_caught(scratch, digits_model, digits_batch):
    @onnxviz.register
    class Wrong(onnxviz.Method):
        name = "wrong_shape"

        def explain(self, ctx, x, opts):
            return x[:, :, :4]

    scratch.append("wrong_shape")
    with pytest.raises(onnxviz.MethodError, match="pixel methods must return"):
        onnxviz.explain(digits_model, digits_batch, "wrong_shape")
    with pytest.raises(onnxviz.MethodError):
        check_method("wrong_shape")


def test_explanations_round_trip_through_npz_and_json(tmp_path, digits_model, digits_batch):
    ex = onnxviz.explain(digits_model, digits_batch, "gradcam")
    for suffix in (".npz", ".json"):
        ex.save(tmp_path / f"e{suffix}")
        back = onnxviz.Explanation.load(tmp_path / f"e{suffix}")
        np.testing.assert_array_equal(back.attributions, ex.attributions)
        np.testing.assert_array_equal(back.raw, ex.raw)
        assert back.layer == ex.layer and back.targets.tolist() == ex.targets.tolist()
        assert back.model_hash == digits_model.hash
    ex.save(tmp_path / "e.png")
    assert (tmp_path / "e.png").stat().st_size > 5_000
    with pytest.raises(onnxviz.OnnxvizError, match=r"use \.png, \.npz or \.json"):
        ex.save(tmp_path / "e.gif")
