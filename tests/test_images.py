"""Image reading policy: grey, alpha, 16-bit, EXIF orientation, the pixel limit; presets and their inverse."""

from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest

import onnxviz
from onnxviz import io as oio
from onnxviz.preprocess import Preprocessing


@pytest.fixture
def rgb(photos) -> np.ndarray:
    return oio.resize(photos[0], 64, 80)


def _png(path, array) -> str:
    assert cv2.imwrite(str(path), array)
    return str(path)


def test_8_and_16_bit_twins_read_the_same(tmp_path, rgb):
    bgr8 = (rgb[..., ::-1] * 255).round().astype(np.uint8)
    bgr16 = bgr8.astype(np.uint16) * 257
    a = oio.read_image(_png(tmp_path / "a.png", bgr8))
    b = oio.read_image(_png(tmp_path / "b.png", bgr16))
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(a, bgr8[..., ::-1] / 255.0, atol=1e-6)


def test_grey_is_repeated_and_alpha_is_composited_on_white(tmp_path):
    grey = np.full((4, 4), 100, np.uint8)
    img = oio.read_image(_png(tmp_path / "g.png", grey))
    assert img.shape == (4, 4, 3) and np.allclose(img, 100 / 255)
    bgra = np.zeros((4, 4, 4), np.uint8)
    bgra[..., 2] = 255  # red
    bgra[:2, :, 3] = 255  # top half opaque, bottom half transparent
    img = oio.read_image(_png(tmp_path / "a.png", bgra))
    np.testing.assert_allclose(img[0, 0], [1, 0, 0])
    np.testing.assert_allclose(img[3, 0], [1, 1, 1])


def _with_orientation(jpeg: bytes, orientation: int) -> bytes:
    ifd = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0)
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd
    payload = b"Exif\x00\x00" + tiff
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + app1 + jpeg[2:]


def test_exif_orientation_is_applied(rgb):
    ok, buf = cv2.imencode(".jpg", (rgb[..., ::-1] * 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 100])
    assert ok
    plain = oio.decode_image(buf.tobytes())
    rotated = oio.decode_image(_with_orientation(buf.tobytes(), 6))
    assert oio.jpeg_orientation(_with_orientation(buf.tobytes(), 6)) == 6
    assert rotated.shape == (plain.shape[1], plain.shape[0], 3)
    np.testing.assert_allclose(rotated, np.rot90(plain, k=-1), atol=1e-6)


def test_pixel_count_is_checked_before_decoding(monkeypatch, tmp_path):
    path = _png(tmp_path / "big.png", np.zeros((300, 300, 3), np.uint8))
    monkeypatch.setattr(oio, "MAX_PIXELS", 10_000)
    with pytest.raises(onnxviz.ImageError, match="300x300 pixels is more than the limit"):
        oio.read_image(path)


def test_presets_round_trip(rgb):
    for name in ("imagenet", "unit", "symmetric", "caffe"):
        for layout in ("NCHW", "NHWC"):
            pre = Preprocessing.preset(name, layout=layout)
            x = pre.apply(rgb)
            assert x.shape == ((3, 64, 80) if layout == "NCHW" else (64, 80, 3))
            np.testing.assert_allclose(pre.invert(x), rgb, atol=1e-5)
    caffe = Preprocessing.preset("caffe").apply(rgb)
    np.testing.assert_allclose(caffe[0], rgb[..., 2] * 255 - 103.939, atol=1e-3)  # BGR order, 0..255
    with pytest.raises(onnxviz.OptionError, match="choose one of: imagenet"):
        Preprocessing.preset("imagenett")


def test_load_image_resizes_to_the_model_and_uses_its_metadata(digits_model, photos):
    x = onnxviz.load_image(photos[:2], digits_model)
    assert x.shape == (2, 1, 32, 32) and x.dtype == np.float32
    assert digits_model.preprocessing.size == (32, 32)


@pytest.mark.parametrize(("ext", "params"), [(".webp", [cv2.IMWRITE_WEBP_QUALITY, 80]),
                                             (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]),  # lossless (VP8L)
                                             (".tiff", []), (".bmp", []), (".png", []), (".jpg", [])])
def test_allowed_formats_are_read_and_their_size_is_known_before_decoding(ext, params):
    from onnxviz.io import declared_size, image_format

    img = (np.random.default_rng(0).random((37, 53, 3)) * 255).astype(np.uint8)
    data = cv2.imencode(ext, img, params)[1].tobytes()
    assert image_format(data) is not None and declared_size(data) == (53, 37)
    assert oio.decode_image(data).shape == (37, 53, 3)


def test_other_formats_and_non_images_are_refused_by_name(tmp_path):
    ppm = cv2.imencode(".ppm", np.zeros((4, 4, 3), np.uint8))[1].tobytes()  # OpenCV reads it; we do not
    cases = {"anim.gif": b"GIF89a" + b"\x00" * 20, "raw.ppm": ppm, "notes.jpg": b"just some text\n", "empty.png": b""}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(onnxviz.ImageError, match=name.replace(".", r"\.")) as err:
            oio.read_image(tmp_path / name)
        assert ("empty" in str(err.value)) if not data else ("PNG, JPEG, BMP, WebP or TIFF" in str(err.value))


def test_webp_and_tiff_bombs_are_refused_before_decoding():
    webp = b"RIFF" + struct.pack("<I", 30) + b"WEBPVP8X" + struct.pack("<I", 10) + b"\x00" * 4
    webp += (60000 - 1).to_bytes(3, "little") + (60000 - 1).to_bytes(3, "little")
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 2)
    tiff += struct.pack("<HHII", 256, 4, 1, 70000) + struct.pack("<HHII", 257, 4, 1, 70000)
    for data in (webp, tiff):
        with pytest.raises(onnxviz.ImageError, match="more than the limit"):
            oio.decode_image(data, "bomb")
