"""docs/plugins.md runs, and each of its examples equals the built-in it mirrors: the method is occlusion with a
zero baseline and window = stride, the attack is PGD without its random start, the synthesis raises its
objective. A guide whose examples drifted from the API would fail here."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import onnxviz
from onnxviz import registry
from onnxviz.bundled import demo_images, demo_model_path
from onnxviz.testing import check_method

GUIDE = (Path(__file__).resolve().parent.parent / "docs" / "plugins.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", GUIDE, flags=re.S)


@pytest.fixture
def run_block():
    names = []

    def run(k: int) -> dict:
        namespace: dict = {}
        exec(compile(BLOCKS[k], f"docs/plugins.md block {k}", "exec"), namespace)
        names.extend(v.name for v in namespace.values() if isinstance(v, type) and issubclass(v, onnxviz.Method |
                     onnxviz.Attack | onnxviz.Synthesis) and getattr(v, "name", ""))
        return namespace

    yield run
    for name in names:
        registry.unregister(name)


def test_the_guide_has_one_example_per_kind():
    assert len(BLOCKS) == 3


def test_the_method_example_is_occlusion_with_a_zero_baseline(run_block):
    run_block(0)
    model = onnxviz.load(demo_model_path())
    x = onnxviz.load_image(demo_images()[:3], model)
    ours = onnxviz.explain(model, x, "patch_drop", patch=8, progress=False).attributions
    reference = onnxviz.explain(model, x, "occlusion", window=(8,), stride=(8,), baseline=0.0,
                                progress=False).attributions
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-5)
    assert np.abs(ours).max() > 0  # not a map that ignores the model


def test_the_attack_example_is_pgd_without_a_random_start(run_block):
    run_block(1)
    model = onnxviz.load(demo_model_path())
    images = demo_images()[:3]
    ours = onnxviz.attack(model, images, "bim", eps=0.1, steps=4, progress=False)
    reference = onnxviz.attack(model, images, "pgd", eps=0.1, steps=4, step_size=0.025, random_start=False,
                               progress=False)
    np.testing.assert_allclose(ours.adversarial, reference.adversarial, atol=1e-6)
    assert np.abs(ours.adversarial - ours.images).max() > 0.05
    check_method("bim", model, images)


def test_the_synthesis_example_raises_its_objective(run_block):
    run_block(2)
    model = onnxviz.load(demo_model_path())
    result = onnxviz.synthesize(model, "signed_ascent", "class:3", steps=10, progress=False)
    assert result.images.shape == (1, 32, 32, 1) and result.captions == ["class 3"]
    assert result.history[0, -1] > result.history[0, 0] + 1.0
    check_method("signed_ascent", model)


class _NaiveNoise(onnxviz.Method):
    """What a first attempt from the README looks like: it scores noisy copies without for_samples."""

    name = "naive_noise"

    def explain(self, ctx, x, opts):
        copies = np.repeat(x[:1], 5, axis=0)
        ctx.score(copies)  # 5 rows for len(x) targets
        return x


class _NoLayer(onnxviz.Method):
    name = "no_layer_activations"

    def explain(self, ctx, x, opts):
        ctx.activations(x)  # needs_layer is not declared: no layer was resolved
        return x


@pytest.mark.parametrize(("cls", "expected"), [(_NaiveNoise, "use ctx.for_samples(rows).score(batch)"),
                                               (_NoLayer, "declare needs_layer = True")])
def test_a_plugin_misusing_the_context_gets_one_clear_line(cls, expected, tmp_path):
    from click.testing import CliRunner

    from onnxviz.cli import cli

    onnxviz.register(cls)
    try:
        model = onnxviz.load(demo_model_path())
        with pytest.raises(onnxviz.MethodError, match=re.escape(expected)):
            onnxviz.explain(model, demo_images()[:2], cls.name, progress=False)
        result = CliRunner().invoke(cli, ["explain", str(demo_model_path()), str(demo_images()[0]), "-m", cls.name,
                                          "--out", str(tmp_path / "out"), "-q"])
        assert result.exit_code == 1 and "Traceback" not in result.output and expected in result.output
    finally:
        registry.unregister(cls.name)
