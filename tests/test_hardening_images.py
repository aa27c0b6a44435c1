"""Issue 15: image headers are read as decoders read them, so no legal byte sequence slips past the pixel limit;
decode costs are bounded (scans, TIFF buffers); every decoder failure is one ImageError."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from PIL import Image

import onnxviz
from onnxviz import imageheader
from onnxviz import io as oio
from onnxviz.demo import demo_model_path


def jpeg(size=(48, 32), **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((size[1], size[0], 3)) * 255).astype(np.uint8)).save(
        buf, "JPEG", **kw)
    return buf.getvalue()


def _segments(data: bytes) -> list[tuple[int, bytes]]:
    """(marker, whole segment bytes) up to SOS; the rest (scan data + EOI) as marker 0."""
    out, i = [], 2
    while data[i + 1] != 0xDA:
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        out.append((data[i + 1], data[i : i + 2 + length]))
        i += 2 + length
    return [*out, (0, data[i:])]


def with_size(data: bytes, w: int, h: int, fill: bytes = b"", move_sof_last: bool = False) -> bytes:
    """The JPEG with its frame header saying w x h, legal 0xFF fill bytes before the SOF marker, and optionally
    the SOF placed after every other table segment (any order is legal)."""
    parts = _segments(data)
    sof = next(seg for m, seg in parts if 0xC0 <= m <= 0xC2)
    sof = sof[:5] + struct.pack(">HH", h, w) + sof[9:]
    rest = [seg for m, seg in parts[:-1] if not 0xC0 <= m <= 0xC2]
    if move_sof_last:
        head = [*rest, fill + sof]
    else:
        at = next(k for k, (m, _) in enumerate(parts) if 0xC0 <= m <= 0xC2)
        head = [*rest[:at], fill + sof, *rest[at:]]
    return b"\xff\xd8" + b"".join(head) + parts[-1][1]


@pytest.mark.parametrize("variant", ["plain", "one fill byte", "many fill bytes", "SOF after the tables",
                                     "fill + comment first"])
def test_a_jpeg_header_cannot_hide_its_size(variant):
    base = jpeg()[2:]  # without SOI: with_size puts it back
    data = b"\xff\xd8" + base
    if variant == "fill + comment first":
        data = b"\xff\xd8" + b"\xff\xfe\x00\x07hello" + base
    fill = {"one fill byte": b"\xff", "many fill bytes": b"\xff" * 7, "fill + comment first": b"\xff"}.get(variant,
                                                                                                       b"")
    bomb = with_size(data, 9000, 9000, fill, move_sof_last=variant == "SOF after the tables")
    assert imageheader.jpeg_markers(bomb)[0] == (9000, 9000)
    with pytest.raises(onnxviz.ImageError, match="9000x9000 pixels is more than the limit of 64,000,000"):
        oio.decode_image(bomb, "bomb.jpg")
    fine = with_size(data, 48, 32, fill)  # the same tricks at the real size still decode
    assert oio.decode_image(fine, "fine.jpg").shape == (32, 48, 3)


def test_opencvs_own_cap_is_set_before_any_module_imports_cv2(tmp_path):
    """Import a module that pulls cv2 in before io.py does, switch our header check off, and decode an image over
    the limit: OpenCV's own cap must still refuse it (it reads the variable when it loads)."""
    path = tmp_path / "big.png"
    Image.new("L", (8100, 8000)).save(path)  # 64.8 MP of black: small on disk
    code = f"""
        import onnxviz.viz.overlay  # imports cv2 first
        import onnxviz.imageheader as h, onnxviz.io as oio
        h.read_header = lambda data, name, max_pixels: h.Header("PNG", 1, 1)
        oio.imageheader = h
        try:
            oio.read_image({str(path)!r})
            print("decoded")
        except Exception as e:
            print(type(e).__name__, e)
    """
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_IO_MAX_IMAGE_PIXELS"}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          timeout=120)
    assert "ImageError" in done.stdout and "more pixels than the limit of 64,000,000" in done.stdout, done.stdout


def test_a_progressive_jpeg_with_thousands_of_scans_is_refused_before_decoding():
    base = jpeg(progressive=True)
    parts = _segments(base)
    scan = parts[-1][1]
    sos_len = int.from_bytes(scan[2:4], "big")
    one_scan = scan[: 2 + sos_len] + b"\x00"  # the first scan's header and one byte of data
    bomb = with_size(b"\xff\xd8" + b"".join(seg for _, seg in parts[:-1]) + one_scan * 5001 + b"\xff\xd9",
                     8000, 8000)
    assert len(bomb) < 100_000 and imageheader.jpeg_markers(bomb) == ((8000, 8000), 5001)
    start = time.monotonic()
    with pytest.raises(onnxviz.ImageError, match=r"a JPEG with 5001 scans .* could take minutes to decode"):
        oio.decode_image(bomb, "scans.jpg")
    assert time.monotonic() - start < 2
    assert 2 <= imageheader.jpeg_markers(base)[1] <= imageheader.MAX_JPEG_SCANS  # a real progressive file
    assert oio.decode_image(base).shape == (32, 48, 3)


