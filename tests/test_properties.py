"""Property tests (hypothesis): targets, layer names, options and image decoding either work or raise the
error of their kind, whatever the input; and valid inputs round-trip."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import onnxviz
from onnxviz import io as oio
from onnxviz import registry
from onnxviz.errors import ImageError, LayerError, OptionError, TargetError
from onnxviz.options import build
from onnxviz.targets import Target, parse_targets

FAST = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])  # model loads take ~10 ms per example
names = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)


@FAST
@given(names)
def test_any_target_text_parses_or_is_a_target_error(text):
    try:
        target = Target.parse(text)
    except TargetError:
        return
    assert Target.parse(str(target)) == target


@FAST
@given(index=st.integers(0, 10**6), output=st.none() | st.from_regex(r"[A-Za-z_][A-Za-z0-9_./]{0,12}", fullmatch=True),
       softmax=st.booleans(), region=st.sampled_from([None, "predicted", "box:0,0,4,4", "mask:m.png"]))
def test_valid_targets_round_trip(index, output, softmax, region):
    target = Target(index, output, softmax, region)
    assert Target.parse(str(target)) == target
    spec, indices = parse_targets(str(target), 3)
    assert spec == target and indices.tolist() == [index] * 3


@FAST
@given(st.lists(st.integers(-5, 20), min_size=1, max_size=4), st.integers(1, 4))
def test_per_image_targets_need_one_per_image(targets, n):
    if len(targets) != n:
        with pytest.raises(TargetError, match="give one per image"):
            parse_targets(targets, n)
    else:
        assert parse_targets(targets, n)[1].tolist() == targets


@pytest.fixture(scope="module")
def model():
    from onnxviz.demo import demo_model_path

    return onnxviz.load(demo_model_path())


@FAST
@given(text=names)
def test_any_layer_name_resolves_or_is_a_layer_error(model, text):
    try:
        layer = model.layer(text)
    except LayerError as exc:
        assert "onnxviz layers" in str(exc) or "alias" in str(exc)
        return
    assert layer in model.layers


def test_every_listed_layer_resolves_to_itself(model):
    assert all(model.layer(layer.name) == layer for layer in model.layers)


METHODS = sorted(r["name"] for r in onnxviz.plugins())
values = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True), st.booleans(), names, st.none(),
                   st.lists(st.integers(-9, 9), max_size=3))


@FAST
@given(method=st.sampled_from(METHODS), pick=st.integers(0, 50), unknown=names, value=values)
def test_any_option_builds_or_is_an_option_error(method, pick, unknown, value):
    cls = registry.get(method)
    fields = [f.name for f in dataclasses.fields(cls.Options)]
    key = fields[pick % len(fields)] if fields and pick % 3 else unknown  # mostly real options, some made up
    try:
        opts = build(cls.Options, {key: value}, method)
    except OptionError as exc:
        assert key in fields or "Valid options" in str(exc)
        return
    assert key in fields and dataclasses.is_dataclass(opts)


@FAST
@given(h=st.integers(1, 48), w=st.integers(1, 48), channels=st.sampled_from([1, 3, 4]),
       ext=st.sampled_from([".png", ".bmp", ".tiff", ".webp"]), seed=st.integers(0, 2**16))
def test_encoded_images_decode_to_rgb_in_range_and_16_bit_twins_agree(h, w, channels, ext, seed):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
    params = [cv2.IMWRITE_WEBP_QUALITY, 101] if ext == ".webp" else []
    if ext == ".bmp" and channels == 4:
        channels, pixels = 3, pixels[..., :3]
    ok, buf = cv2.imencode(ext, pixels, params)
    assert ok
    img = oio.decode_image(buf.tobytes(), "x")
    assert img.shape == (h, w, 3) and img.dtype == np.float32 and 0 <= img.min() and img.max() <= 1
    if ext in (".png", ".tiff"):
        ok, buf16 = cv2.imencode(ext, pixels.astype(np.uint16) * 257)
        np.testing.assert_allclose(oio.decode_image(buf16.tobytes(), "x"), img, atol=1e-6)


@FAST
@given(magic=st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM", b"RIFF\x00\x00\x00\x00WEBP", b"II*\x00"]),
       body=st.binary(max_size=400))
def test_any_bytes_behind_an_image_signature_decode_or_are_an_image_error(magic, body):
    try:
        img = oio.decode_image(magic + body, "x")
    except ImageError:
        return
    assert img.ndim == 3 and img.shape[-1] == 3 and np.isfinite(img).all()
