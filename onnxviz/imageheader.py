"""What an image file declares before anything is decoded, read the way decoders read it: the format from the
magic bytes, the size from Pillow's header parsers (PNG, BMP with OS/2 headers, WebP, TIFF and JPEG as their
decoders read them) and from our own small readers (which also see headers Pillow refuses), the largest answer
winning; for JPEG our walk of the marker stream (fill bytes, any segment order) also counts the scans: a
progressive JPEG with thousands of scans takes minutes to decode."""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass

from .errors import ImageError

MAX_PIXELS = 64_000_000
MAX_JPEG_SCANS = 100  # progressive photos have ~10; libjpeg-turbo's own tools suggest a limit of this order
MAX_TILE_BYTES = 256 * 2**20  # one TIFF tile or strip buffer, which the decoder allocates before reading it

# the formats onnxviz reads, by their first bytes (OpenCV would also read PPM, PFM, EXR, HDR, JPEG 2000, ...)
FORMATS = {"PNG": (b"\x89PNG\r\n\x1a\n",), "JPEG": (b"\xff\xd8\xff",), "BMP": (b"BM",),
           "WebP": (b"RIFF",), "TIFF": (b"II*\x00", b"MM\x00*")}
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE = {0x01, *range(0xD0, 0xD9)}  # TEM, RST0-7, SOI: markers without a length


@dataclass(frozen=True)
class Header:
    format: str
    width: int
    height: int
    os2_bmp: bool = False  # OpenCV reads OS/2 bitmaps as grey unless asked for colour


def image_format(data: bytes) -> str | None:
    """PNG, JPEG, BMP, WebP or TIFF from the magic bytes; None for anything else."""
    for name, magics in FORMATS.items():
        if any(data.startswith(m) for m in magics) and (name != "WebP" or data[8:12] == b"WEBP"):
            return name
    return None


def jpeg_markers(data: bytes) -> tuple[tuple[int, int] | None, int]:
    """((width, height) of the largest frame header, number of scans) from a JPEG's marker stream, walked as
    libjpeg does: any number of 0xFF fill bytes before a marker, length-prefixed segments in any order, and
    entropy-coded data after each SOS skipped up to the next real marker (0xFF00 stuffing and RSTn pass)."""
    n, i, scans, size = len(data), 2, 0, None
    while i < n:
        if data[i] != 0xFF:  # stray bytes between segments: decoders skip to the next 0xFF
            i = data.find(b"\xff", i)
            if i < 0:
                break
        while i < n and data[i] == 0xFF:
            i += 1
        if i >= n:
            break
        marker = data[i]
        i += 1
        if marker == 0xD9:  # EOI
            break
        if marker in _STANDALONE or marker == 0x00:
            continue
        if i + 2 > n:
            break
        length = int.from_bytes(data[i : i + 2], "big")
        if marker in _SOF and i + 7 <= n:
            h, w = int.from_bytes(data[i + 3 : i + 5], "big"), int.from_bytes(data[i + 5 : i + 7], "big")
            size = (w, h) if size is None or w * h > size[0] * size[1] else size
        i += max(length, 2)
        if marker == 0xDA:  # SOS: the scan's entropy-coded data follows
            scans += 1
            while True:
                j = data.find(b"\xff", i)
                if j < 0 or j + 1 >= n:
                    i = n
                    break
                follow = data[j + 1]
                if follow == 0x00 or 0xD0 <= follow <= 0xD7:
                    i = j + 2
                    continue
                i = j
                break
    return size, scans


def _png_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return w, h
    return None


def _bmp_size(data: bytes) -> tuple[int, int] | None:
    if data[:2] != b"BM" or len(data) < 26:
        return None
    if int.from_bytes(data[14:18], "little") == 12:  # OS/2 BITMAPCOREHEADER: 16-bit width and height
        w, h = struct.unpack("<HH", data[18:22])
        return w, h
    w, h = struct.unpack("<ii", data[18:26])
    return abs(w), abs(h)