def _tiff(width: int, height: int, tile: int | None, samples: int = 3) -> bytes:
    """A little-endian baseline RGB TIFF of grey 0x80 pixels, tiled when `tile` is given (the tile may be far larger
    than the image: the decoder allocates a whole tile before it reads one)."""
    data = b"\x80" * samples * ((width * height) if tile is None else tile * tile)
    entries = [(256, 3, 1, width), (257, 3, 1, height), (258, 3, samples, "bits"), (259, 3, 1, 1), (262, 3, 1, 2),
               (277, 3, 1, samples), (284, 3, 1, 1)]
    if tile is None:
        entries += [(273, 4, 1, "data"), (278, 3, 1, height), (279, 4, 1, len(data))]
    else:
        entries += [(322, 3, 1, tile), (323, 3, 1, tile), (324, 4, 1, "data"), (325, 4, 1, len(data))]
    bits_at = 8 + 2 + 12 * len(entries) + 4
    data_at = bits_at + 2 * samples
    where = {"bits": bits_at, "data": data_at}
    body = b""
    for tag, kind, count, value in sorted(entries):
        value = where.get(value, value) if isinstance(value, str) else value
        packed = struct.pack("<HH", value, 0) if kind == 3 and count == 1 else struct.pack("<I", value)
        body += struct.pack("<HHI", tag, kind, count) + packed
    return (b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries)) + body + b"\x00" * 4
            + struct.pack("<" + "H" * samples, *[8] * samples) + data)


def test_a_tiff_whose_tile_buffer_is_huge_is_refused_before_decoding():
    small = _tiff(16, 16, tile=None)
    assert oio.decode_image(small).shape == (16, 16, 3)
    assert imageheader.read_header(_tiff(16, 16, tile=256)).width == 16  # ordinary tiles pass the check
    bomb = _tiff(16, 16, tile=16384)[:4096]  # a few KB that ask for a 768 MiB tile buffer
    with pytest.raises(onnxviz.ImageError, match=r"16384x16384 tiles of 3 samples would need 768 MiB per buffer"):
        oio.decode_image(bomb, "tiles.tiff")


def test_nan_pixels_are_refused_and_not_blamed_on_the_model():
    values = np.full((6, 5), 0.5, np.float32)
    values[2, 3] = np.nan
    buf = io.BytesIO()
    Image.fromarray(values).save(buf, "TIFF")
    with pytest.raises(onnxviz.ImageError, match=r"nan.tiff holds 1 NaN or infinite pixel values"):
        oio.decode_image(buf.getvalue(), "nan.tiff")


def test_an_os2_bitmap_is_read_in_colour():
    w, h = 5, 3
    row = bytes([10, 20, 30] * w) + b"\x00"  # B, G, R per pixel; rows padded to 4 bytes
    header = struct.pack("<IHHHH", 12, w, h, 1, 24)  # BITMAPCOREHEADER: 16-bit sizes
    data = b"BM" + struct.pack("<IHHI", 26 + len(row) * h, 0, 0, 26) + header + row * h
    assert imageheader.read_header(data).os2_bmp
    got = oio.decode_image(data, "os2.bmp")
    np.testing.assert_allclose(got, np.broadcast_to(np.array([30, 20, 10]) / 255, (h, w, 3)), atol=1e-6)


def test_opencv_assertions_become_one_image_error(monkeypatch):
    import cv2

    def fails(*args):
        raise cv2.error("OpenCV(5.0.0) grfmt_jpeg.cpp:123: error: (-215:Assertion failed) something in function 'f'")

    monkeypatch.setattr(cv2, "imdecode", fails)
    with pytest.raises(onnxviz.ImageError, match=r"odd.jpg is damaged or not supported: OpenCV refuses it"):
        oio.decode_image(jpeg(), "odd.jpg")


@pytest.mark.parametrize("kind", ["truncated JPEG", "truncated PNG", "damaged TIFF"])
def test_decoder_log_lines_never_reach_the_terminal(kind, tmp_path):
    """OpenCV writes its own warnings to fd 2 for damaged files; a real process shows our one line only."""
    whole = {"truncated JPEG": jpeg((200, 150)), "truncated PNG": None, "damaged TIFF": _tiff(16, 16, tile=None)}[kind]
    if whole is None:
        buf = io.BytesIO()
        Image.fromarray(np.zeros((150, 200, 3), np.uint8)).save(buf, "PNG")
        whole = buf.getvalue()
    data = whole[: len(whole) // 2] if kind != "damaged TIFF" else whole[:120] + b"\xff" * 40 + whole[160:]
    path = tmp_path / "broken.img"
    path.write_bytes(data)
    code = ("import sys; from onnxviz.__main__ import main; "
            f"sys.argv = ['onnxviz', 'explain', {str(demo_model_path())!r}, {str(path)!r}, '--out', "
            f"{str(tmp_path / 'out')!r}, '-q']; main()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if not k.startswith("OPENCV_")})
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) <= 1 and "Traceback" not in done.stderr, done.stderr  # a truncated JPEG may still decode
    assert done.returncode in (0, 1)