def _webp_size(data: bytes) -> tuple[int, int] | None:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP" or len(data) < 30:
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 ":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """Width and height tags of the first image directory."""
    if data[:4] not in (b"II*\x00", b"MM\x00*"):
        return None
    e = "<" if data[:2] == b"II" else ">"
    try:
        (offset,) = struct.unpack(e + "I", data[4:8])
        (count,) = struct.unpack(e + "H", data[offset : offset + 2])
        found = {}
        for k in range(min(count, 4096)):
            tag, kind = struct.unpack(e + "HH", data[offset + 2 + 12 * k : offset + 6 + 12 * k])
            raw = data[offset + 10 + 12 * k : offset + 14 + 12 * k]
            if tag in (256, 257):
                found[tag] = struct.unpack(e + ("H" if kind == 3 else "I"), raw[: 2 if kind == 3 else 4])[0]
        return (found[256], found[257]) if len(found) == 2 else None
    except struct.error:
        return None


_OWN = {"PNG": _png_size, "BMP": _bmp_size, "WebP": _webp_size, "TIFF": _tiff_size,
        "JPEG": lambda data: jpeg_markers(data)[0]}


def _pillow(data: bytes, name: str, max_pixels: int):
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DecompressionBombWarning: our own limit decides
        try:
            return Image.open(io.BytesIO(data))
        except Image.DecompressionBombError:  # over twice Pillow's own limit, which is above ours
            raise ImageError(f"{name}: its header declares more than the limit of {max_pixels:,} pixels") from None
        except Exception:  # a header Pillow cannot read: our readers and OpenCV's own pixel cap remain
            return None


def _tiff_buffers(im, name: str) -> None:
    """Refuse TIFF tiles or strips whose buffer (allocated before any pixel is read) would be huge."""
    tags = getattr(im, "tag_v2", {})
    samples = int(tags.get(277, 1) or 1)
    bits = tags.get(258, (8,))
    depth = max(bits) if isinstance(bits, tuple) and bits else int(bits or 8)
    width, height = im.size
    tile = (tags.get(322), tags.get(323))
    rows = tags.get(278)
    if tile[0] and tile[1]:
        area = int(tile[0]) * int(tile[1])
    else:
        area = width * min(int(rows or height), height)
    need = area * samples * max(1, (int(depth) + 7) // 8)
    if samples > 16 or need > MAX_TILE_BYTES:
        shown = f"{tile[0]}x{tile[1]} tiles" if tile[0] else f"strips of {rows} rows"
        raise ImageError(f"{name}: a TIFF with {shown} of {samples} samples would need {need / 2**20:.0f} MiB per "
                         f"buffer before decoding (at most {MAX_TILE_BYTES // 2**20} MiB); save it untiled")


def _sizes(data: bytes, fmt: str, name: str, max_pixels: int):
    """(Pillow's image or None, every (width, height) the header readers find: Pillow's and ours)."""
    im = _pillow(data, name, max_pixels)
    return im, [s for s in (im.size if im is not None else None, _OWN[fmt](data)) if s is not None]


def declared_size(data: bytes) -> tuple[int, int] | None:
    """The largest (width, height) any header reader finds; None when none understands the header."""
    fmt = image_format(data)
    sizes = _sizes(data, fmt, "image", MAX_PIXELS)[1] if fmt else []
    return max(sizes, key=lambda s: s[0] * s[1]) if sizes else None


def read_header(data: bytes, name: str = "image", max_pixels: int = MAX_PIXELS) -> Header:
    """The image's format and size, checked against the limits before it is decoded. A header no reader
    understands gives 0x0: OpenCV then decodes it under its own pixel cap, or calls it damaged."""
    fmt = image_format(data)
    if fmt is None:
        raise ImageError(f"{name} is not a PNG, JPEG, BMP, WebP or TIFF image (its first bytes say otherwise); "
                         "convert it to one of those")
    im, sizes = _sizes(data, fmt, name, max_pixels)
    if fmt == "JPEG":
        _, scans = jpeg_markers(data)
        if scans > MAX_JPEG_SCANS:
            raise ImageError(f"{name}: a JPEG with {scans} scans (at most {MAX_JPEG_SCANS}; progressive photos have "
                             "about 10) could take minutes to decode; re-save it as a baseline JPEG or a PNG")
    if fmt == "TIFF" and im is not None:
        _tiff_buffers(im, name)
    empty = next((s for s in sizes if 0 in s), None)
    if empty:
        raise ImageError(f"{name} has no pixels: its header says {empty[0]}x{empty[1]}")
    width, height = max(sizes, key=lambda s: s[0] * s[1], default=(0, 0))
    if width * height > max_pixels:
        raise ImageError(f"{name}: {width}x{height} pixels is more than the limit of {max_pixels:,}")
    os2 = fmt == "BMP" and int.from_bytes(data[14:18], "little") == 12
    return Header(fmt, width, height, os2)
